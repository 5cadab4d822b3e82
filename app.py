#!/usr/bin/env python3
"""CDK entry point: read the stage's configuration once and compose the stacks."""

from __future__ import annotations

import os

from aws_cdk import App, Environment, Tags

from stacks.config import StageConfig, load_stage_config
from stacks.data_lake_stack import DataLakeStack
from stacks.nag import apply_compliance_checks

DEFAULT_STAGE = "dev"


def stage_config(app: App) -> StageConfig:
    """Read ``-c stage=...`` (default dev) and its section of the ``cdk.json`` context."""
    stage = app.node.try_get_context("stage") or DEFAULT_STAGE
    context = {key: app.node.try_get_context(key) for key in ("project", "stages")}
    return load_stage_config({k: v for k, v in context.items() if v is not None}, stage)


def build_app(app: App) -> App:
    """Add every stack of the configured stage to ``app`` and attach the compliance checks."""
    config = stage_config(app)
    env = Environment(
        account=os.environ.get("CDK_DEPLOY_ACCOUNT", os.environ.get("CDK_DEFAULT_ACCOUNT")),
        region=os.environ.get("CDK_DEPLOY_REGION", os.environ.get("CDK_DEFAULT_REGION")),
    )
    prefix = f"Readmission-{config.stage}"
    DataLakeStack(app, f"{prefix}-DataLake", config=config, env=env)
    for key, value in (
        ("project", config.project),
        ("stage", config.stage),
        ("data-classification", "phi"),
    ):
        Tags.of(app).add(key, value)
    apply_compliance_checks(app)
    return app


if __name__ == "__main__":
    build_app(App()).synth()
