"""The registry: a retained package group that only the approver role can approve in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.stacks.conftest import Synthesized, as_list, flatten, statements


def _group(synthesized: Synthesized) -> Mapping[str, Any]:
    groups = synthesized["Registry"].find_resources("AWS::SageMaker::ModelPackageGroup")
    assert len(groups) == 1
    return next(iter(groups.values()))


def test_group_is_named_for_the_stage_and_outlives_the_stack(dev: Synthesized) -> None:
    group = _group(dev)
    assert group["Properties"]["ModelPackageGroupName"] == "readmission-dev-models"
    assert group["DeletionPolicy"] == "Retain"
    assert group["UpdateReplacePolicy"] == "Retain"


def test_group_policy_denies_approval_changes_to_all_but_the_approver_role(
    dev: Synthesized,
) -> None:
    policy = _group(dev)["Properties"]["ModelPackageGroupPolicy"]
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == "sagemaker:UpdateModelPackage"
    assert flatten(statement["Resource"]).endswith(":model-package/readmission-dev-models/*")
    assert list(statement["Condition"]) == ["ArnNotEquals"]
    assert "aws:PrincipalArn" in statement["Condition"]["ArnNotEquals"]


def test_approver_may_update_only_versions_of_this_group(dev: Synthesized) -> None:
    found = statements(dev["Registry"], "ApproverRole")
    updates = [s for s in found if "sagemaker:UpdateModelPackage" in s["Action"]]
    assert len(updates) == 1
    assert flatten(updates[0]["Resource"]).endswith(":model-package/readmission-dev-models/*")


def test_roles_use_no_managed_policies(dev: Synthesized) -> None:
    for role in dev["Registry"].find_resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_execution_role_reads_features_and_writes_only_its_prefixes(dev: Synthesized) -> None:
    found = statements(dev["Registry"], "ExecutionRole")
    writes = [s for s in found if "s3:PutObject" in s["Action"]]
    written = sorted(
        flatten(resource).rsplit("/", 2)[-2]
        for statement in writes
        for resource in as_list(statement["Resource"])
    )
    assert written == ["capture", "training"]
    reads = next(s for s in found if s.get("Sid") == "ReadTrainingDataObjects")
    assert sorted(flatten(r).rsplit("/", 2)[-2] for r in as_list(reads["Resource"])) == [
        "features",
        "protected",
    ]
    # Training jobs and the endpoint run the derived images, and pull nothing else.
    pulls = next(s for s in found if s.get("Sid") == "PullDerivedImages")
    assert sorted(flatten(r) for r in pulls["Resource"]) == [
        f"arn:<ref>:ecr:<ref>:<ref>:repository/readmission-dev-{image}"
        for image in ("serving", "training")
    ]
    assert not any("763104351884" in flatten(r) for s in found for r in as_list(s["Resource"]))
