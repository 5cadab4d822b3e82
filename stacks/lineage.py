"""Which code a synthesis deploys: the repository and commit the registrar puts on every version.

Read once per synthesis, from the build's environment where the pipeline runs it (CodeBuild
names the resolved commit and the source URL:
https://docs.aws.amazon.com/codebuild/latest/userguide/build-env-ref-env-vars.html), else from
the git checkout; empty when neither knows (the registrar then says so on the card).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stacks.packaging import REPO_ROOT

COMMIT_ENV = "CODEBUILD_RESOLVED_SOURCE_VERSION"
REPOSITORY_ENV = "CODEBUILD_SOURCE_REPO_URL"
#: Appended to a commit whose checkout has uncommitted changes: the commit alone is not the code.
DIRTY_SUFFIX = "-dirty"


@dataclass(frozen=True)
class SourceLineage:
    """The repository and commit of the synthesized code (empty strings when unknown)."""

    repository: str
    commit: str


def _git(root: Path, *args: str) -> str:
    git = shutil.which("git")
    if git is None:
        return ""
    try:
        done = subprocess.run(  # noqa: S603 - argv: git and fixed arguments, no input
            [git, "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def source_lineage(environ: Mapping[str, str], root: Path = REPO_ROOT) -> SourceLineage:
    """The build's commit and repository, or the checkout's (``-dirty`` when it has changes)."""
    commit = environ.get(COMMIT_ENV, "")
    repository = environ.get(REPOSITORY_ENV, "")
    if not commit:
        commit = _git(root, "rev-parse", "HEAD")
        if commit and _git(root, "status", "--porcelain", "--untracked-files=no"):
            commit += DIRTY_SUFFIX
    if not repository:
        repository = _git(root, "config", "--get", "remote.origin.url")
    return SourceLineage(repository=repository, commit=commit)
