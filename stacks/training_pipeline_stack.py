"""The training pipeline stack: scheduled and drift-triggered retraining up to the registry."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.components.data_lake import DataLake
from stacks.components.model_registry import ModelRegistry
from stacks.components.network import PrivateNetwork
from stacks.components.service_key import ServiceKey
from stacks.components.training_pipeline import PipelineNames, TrainingPipeline
from stacks.config import StageConfig
from stacks.naming import ResourceNames
from stacks.wildcards import acknowledge_inline_policies


class TrainingPipelineStack(Stack):
    """Composes :class:`TrainingPipeline`; exposes ``pipeline``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        network: PrivateNetwork,
        data_lake: DataLake,
        registry: ModelRegistry,
        alert_topic: sns.ITopic,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        acknowledge_inline_policies(self)
        names = ResourceNames(config.prefix)
        retain = config.retention.retain_data_on_delete
        key = ServiceKey(
            self,
            "OperationsKey",
            alias=f"alias/{config.prefix}-training-pipeline",
            description=f"{config.prefix}: encrypts the pipeline's logs and Lambda settings",
            retain=retain,
        ).key
        self.pipeline = TrainingPipeline(
            self,
            "Pipeline",
            names=PipelineNames(
                state_machine=names.state_machine,
                training_job_prefix=f"{config.prefix}-train",
                registrar_function=names.function("registrar"),
                glue_job=names.glue_job,
                feature_drift_alarm=names.feature_drift_alarm,
            ),
            training=config.training,
            endpoint=config.endpoint,
            schedule=config.retraining_schedule,
            registry=registry,
            data_key=data_lake.key,
            curated_bucket=data_lake.curated_bucket,
            artifact_bucket=data_lake.artifact_bucket,
            alert_topic=alert_topic,
            vpc=network.vpc,
            subnets=network.subnets,
            security_group=network.workload_security_group,
            key=key,
            log_retention_days=config.retention.log_group_days,
            retain_logs=retain,
            etl_timeout_minutes=config.etl.timeout_minutes,
        )
        CfnOutput(self, "StateMachineArn", value=self.pipeline.state_machine.state_machine_arn)
