"""checkov over the synthesized templates, beside cdk-nag: every finding fixed or listed.

cdk-nag checks constructs as CDK builds them; checkov (an independent rule set) reads the
CloudFormation that is deployed. ``stacks/checkov_skips.toml`` lists each accepted finding:
a check id, optionally the resources it applies to (``<stack name>/<logical id>`` patterns,
shell-style), and a written reason. A scan passes only when every finding is listed, every
listed pattern still matches a finding (a stale skip is reported, so the list cannot rot) and
checkov parsed every template. Suppressions written into a template (checkov's own
``Metadata`` skips) count as findings too: the list is the one place a skip can live.

checkov pins ``networkx<2.7`` and an exact ``boto3``, which the project's lock cannot hold
(torch needs networkx 3), so it runs from its own environment, ``.venv-checkov``
(``requirements-checkov.lock``, built by ``make setup``), as a subprocess that is told
not to contact Prisma Cloud or PyPI.

``python -m stacks.checkov_scan cdk.out/*/*.template.json`` is what ``make synth`` runs.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SKIPS_FILE = REPO_ROOT / "stacks" / "checkov_skips.toml"
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
TEMPLATE_SUFFIX = ".template.json"
CHECK_ID = re.compile(r"^CKV2?_AWS_\d+$")
MIN_REASON_CHARS = 40
#: checkov's exit codes: 0 nothing failed, 1 some check failed; anything else is a crash.
CHECKOV_OK = (0, 1)
CHECKOV_TIMEOUT_S = 600
#: The environment that keeps checkov offline: no platform key, no mapping download, no
#: version check against PyPI (checkov's env_vars_config; ``--skip-download`` below).
OFFLINE_ENVIRONMENT = {
    "BC_SKIP_MAPPING": "TRUE",
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
}
CREDENTIAL_VARIABLES = ("BC_API_KEY", "PRISMA_API_URL", "BC_API_URL")


class SkipListError(ValueError):
    """The skip list is malformed: an entry lacks an id, a pattern or a real reason."""


class CheckovError(RuntimeError):
    """checkov crashed or wrote something that is not its JSON report."""


@dataclass(frozen=True)
class Finding:
    """One check that failed (or was suppressed in the template) on one resource."""

    check_id: str
    check_name: str
    stack: str
    logical_id: str
    resource_type: str

    @property
    def address(self) -> str:
        """``<stack name>/<logical id>``: what a skip's resource patterns match."""
        return f"{self.stack}/{self.logical_id}"

    def __str__(self) -> str:
        return f"{self.check_id} {self.address} ({self.resource_type}): {self.check_name}"


@dataclass(frozen=True)
class Skip:
    """A listed finding: a check id, the resources it covers (all if none), and why."""

    check_id: str
    resources: tuple[str, ...]
    reason: str
    #: The finding depends on values that change with every synthesis (a commit id that
    #: checkov's entropy-based secret detector reads as a key on some commits only): such a
    #: skip may match nothing without being stale.
    content_dependent: bool = False

    def patterns(self) -> tuple[str, ...]:
        return self.resources or ("*",)

    def matches(self, finding: Finding, pattern: str) -> bool:
        return finding.check_id == self.check_id and fnmatch.fnmatchcase(finding.address, pattern)


@dataclass(frozen=True)
class ScanResult:
    """What a scan found that the skip list does not account for."""

    unlisted: tuple[Finding, ...]
    stale: tuple[tuple[Skip, str], ...]
    parsing_errors: tuple[str, ...]
    listed: int

    @property
    def clean(self) -> bool:
        return not (self.unlisted or self.stale or self.parsing_errors)

    def report(self) -> str:
        lines = [f"checkov: {self.listed} listed finding(s) skipped with their reasons"]
        lines += [f"UNLISTED {finding}" for finding in self.unlisted]
        lines += [
            f"STALE {skip.check_id} {pattern}: matches no finding; remove it from the list"
            for skip, pattern in self.stale
        ]
        lines += [f"NOT PARSED {path}" for path in self.parsing_errors]
        if self.unlisted:
            lines.append(
                "Fix each unlisted finding, or list it in stacks/checkov_skips.toml with a "
                "true reason."
            )
        return "\n".join(lines)


def _skip(entry: Any, index: int) -> Skip:
    where = f"skip[{index}]"
    if not isinstance(entry, Mapping):
        raise SkipListError(f"{where} must be a table")
    unknown = set(entry) - {"id", "resources", "reason", "content_dependent"}
    if unknown:
        raise SkipListError(f"{where} has unknown keys {sorted(unknown)}")
    check_id = entry.get("id")
    if not isinstance(check_id, str) or not CHECK_ID.match(check_id):
        raise SkipListError(f"{where}.id={check_id!r} is not a checkov AWS check id")
    where = f"{where} ({check_id})"
    reason = entry.get("reason")
    if not isinstance(reason, str) or len(" ".join(reason.split())) < MIN_REASON_CHARS:
        raise SkipListError(f"{where}.reason must say why, in at least {MIN_REASON_CHARS} chars")
    resources = entry.get("resources", [])
    if not isinstance(resources, list) or not all(
        isinstance(r, str) and "/" in r for r in resources
    ):
        raise SkipListError(f"{where}.resources must be a list of '<stack>/<logical id>' patterns")
    content_dependent = entry.get("content_dependent", False)
    if not isinstance(content_dependent, bool):
        raise SkipListError(f"{where}.content_dependent must be true or false")
    return Skip(check_id, tuple(resources), " ".join(reason.split()), content_dependent)


def load_skips(path: Path = SKIPS_FILE) -> tuple[Skip, ...]:
    """The ``[[skip]]`` entries of a TOML skip list, each checked; fails on a malformed one."""
    document = tomllib.loads(path.read_text())
    unknown = set(document) - {"skip"}
    if unknown:
        raise SkipListError(f"{path.name}: unknown top-level keys {sorted(unknown)}")
    entries = document.get("skip", [])
    if not isinstance(entries, list):
        raise SkipListError(f"{path.name}: skip must be an array of tables ([[skip]])")
    return tuple(_skip(entry, index) for index, entry in enumerate(entries))


def _stack_name(result: Mapping[str, Any]) -> str:
    path = str(result.get("file_abs_path") or result.get("file_path") or "")
    name = Path(path).name
    return name.removesuffix(TEMPLATE_SUFFIX) if name.endswith(TEMPLATE_SUFFIX) else name


def _finding(result: Mapping[str, Any]) -> Finding:
    resource_type, _, logical_id = str(result["resource"]).partition(".")
    return Finding(
        check_id=str(result["check_id"]),
        check_name=str(result.get("check_name", "")),
        stack=_stack_name(result),
        logical_id=logical_id,
        resource_type=resource_type,
    )


def parse_report(report: Any) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """Findings (failed, and suppressed in the template) and unparsed files of a JSON report.

    checkov writes one object per framework (a list when several ran) and a bare summary
    when it found nothing to scan.
    """
    reports = report if isinstance(report, list) else [report]
    findings: dict[tuple[str, str], Finding] = {}
    parsing_errors: list[str] = []
    for one in reports:
        if not isinstance(one, Mapping):
            raise CheckovError("checkov's report is not a JSON object")
        results = one.get("results", {})
        for key in ("failed_checks", "skipped_checks"):
            for result in results.get(key, []):
                finding = _finding(result)
                findings[(finding.check_id, finding.address)] = finding
        parsing_errors += [str(path) for path in results.get("parsing_errors", [])]
    ordered = sorted(findings.values(), key=lambda f: (f.check_id, f.address))
    return tuple(ordered), tuple(parsing_errors)


def evaluate(
    findings: Iterable[Finding], skips: Sequence[Skip], parsing_errors: Sequence[str] = ()
) -> ScanResult:
    """Hold findings against the skip list: what is unlisted, and which patterns are stale."""
    found = tuple(findings)
    unlisted = tuple(
        f for f in found if not any(s.matches(f, p) for s in skips for p in s.patterns())
    )
    stale = tuple(
        (skip, pattern)
        for skip in skips
        if not skip.content_dependent
        for pattern in skip.patterns()
        if not any(skip.matches(f, pattern) for f in found)
    )
    return ScanResult(unlisted, stale, tuple(parsing_errors), len(found) - len(unlisted))


def offline_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` without platform credentials, with checkov's downloads switched off."""
    env = {k: v for k, v in base.items() if k not in CREDENTIAL_VARIABLES}
    return {**env, **OFFLINE_ENVIRONMENT}


def checkov_command(templates: Sequence[Path], checkov: Path = CHECKOV) -> list[str]:
    """The checkov command line: CloudFormation only, JSON out, nothing downloaded.

    Not ``--quiet``: it leaves the template-suppressed checks out of the JSON report.
    """
    command = [str(checkov), "--framework", "cloudformation", "--skip-download"]
    command += ["--output", "json"]
    for template in templates:
        command += ["--file", str(template)]
    return command


def run_checkov(templates: Sequence[Path], checkov: Path = CHECKOV) -> Any:
    """Run checkov on ``templates`` and return its parsed JSON report."""
    if not checkov.exists():
        raise CheckovError(f"{checkov} is missing: run `make setup` (it builds .venv-checkov)")
    if not templates:
        raise CheckovError("no templates to scan: run `make synth` first")
    completed = subprocess.run(  # noqa: S603 - argv: the pinned checkov and template paths
        checkov_command(templates, checkov),
        env=offline_environment(os.environ),
        capture_output=True,
        text=True,
        timeout=CHECKOV_TIMEOUT_S,
        check=False,
    )
    if completed.returncode not in CHECKOV_OK:
        raise CheckovError(f"checkov exited {completed.returncode}: {completed.stderr[-2000:]}")
    try:
        return json.loads(completed.stdout)
    except json.JSONDecodeError as error:
        raise CheckovError(f"checkov wrote no JSON report: {completed.stdout[:500]}") from error


def scan(
    templates: Sequence[Path], skips_file: Path = SKIPS_FILE, checkov: Path = CHECKOV
) -> ScanResult:
    """Scan ``templates`` with checkov and hold the findings against the skip list."""
    skips = load_skips(skips_file)
    findings, parsing_errors = parse_report(run_checkov(templates, checkov))
    return evaluate(findings, skips, parsing_errors)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="checkov over synthesized templates; fails on unlisted findings and stale skips"
    )
    parser.add_argument("templates", nargs="+", type=Path, help="synthesized *.template.json")
    parser.add_argument("--skips", type=Path, default=SKIPS_FILE)
    parser.add_argument("--checkov", type=Path, default=CHECKOV)
    args = parser.parse_args(argv)
    result = scan(args.templates, args.skips, args.checkov)
    print(result.report())
    return 0 if result.clean else 1


if __name__ == "__main__":
    sys.exit(main())
