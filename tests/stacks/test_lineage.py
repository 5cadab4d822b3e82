"""Which commit a synthesis deploys: the build's, else the checkout's, marked when it is dirty."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stacks.lineage import SourceLineage, source_lineage


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    git(tmp_path, "remote", "add", "origin", "https://example.org/readmission.git")
    (tmp_path / "a.txt").write_text("a\n")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "first")
    return tmp_path


def test_the_builds_commit_and_repository_win(checkout: Path) -> None:
    environ = {
        "CODEBUILD_RESOLVED_SOURCE_VERSION": "f" * 40,
        "CODEBUILD_SOURCE_REPO_URL": "https://example.org/other.git",
    }
    assert source_lineage(environ, checkout) == SourceLineage(
        repository="https://example.org/other.git", commit="f" * 40
    )


def test_a_clean_checkout_gives_its_head_and_origin(checkout: Path) -> None:
    head = git(checkout, "rev-parse", "HEAD")
    assert source_lineage({}, checkout) == SourceLineage(
        repository="https://example.org/readmission.git", commit=head
    )


def test_uncommitted_changes_mark_the_commit_dirty(checkout: Path) -> None:
    (checkout / "a.txt").write_text("changed\n")
    assert source_lineage({}, checkout).commit.endswith("-dirty")


def test_outside_a_checkout_nothing_is_known(tmp_path: Path) -> None:
    assert source_lineage({}, tmp_path / "nowhere") == SourceLineage(repository="", commit="")
