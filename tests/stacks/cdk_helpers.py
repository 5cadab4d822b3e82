"""Helpers shared by the CDK tests: the real cdk.json context and a synthesized app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import App

REPO_ROOT = Path(__file__).resolve().parents[2]


def cdk_context() -> dict[str, Any]:
    """The ``context`` block of the repository's cdk.json."""
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def app_for_stage(stage: str, outdir: str) -> App:
    """An App carrying cdk.json's context for ``stage``, as the CDK CLI would build it."""
    context = {**cdk_context(), "stage": stage}
    return App(context=context, outdir=outdir)
