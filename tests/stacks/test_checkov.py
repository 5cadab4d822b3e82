"""checkov beside cdk-nag: the stages are clean but for listed, reasoned skips; the list can't rot.

The scan runs the real checkov (from .venv-checkov, offline) on the session's synthesized dev
and prod templates, and on small templates that must fail.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stacks import checkov_scan
from stacks.checkov_scan import Finding, Skip, SkipListError, evaluate, load_skips
from tests.stacks.conftest import Synthesized

UNENCRYPTED_BUCKET: dict[str, Any] = {
    "Resources": {"Plain": {"Type": "AWS::S3::Bucket", "Properties": {}}}
}


def _templates(*stages: Synthesized) -> list[Path]:
    return [Path(stack.template_full_path) for s in stages for stack in s.assembly.stacks]


def test_both_stages_pass_checkov_with_only_listed_skips(
    dev: Synthesized, prod: Synthesized
) -> None:
    """What `make synth` runs after cfn-lint, on both stages at once (as cdk.out/*/ holds)."""
    templates = _templates(dev, prod)
    assert len(templates) == 2 * len(dev.assembly.stacks)
    result = checkov_scan.scan(templates)
    assert result.clean, result.report()
    assert result.listed > 0


def _finding(check_id: str, address: str) -> Finding:
    stack, logical_id = address.split("/")
    return Finding(check_id, "a check", stack, logical_id, "AWS::S3::Bucket")


REASON = "A reason long enough to say why this finding is accepted here."


def test_a_listed_finding_passes_and_an_unlisted_one_fails() -> None:
    skips = [Skip("CKV_AWS_18", ("Readmission-*-DataLake/AccessLogs*",), REASON)]
    listed = _finding("CKV_AWS_18", "Readmission-dev-DataLake/AccessLogs1234")
    same_check_elsewhere = _finding("CKV_AWS_18", "Readmission-dev-DataLake/RawBucket99")
    result = evaluate([listed, same_check_elsewhere], skips)
    assert result.unlisted == (same_check_elsewhere,)
    assert result.stale == ()
    assert not result.clean
    assert "UNLISTED CKV_AWS_18 Readmission-dev-DataLake/RawBucket99" in result.report()
    assert evaluate([listed], skips).clean


def test_a_skip_that_matches_nothing_is_reported_stale() -> None:
    """A fixed finding must leave the list: each pattern that matches no finding fails."""
    skips = [
        Skip(
            "CKV_AWS_18",
            ("Readmission-*-DataLake/AccessLogs*", "Readmission-*-DataLake/Gone*"),
            REASON,
        ),
        Skip("CKV_AWS_120", (), REASON),  # every resource of a check that no longer fires
    ]
    findings = [_finding("CKV_AWS_18", "Readmission-prod-DataLake/AccessLogs1234")]
    result = evaluate(findings, skips)
    assert result.unlisted == ()
    assert [(skip.check_id, pattern) for skip, pattern in result.stale] == [
        ("CKV_AWS_18", "Readmission-*-DataLake/Gone*"),
        ("CKV_AWS_120", "*"),
    ]
    assert not result.clean
    assert "STALE CKV_AWS_120 *" in result.report()


def test_a_content_dependent_skip_may_match_nothing_but_still_only_covers_its_resources() -> None:
    """A finding that fires on some commits only (checkov's entropy detector on a commit id):
    its skip is not stale when it matches nothing, and it still covers only its resources."""
    skip = Skip("CKV_AWS_45", ("Readmission-*-TrainingPipeline/Registrar*",), REASON, True)
    assert evaluate([], [skip]).clean
    listed = _finding("CKV_AWS_45", "Readmission-dev-TrainingPipeline/Registrar12")
    assert evaluate([listed], [skip]).clean
    elsewhere = _finding("CKV_AWS_45", "Readmission-dev-Api/PredictFunction12")
    assert evaluate([elsewhere], [skip]).unlisted == (elsewhere,)


def test_a_parsing_error_fails_the_scan() -> None:
    result = evaluate([], [], parsing_errors=["/cdk.out/dev/Broken.template.json"])
    assert not result.clean
    assert "NOT PARSED /cdk.out/dev/Broken.template.json" in result.report()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('id = "CKV_AWS_18"\n', "reason must say why"),
        ('id = "CKV_AWS_18"\nreason = "because"\n', "reason must say why"),
        (f'id = "S3_BUCKET_LOGGING"\nreason = "{REASON}"\n', "is not a checkov AWS check id"),
        (f'id = "CKV_AWS_18"\nreason = "{REASON}"\nresources = "x/y"\n', "list of"),
        (f'id = "CKV_AWS_18"\nreason = "{REASON}"\nresources = ["NoSlash"]\n', "list of"),
        (f'id = "CKV_AWS_18"\nreason = "{REASON}"\nwhy = "typo"\n', "unknown keys"),
        (f'id = "CKV_AWS_18"\nreason = "{REASON}"\ncontent_dependent = "yes"\n', "true or false"),
    ],
)
def test_malformed_skips_are_refused(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "skips.toml"
    path.write_text(f"[[skip]]\n{entry}")
    with pytest.raises(SkipListError, match=message):
        load_skips(path)


def test_the_project_skip_list_loads_and_names_resources() -> None:
    skips = load_skips()
    assert skips
    for skip in skips:
        assert skip.resources, f"{skip.check_id} must name the resources it covers"
        # Every stage's stack ("Readmission-*-"), or one stage's where only it has the finding.
        assert all(
            pattern.startswith(("Readmission-*-", "Readmission-dev-", "Readmission-prod-"))
            for pattern in skip.resources
        )


def test_checkov_runs_offline_and_for_cloudformation_only() -> None:
    command = checkov_scan.checkov_command([Path("a.template.json")], Path("/x/checkov"))
    assert command[:3] == ["/x/checkov", "--framework", "cloudformation"]
    assert "--skip-download" in command
    assert not any(part.startswith("--download-external-modules") for part in command)
    assert not any(part.startswith(("--bc-api-key", "--prisma")) for part in command)
    env = checkov_scan.offline_environment({"BC_API_KEY": "secret", "PATH": "/bin"})
    assert "BC_API_KEY" not in env
    assert env["PATH"] == "/bin"
    assert env["BC_SKIP_MAPPING"] == "TRUE"
    assert env["CKV_SKIP_PACKAGE_UPDATE_CHECK"] == "true"


def test_the_scanner_is_the_pinned_checkov() -> None:
    lock = (checkov_scan.REPO_ROOT / "requirements-checkov.lock").read_text().splitlines()
    (pin,) = [line.split("==")[1] for line in lock if line.startswith("checkov==")]
    version = subprocess.run(
        [str(checkov_scan.CHECKOV), "--version"],
        env=checkov_scan.offline_environment({}),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.strip()
    assert version == pin


def test_real_checkov_fails_new_findings_template_suppressions_and_stale_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bucket without encryption or logging is found; a suppression written into a template
    still counts (the skip list is the only place a skip lives); a stale entry fails."""
    plain = tmp_path / "Readmission-dev-Demo.template.json"
    plain.write_text(json.dumps(UNENCRYPTED_BUCKET))
    suppressed = tmp_path / "Readmission-dev-Hidden.template.json"
    hidden = json.loads(json.dumps(UNENCRYPTED_BUCKET))
    hidden["Resources"]["Plain"]["Metadata"] = {
        "checkov": {"skip": [{"id": "CKV_AWS_18", "comment": "hidden from the list"}]}
    }
    suppressed.write_text(json.dumps(hidden))
    skips = tmp_path / "skips.toml"
    skips.write_text(
        "[[skip]]\n"
        'id = "CKV_AWS_18"\n'
        'resources = ["Readmission-*-Demo/Plain", "Readmission-*-Demo/Removed*"]\n'
        f'reason = "{REASON}"\n'
    )
    code = checkov_scan.main(
        [str(plain), str(suppressed), "--skips", str(skips), "--checkov", str(checkov_scan.CHECKOV)]
    )
    out = capsys.readouterr().out
    assert code == 1
    # Listed: the Demo bucket's missing access logging. Everything else about it is new.
    assert "UNLISTED CKV_AWS_18 Readmission-dev-Demo/Plain" not in out
    assert "UNLISTED CKV_AWS_21 Readmission-dev-Demo/Plain" in out  # versioning
    assert "UNLISTED CKV_AWS_18 Readmission-dev-Hidden/Plain" in out  # template suppression
    assert "STALE CKV_AWS_18 Readmission-*-Demo/Removed*" in out
