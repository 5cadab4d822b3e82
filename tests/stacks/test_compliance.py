"""cdk-nag runs on every synth: the app is clean, violations fail, acknowledgements say why."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from app import build_app
from stacks.nag import apply_compliance_checks
from tests.stacks.cdk_helpers import app_for_stage

MIN_REASON_LENGTH = 40


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
def test_every_stage_synthesizes_with_no_unacknowledged_finding(stage: str, tmp_path: Path) -> None:
    app = build_app(app_for_stage(stage, str(tmp_path)))
    assembly = app.synth()  # raises ValidationFailed on any unacknowledged finding
    assert {s.stack_name for s in assembly.stacks} >= {f"Readmission-{stage}-DataLake"}
    acknowledgements = _acknowledgements(app)
    assert acknowledgements, "expected the known, reasoned acknowledgements"
    for where, reason in acknowledgements.items():
        assert where.split(" ")[1].startswith(("AwsSolutions::", "HIPAA.Security::")), where
        assert len(reason) >= MIN_REASON_LENGTH, where


def test_an_unprotected_bucket_fails_synthesis(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    s3.Bucket(Stack(app, "Unprotected"), "Bucket")
    apply_compliance_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
