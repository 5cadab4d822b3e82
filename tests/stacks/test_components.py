"""The small building blocks: wildcard acknowledgements, retention, images, source archive."""

from __future__ import annotations

import hashlib
import re
import tarfile
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from stacks.components.grants import grant_objects
from stacks.components.log_groups import retention_days
from stacks.components.platform_function import POWERTOOLS_LAYER_VERSION, powertools_layer_arn
from stacks.components.sagemaker_images import is_gpu_instance, pytorch_image_uri
from stacks.training_source import build_training_source_archive
from stacks.wildcards import acknowledge_wildcards, flatten_reference, wildcard_findings
from tests.stacks.conftest import Synthesized, only


def test_flatten_reference_matches_cdk_nag() -> None:
    joined = {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "/capture/*"]]}
    assert flatten_reference(joined) == "<Bucket.Arn>/capture/*"
    assert flatten_reference({"Fn::ImportValue": "Stack:Export"}) == "Stack:Export"
    assert flatten_reference({"Ref": "Topic"}) == "<Topic>"
    assert flatten_reference("arn:${AWS::Partition}:s3:::b/*") == "arn:<AWS::Partition>:s3:::b/*"


def test_wildcard_findings_cover_allow_statements_only() -> None:
    document = {
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject*", "kms:Decrypt"], "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
        ]
    }
    assert wildcard_findings(document) == ["Action::s3:GetObject*", "Resource::*"]


def _role_with_prefix_grant() -> tuple[App, iam.Role]:
    app = App()
    stack = Stack(app, "Grants")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    grant_objects(role, s3.Bucket(stack, "Bucket"), ["capture"], write=True, sid="Capture")
    return app, role


def _acknowledged(role: iam.Role) -> set[str]:
    policy = role.node.find_child("DefaultPolicy").node.default_child
    assert policy is not None
    return {
        rule
        for entry in policy.node.metadata
        if entry.type == "aws:cdk:acknowledged-rules" or "acknowledged" in entry.type.lower()
        for rule in entry.data
    }


def test_patterns_acknowledge_only_the_matching_findings() -> None:
    app, role = _role_with_prefix_grant()
    acknowledge_wildcards(
        role, "Objects under capture/ are written per run by SageMaker.", "Resource::*/capture/*"
    )
    app.synth()
    (rule,) = _acknowledged(role)
    assert re.fullmatch(
        r"AwsSolutions::AwsSolutions-IAM5\[Resource::<Bucket[0-9A-F]{8}\.Arn>/capture/\*\]", rule
    )


def test_a_pattern_that_matches_nothing_acknowledges_nothing() -> None:
    app, role = _role_with_prefix_grant()
    acknowledge_wildcards(
        role, "A reason long enough to pass the length check.", "Resource::*/other/*"
    )
    app.synth()
    assert _acknowledged(role) == set()


def test_acknowledging_without_a_pattern_is_refused() -> None:
    _, role = _role_with_prefix_grant()
    with pytest.raises(ValueError, match="at least one finding pattern"):
        acknowledge_wildcards(role, "reason")


def test_grant_objects_grants_exact_actions_on_the_prefix() -> None:
    _app, role = _role_with_prefix_grant()
    template = Template.from_stack(Stack.of(role))
    statements = only(template, "AWS::IAM::Policy")["PolicyDocument"]["Statement"]
    assert [s["Action"] for s in statements] == [
        ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
        "s3:ListBucket",
    ]
    assert statements[1]["Condition"] == {"StringLike": {"s3:prefix": ["capture/*"]}}


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (1, logs.RetentionDays.ONE_DAY),
        (90, logs.RetentionDays.THREE_MONTHS),
        (91, logs.RetentionDays.FOUR_MONTHS),
        (365, logs.RetentionDays.ONE_YEAR),
        (2555, logs.RetentionDays.SEVEN_YEARS),
        (3653, logs.RetentionDays.TEN_YEARS),
    ],
)
def test_retention_rounds_up_to_what_cloudwatch_accepts(
    days: int, expected: logs.RetentionDays
) -> None:
    assert retention_days(days) == expected


def test_image_uris_match_what_the_sagemaker_sdk_resolves() -> None:
    from training.launch import training_image_uri

    for region in ("us-east-1", "eu-west-1"):
        assert pytorch_image_uri(
            "training", "ml.p3.8xlarge", region=region, url_suffix="amazonaws.com"
        ) == training_image_uri(region, "ml.p3.8xlarge")
    assert (
        pytorch_image_uri(
            "inference", "ml.m5.large", region="us-east-1", url_suffix="amazonaws.com"
        )
        == "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"
    )
    assert (is_gpu_instance("ml.g5.xlarge"), is_gpu_instance("ml.c5.xlarge")) == (True, False)


def test_powertools_layer_is_the_pinned_arm64_python312_build() -> None:
    assert powertools_layer_arn("eu-west-1", "aws") == (
        "arn:aws:lambda:eu-west-1:017000801446:layer:"
        f"AWSLambdaPowertoolsPythonV3-python312-arm64:{POWERTOOLS_LAYER_VERSION}"
    )


def test_training_source_archive_is_deterministic_and_complete(tmp_path: Path) -> None:
    first = build_training_source_archive(tmp_path / "a")
    second = build_training_source_archive(tmp_path / "b")
    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )
    with tarfile.open(first, "r:gz") as archive:
        names = set(archive.getnames())
        assert {
            "requirements.txt",
            "training/train.py",
            "inference/__init__.py",
            "contracts/encounter.py",
        } <= names
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        assert {m.mtime for m in archive.getmembers()} == {0}


def test_every_function_is_python312_arm64_traced_in_the_vpc_with_encrypted_settings(
    dev: Synthesized,
) -> None:
    found = 0
    for name in ("Monitoring", "TrainingPipeline", "Deployment", "Api"):
        for function in dev[name].find_resources("AWS::Lambda::Function").values():
            props = function["Properties"]
            if not str(props.get("FunctionName", "")).startswith("readmission-dev-"):
                continue  # CDK's own custom-resource providers
            found += 1
            assert props["Runtime"] == "python3.12"
            assert props["Architectures"] == ["arm64"]
            assert props["TracingConfig"] == {"Mode": "Active"}
            assert "KmsKeyArn" in props
            assert len(props["VpcConfig"]["SubnetIds"]) == 2
            assert props["Handler"].startswith("lambdas.")
            assert props["Handler"].endswith(".app.lambda_handler")
            assert "LoggingConfig" in props
    assert found == 4
