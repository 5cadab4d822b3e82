#!/usr/bin/env python3
"""CDK entry point: read the stage's configuration once and compose the stacks."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from aws_cdk import App, Environment, Stack, Tags
from constructs import Construct

from stacks.api_stack import ApiStack
from stacks.batch_scoring_stack import BatchScoringStack
from stacks.components.worklist_site import ACCESS_LOG_PREFIX as WORKLIST_ACCESS_LOG_PREFIX
from stacks.config import StageConfig, load_pipeline_config, load_stage_config
from stacks.data_lake_stack import DataLakeStack
from stacks.deployment_stack import DeploymentStack
from stacks.etl_stack import EtlStack
from stacks.monitoring_stack import MonitoringStack
from stacks.nag import apply_compliance_checks
from stacks.network_stack import NetworkStack
from stacks.pipeline_stack import PipelineStack
from stacks.registry_stack import RegistryStack
from stacks.training_pipeline_stack import TrainingPipelineStack
from stacks.worklist_stack import WorklistStack

DEFAULT_STAGE = "dev"
PIPELINE_STACK_NAME = "Readmission-Pipeline"

#: Stack names, ``Readmission-<stage>-<name>``, in deployment order.
STACK_NAMES = (
    "Network",
    "DataLake",
    "Monitoring",
    "Registry",
    "Etl",
    "TrainingPipeline",
    "Deployment",
    "Api",
    "BatchScoring",
    "Worklist",
)


def _context(app: App) -> dict[str, object]:
    context = {key: app.node.try_get_context(key) for key in ("project", "stages", "pipeline")}
    return {k: v for k, v in context.items() if v is not None}


def stage_config(app: App, stage: str | None = None) -> StageConfig:
    """Read ``-c stage=...`` (default dev), or ``stage``, from the ``cdk.json`` context."""
    stage = stage or app.node.try_get_context("stage") or DEFAULT_STAGE
    return load_stage_config(_context(app), stage)


def add_stacks(
    app: Construct, config: StageConfig, env: Environment | None = None
) -> dict[str, Stack]:
    """Add the stage's stacks to ``app``, wired by keyword arguments; return them by name.

    Monitoring comes before the stacks it watches because they publish to its topic (it
    addresses their resources by the names of ``stacks.naming``).
    """
    prefix = f"Readmission-{config.stage}"
    network = NetworkStack(app, f"{prefix}-Network", config=config, env=env)
    data_lake = DataLakeStack(app, f"{prefix}-DataLake", config=config, env=env)
    lake = data_lake.data_lake
    monitoring = MonitoringStack(
        app,
        f"{prefix}-Monitoring",
        config=config,
        network=network.network,
        capture_bucket=lake.capture_bucket,
        data_key=lake.key,
        env=env,
    )
    registry = RegistryStack(app, f"{prefix}-Registry", config=config, data_lake=lake, env=env)
    etl = EtlStack(
        app, f"{prefix}-Etl", config=config, data_lake=lake, network=network.network, env=env
    )
    pipeline = TrainingPipelineStack(
        app,
        f"{prefix}-TrainingPipeline",
        config=config,
        network=network.network,
        data_lake=lake,
        registry=registry.registry,
        alert_topic=monitoring.alert_topic,
        env=env,
    )
    pipeline.add_stack_dependency(etl, "the pipeline starts the ETL job by name")
    deployment = DeploymentStack(
        app,
        f"{prefix}-Deployment",
        config=config,
        network=network.network,
        data_lake=lake,
        registry=registry.registry,
        alert_topic=monitoring.alert_topic,
        env=env,
    )
    api = ApiStack(
        app,
        f"{prefix}-Api",
        config=config,
        network=network.network,
        data_lake=lake,
        deid_secret=etl.etl.deid_secret,
        env=env,
    )
    batch_scoring = BatchScoringStack(
        app,
        f"{prefix}-BatchScoring",
        config=config,
        network=network.network,
        data_lake=lake,
        registry=registry.registry,
        alert_topic=monitoring.alert_topic,
        env=env,
    )
    worklist = WorklistStack(
        app,
        f"{prefix}-Worklist",
        config=config,
        network=network.network,
        table=batch_scoring.batch_scoring.table,
        access_log_bucket=lake.access_log_bucket,
        env=env,
    )
    lake.admit_access_logs(WORKLIST_ACCESS_LOG_PREFIX)
    stacks: list[Stack] = [
        network,
        data_lake,
        monitoring,
        registry,
        etl,
        pipeline,
        deployment,
        api,
        batch_scoring,
        worklist,
    ]
    return dict(zip(STACK_NAMES, stacks, strict=True))


def build_app(app: App) -> App:
    """Add every stack of the configured stage to ``app`` and attach the compliance checks.

    With ``pipeline.enabled`` the app holds the dev-to-prod pipeline instead, which deploys
    both stages to their accounts (stacks/pipeline_stack.py); otherwise ``cdk deploy`` deploys
    the ``-c stage`` stage to the current account, as it always has.
    """
    config = stage_config(app)
    pipeline = load_pipeline_config(_context(app))
    if pipeline is not None:
        PipelineStack(
            app,
            PIPELINE_STACK_NAME,
            pipeline=pipeline,
            dev=stage_config(app, "dev"),
            prod=stage_config(app, "prod"),
            build=add_stacks,
        )
    else:
        env = Environment(
            account=os.environ.get("CDK_DEPLOY_ACCOUNT", os.environ.get("CDK_DEFAULT_ACCOUNT")),
            region=os.environ.get("CDK_DEPLOY_REGION", os.environ.get("CDK_DEFAULT_REGION")),
        )
        add_stacks(app, config, env)
    for key, value in (
        ("project", config.project),
        ("stage", config.stage),
        ("data-classification", "phi"),
    ):
        Tags.of(app).add(key, value)
    apply_compliance_checks(app)
    return app


def _stage_and_outdir(text: str) -> tuple[str, str]:
    stage, sep, outdir = text.partition("=")
    if not (stage and sep and outdir):
        raise argparse.ArgumentTypeError(f"expected STAGE=DIR, got {text!r}")
    return stage, outdir


def main(argv: Sequence[str] | None = None) -> None:
    """Synthesize the stage the CDK CLI asked for, then each ``--also-stage STAGE=DIR``.

    ``make synth`` synthesizes every stage in this one process: the CDK libraries load into
    jsii's node kernel once, which is about a third of each stage's CPU time. A further stage's
    ``App`` reads the CLI's context and environment as the first does, with only ``stage``
    replaced (post-CLI context takes precedence over the CLI's), so its templates are the ones
    ``cdk synth -c stage=STAGE`` writes (tests/stacks/test_cli_synth.py compares them);
    ``cdk synth --app DIR`` then runs the CLI's own checks on that assembly.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--also-stage", type=_stage_and_outdir, action="append", default=[])
    args = parser.parse_args(argv)
    build_app(App()).synth()
    for stage, outdir in args.also_stage:
        build_app(App(post_cli_context={"stage": stage}, outdir=outdir)).synth()


if __name__ == "__main__":
    main()
