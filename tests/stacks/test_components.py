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
from stacks.components.platform_function import (
    pinned_version,
    powertools_layer_parameter,
)
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


def test_base_image_uris_match_what_the_sagemaker_sdk_resolves() -> None:
    from sagemaker.core import image_uris

    from training.job_spec import FRAMEWORK_VERSION, PY_VERSION

    for region in ("us-east-1", "eu-west-1"):
        for scope, instance_type in (("training", "ml.p3.8xlarge"), ("inference", "ml.m5.large")):
            sdk = image_uris.retrieve(
                "pytorch",
                region=region,
                version=FRAMEWORK_VERSION,
                py_version=PY_VERSION,
                instance_type=instance_type,
                image_scope=scope,
            )
            ours = pytorch_image_uri(
                scope, instance_type, region=region, url_suffix="amazonaws.com"
            )
            assert ours == sdk, (scope, region)
    assert (
        pytorch_image_uri(
            "inference", "ml.m5.large", region="us-east-1", url_suffix="amazonaws.com"
        )
        == "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"
    )
    assert (is_gpu_instance("ml.g5.xlarge"), is_gpu_instance("ml.c5.xlarge")) == (True, False)


def test_powertools_layer_parameter_is_derived_from_the_requirements_pin() -> None:
    assert pinned_version("aws-lambda-powertools") == "3.37.0"
    assert powertools_layer_parameter("3.37.0") == (
        "/aws/service/powertools/python/arm64/python3.12/3.37.0"
    )


def test_a_changed_pin_changes_the_parameter(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# Lambdas\naws_lambda_powertools[tracer]==3.40.1  # layer\n")
    version = pinned_version("aws-lambda-powertools", requirements)
    assert version == "3.40.1"
    assert powertools_layer_parameter(version).endswith("/arm64/python3.12/3.40.1")


@pytest.mark.parametrize(
    ("line", "message"),
    [("aws-lambda-powertools>=3.37", "must be pinned with =="), ("boto3==1.44.5", "is not in")],
)
def test_a_loose_or_missing_pin_is_refused(tmp_path: Path, line: str, message: str) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(line + "\n")
    with pytest.raises(ValueError, match=message):
        pinned_version("aws-lambda-powertools", requirements)


def test_every_function_resolves_the_pinned_layer_at_deploy_time(dev: Synthesized) -> None:
    parameter = "/aws/service/powertools/python/arm64/python3.12/3.37.0"
    for name in ("Monitoring", "TrainingPipeline", "Deployment", "Api"):
        template = dev[name].to_json()
        resolved = {
            logical_id
            for logical_id, spec in template.get("Parameters", {}).items()
            if spec == {"Type": "AWS::SSM::Parameter::Value<String>", "Default": parameter}
        }
        assert len(resolved) == 1, name
        functions = [
            props
            for props in (
                f["Properties"] for f in dev[name].find_resources("AWS::Lambda::Function").values()
            )
            if str(props.get("FunctionName", "")).startswith("readmission-dev-")
        ]
        assert functions, name
        for props in functions:
            assert props["Layers"] == [{"Ref": next(iter(resolved))}], name


def test_training_source_archive_is_deterministic_and_complete(tmp_path: Path) -> None:
    first = build_training_source_archive(tmp_path / "a")
    second = build_training_source_archive(tmp_path / "b")
    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )
    with tarfile.open(first, "r:gz") as archive:
        names = set(archive.getnames())
        assert {
            "training/train.py",
            "training/job_spec.py",
            "inference/__init__.py",
            "contracts/encounter.py",
        } <= names
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        # Nothing for the toolkit to pip-install (it installs a top-level requirements.txt
        # only): the derived training image holds the pins. The model's code/ still gets
        # inference/requirements.txt from here (training/artifact.py).
        assert "requirements.txt" not in names
        assert "inference/requirements.txt" in names
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
            if props["FunctionName"] in OUTSIDE_THE_VPC:
                assert "VpcConfig" not in props
            else:
                assert len(props["VpcConfig"]["SubnetIds"]) == 2
            assert props["Handler"].startswith("lambdas.")
            assert props["Handler"].endswith(".app.lambda_handler")
            assert "LoggingConfig" in props
    assert found == 5


#: Functions outside the VPC, each for a stated reason: the CDS Hooks authorizer fetches the
#: EHRs' public JWKS and sees no patient data (stacks/components/prediction_api.py).
OUTSIDE_THE_VPC = ("readmission-dev-cds-authorizer",)
