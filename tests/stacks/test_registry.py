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


def _group_statements(synthesized: Synthesized) -> dict[str, Any]:
    policy = _group(synthesized)["Properties"]["ModelPackageGroupPolicy"]
    return {statement["Sid"]: statement for statement in policy["Statement"]}


def test_group_policy_denies_approval_changes_to_all_but_the_approver_role(
    dev: Synthesized,
) -> None:
    statement = _group_statements(dev)["OnlyApproversChangeApprovalStatus"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == {"AWS": "*"}
    assert statement["Action"] == "sagemaker:UpdateModelPackage"
    assert flatten(statement["Resource"]).endswith(":model-package/readmission-dev-models/*")
    assert list(statement["Condition"]) == ["ArnNotEquals"]
    assert "aws:PrincipalArn" in statement["Condition"]["ArnNotEquals"]


def test_group_policy_lets_no_one_create_a_version_in_any_status_but_pending(
    dev: Synthesized,
) -> None:
    """sagemaker:ModelApprovalStatus is a condition key of CreateModelPackage (Service
    Authorization Reference); StringNotEquals without IfExists also refuses a request that
    omits the status."""
    statement = _group_statements(dev)["VersionsAreCreatedPendingManualApproval"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == {"AWS": "*"}
    assert statement["Action"] == "sagemaker:CreateModelPackage"
    assert statement["Condition"] == {
        "StringNotEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}
    }
    resources = sorted(flatten(r).rsplit(":", 1)[-1] for r in as_list(statement["Resource"]))
    assert resources == [
        "model-package-group/readmission-dev-models",
        "model-package/readmission-dev-models/*",
    ]


def test_the_registrar_may_only_create_pending_versions(dev: Synthesized) -> None:
    found = statements(dev["TrainingPipeline"], "Registrar")
    creates = [s for s in found if "sagemaker:CreateModelPackage" in as_list(s["Action"])]
    assert len(creates) == 1
    assert creates[0]["Condition"] == {
        "StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}
    }
    updates = [s for s in found if "sagemaker:UpdateModelPackage" in as_list(s["Action"])]
    assert updates == []


def test_approver_may_update_only_versions_of_this_group(dev: Synthesized) -> None:
    found = statements(dev["Registry"], "ApproverRole")
    updates = [s for s in found if "sagemaker:UpdateModelPackage" in s["Action"]]
    assert len(updates) == 1
    assert flatten(updates[0]["Resource"]).endswith(":model-package/readmission-dev-models/*")


def test_roles_use_no_managed_policies(dev: Synthesized) -> None:
    for role in dev["Registry"].find_resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def _prefixes(found: list[dict[str, Any]], action: str) -> list[str]:
    return sorted(
        flatten(resource).rsplit("/", 2)[-2]
        for statement in found
        if action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
        if flatten(resource).endswith("/*")
    )


def test_training_reads_features_writes_artifacts_and_touches_no_capture(
    dev: Synthesized,
) -> None:
    found = statements(dev["Registry"], "TrainingRole")
    assert _prefixes(found, "s3:PutObject") == ["training"]
    # training/ is read back too: spot training resumes from its own checkpoints there.
    assert _prefixes(found, "s3:GetObject") == ["features", "protected", "training"]
    pulls = next(s for s in found if s.get("Sid") == "PullDerivedImages")
    assert [flatten(r) for r in as_list(pulls["Resource"])] == [
        "arn:<ref>:ecr:<ref>:<ref>:repository/readmission-dev-training"
    ]
    assert not any("cloudwatch:DescribeAlarms" in as_list(s["Action"]) for s in found)


def test_the_endpoint_reads_no_features_writes_only_capture_and_reads_its_alarms(
    dev: Synthesized,
) -> None:
    found = statements(dev["Registry"], "ServingRole")
    # Model archives, and the nightly transform job's input day files (the job runs as the
    # model's role: stacks/components/batch_scoring.py); never the features.
    assert _prefixes(found, "s3:GetObject") == ["discharges", "training"]
    assert _prefixes(found, "s3:PutObject") == ["capture", "output"]  # batch-scoring/output
    pulls = next(s for s in found if s.get("Sid") == "PullDerivedImages")
    assert [flatten(r) for r in as_list(pulls["Resource"])] == [
        "arn:<ref>:ecr:<ref>:<ref>:repository/readmission-dev-serving"
    ]
    # "Ensure that your IAM execution role has permission to perform the
    # cloudwatch:DescribeAlarms action on the auto-rollback alarms you specify."
    [alarms] = [s for s in found if "cloudwatch:DescribeAlarms" in as_list(s["Action"])]
    assert sorted(flatten(r).rsplit(":", 1)[-1] for r in as_list(alarms["Resource"])) == [
        "readmission-dev-endpoint-5xx-rollback",
        "readmission-dev-endpoint-latency-p95-rollback",
        "readmission-dev-endpoint-rejected-rollout",
    ]


def test_no_kms_condition_that_can_never_match(dev: Synthesized) -> None:
    """kms:GrantIsForAWSResource is only ever true for grant operations (AWS KMS condition
    keys); on DescribeKey it would make the statement dead."""
    for stack in ("Registry", "Deployment"):
        for policy in dev[stack].find_resources("AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if "kms:GrantIsForAWSResource" in str(statement.get("Condition", {})):
                    assert set(as_list(statement["Action"])) <= {
                        "kms:CreateGrant",
                        "kms:ListGrants",
                        "kms:RevokeGrant",
                    }
