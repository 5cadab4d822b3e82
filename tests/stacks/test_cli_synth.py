"""`cdk synth` through cdk.json and the pinned local CLI, then cfn-lint, as `make synth` runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import STACK_NAMES
from stacks.nag import acknowledge
from tests.stacks.cdk_helpers import REPO_ROOT

CDK_CLI = REPO_ROOT / "node_modules" / ".bin" / "cdk"


@pytest.mark.slow
def test_cli_synth_writes_lint_clean_templates(tmp_path: Path) -> None:
    assert CDK_CLI.exists(), "run `make setup` first: the pinned CDK CLI is installed locally"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(
        [str(CDK_CLI), "synth", "--quiet", "-c", "stage=prod", "-o", str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    templates = sorted(tmp_path.glob("*.template.json"))
    assert [t.name for t in templates] == sorted(
        f"Readmission-prod-{name}.template.json" for name in STACK_NAMES
    )
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert {p["conclusion"] for p in report["pluginReports"]} == {"success"}
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    assert cfn_lint is not None
    lint = subprocess.run(
        [
            cfn_lint,
            "--config-file",
            str(REPO_ROOT / ".cfnlintrc.yaml"),
            "--non-zero-exit-code",
            "warning",
            *map(str, templates),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_acknowledging_a_rule_of_an_unchecked_pack_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a rule of"):
        acknowledge(None, "reason", "NIST.800.53.R5-S3BucketLoggingEnabled")  # type: ignore[arg-type]
