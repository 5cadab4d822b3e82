"""``app.py --also-stage``: further stages synthesized in the CLI's app process (make synth).

The CLI runs the app once for its stage; each further stage gets the CLI's context and
environment with only ``stage`` replaced. Synthesizing the CLI's own stage again that way
must give the CLI's templates byte for byte (no state carried over from the stage between,
nothing of the CLI's context lost), and the stage in between must be the one asked for.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import STACK_NAMES, main
from tests.stacks.cdk_helpers import REPO_ROOT

CDK_CLI = REPO_ROOT / "node_modules" / ".bin" / "cdk"


@pytest.mark.slow
def test_further_stages_are_what_the_cli_writes(tmp_path: Path) -> None:
    cli, prod, again = tmp_path / "cli", tmp_path / "prod", tmp_path / "again"
    app = f"{sys.executable} app.py --also-stage prod={prod} --also-stage dev={again}"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(
        [str(CDK_CLI), "synth", "--quiet", "-c", "stage=dev", "-o", str(cli), "--app", app],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    written = sorted(p.name for p in cli.glob("*.template.json"))
    assert written == sorted(f"Readmission-dev-{name}.template.json" for name in STACK_NAMES)
    for name in written:
        assert (again / name).read_bytes() == (cli / name).read_bytes(), name
    assert sorted(p.name for p in prod.glob("*.template.json")) == sorted(
        f"Readmission-prod-{name}.template.json" for name in STACK_NAMES
    )
    # The CLI accepts the further stage's assembly as it is (its own checks).
    subprocess.run(
        [str(CDK_CLI), "synth", "--quiet", "--app", str(prod)],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.parametrize("value", ["prod", "=cdk.out/prod", "prod="])
def test_a_further_stage_needs_a_stage_and_a_folder(value: str) -> None:
    with pytest.raises(SystemExit):
        main(["--also-stage", value])
