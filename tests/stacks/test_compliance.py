"""cdk-nag runs on every synth: the app is clean, violations fail, acknowledgements say why."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from app import STACK_NAMES
from lambdas.environment import RUNTIME_ENVIRONMENT
from stacks.nag import apply_compliance_checks
from tests.stacks.conftest import Synthesized

MIN_REASON_LENGTH = 40
#: Acknowledgements aws-cdk-lib constructs add for CloudFormation's template validation.
CDK_OWN_VALIDATIONS = ("CloudFormation-Validate::",)


def _acknowledgements(root: IConstruct) -> dict[str, str]:
    """Every acknowledgement in the tree as ``{"<path> <rule>": reason}``."""
    found: dict[str, str] = {}
    for construct in root.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    found[f"{construct.node.path} {rule}"] = reason
    return found


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_stage_synthesizes_with_no_unacknowledged_finding(
    stage: str, request: pytest.FixtureRequest
) -> None:
    # The session fixture synthesizes with cdk-nag attached: ValidationFailed on any finding.
    synthesized: Synthesized = request.getfixturevalue(stage)
    assert {s.stack_name for s in synthesized.assembly.stacks} == {
        f"Readmission-{stage}-{name}" for name in STACK_NAMES
    }
    acknowledgements = _acknowledgements(synthesized.app)
    assert acknowledgements, "expected the known, reasoned acknowledgements"
    for where, reason in acknowledgements.items():
        rule = where.split(" ")[1]
        if rule.startswith(CDK_OWN_VALIDATIONS):
            continue  # aws-cdk-lib's own template checks (the VPC acknowledges W3010 itself)
        assert rule.startswith(("AwsSolutions::", "HIPAA.Security::")), where
        assert len(reason) >= MIN_REASON_LENGTH, where


def test_an_unprotected_bucket_fails_synthesis(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    s3.Bucket(Stack(app, "Unprotected"), "Bucket")
    apply_compliance_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


def test_every_platform_function_runs_with_the_shared_runtime_environment(
    dev: Synthesized,
) -> None:
    """What benchmarks/api_cold_import.py measures is what the stacks deploy."""
    functions = [
        props
        for template in dev.templates.values()
        for props in (
            resource["Properties"]
            for resource in template.find_resources("AWS::Lambda::Function").values()
        )
        if "POWERTOOLS_SERVICE_NAME" in props.get("Environment", {}).get("Variables", {})
    ]
    assert len(functions) >= 4
    for props in functions:
        variables = props["Environment"]["Variables"]
        assert {k: variables[k] for k in RUNTIME_ENVIRONMENT} == dict(RUNTIME_ENVIRONMENT)
