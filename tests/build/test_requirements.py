"""The artifacts' own requirements files pin the same versions as requirements.txt."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)")


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            name = re.sub(r"\[.*\]", "", match.group(1)).lower().replace("_", "-")
            pins[name] = match.group(2)
    return pins


def test_every_direct_dependency_is_pinned_exactly() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert lines
    assert all(PIN.match(line) for line in lines), [line for line in lines if not PIN.match(line)]


def test_the_lock_agrees_with_the_direct_pins() -> None:
    direct = _pins(REPO_ROOT / "requirements.txt")
    locked = _pins(REPO_ROOT / "requirements.lock")
    assert {name: locked.get(name) for name in direct} == direct


@pytest.mark.parametrize("artifact", ["training", "inference"])
def test_artifact_requirements_match_the_project_pins(artifact: str) -> None:
    path = REPO_ROOT / artifact / "requirements.txt"
    artifact_pins = _pins(path)
    assert artifact_pins, f"{path} pins nothing"
    project = _pins(REPO_ROOT / "requirements.txt")
    locked = _pins(REPO_ROOT / "requirements.lock")
    for name, version in artifact_pins.items():
        assert project.get(name, locked.get(name)) == version, f"{artifact}: {name}=={version}"
