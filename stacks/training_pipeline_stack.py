"""The training pipeline stack: scheduled and drift-triggered retraining up to the registry."""

from __future__ import annotations

import os
from typing import Any

from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.components.container_images import ContainerImages
from stacks.components.data_lake import DataLake
from stacks.components.model_registry import ModelRegistry
from stacks.components.network import PrivateNetwork
from stacks.components.training_pipeline import PipelineNames, TrainingPipeline
from stacks.config import StageConfig
from stacks.lineage import source_lineage
from stacks.platform_stack import PlatformStack


class TrainingPipelineStack(PlatformStack):
    """Composes :class:`ContainerImages` and :class:`TrainingPipeline`; exposes ``images``
    and ``pipeline``."""

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
        super().__init__(scope, construct_id, config=config, **kwargs)
        names, retain = self.names, self.retain
        key = self.service_key(
            "training-pipeline",
            "encrypts the pipeline's logs, Lambda settings, image repositories and image builds",
        )
        self.images = ContainerImages(
            self,
            "Images",
            training_repository_name=names.image_repository("training"),
            serving_repository_name=names.image_repository("serving"),
            project_name=names.image_build_project,
            training_instance_type=config.training.instance_type,
            serving_instance_type=config.endpoint.instance_type,
            key=key,
            keep_last=config.images.keep_last,
            build_timeout=Duration.minutes(config.images.build_timeout_minutes),
            log_retention_days=config.retention.log_group_days,
            retain=retain,
        )
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
            images=self.images,
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
            # The build's environment, read once here: which commit this synthesis deploys.
            lineage=source_lineage(os.environ),
        )
        CfnOutput(self, "StateMachineArn", value=self.pipeline.state_machine.state_machine_arn)
        CfnOutput(self, "TrainingImageUri", value=self.images.training_image_uri)
        CfnOutput(self, "ServingImageUri", value=self.images.serving_image_uri)
        CfnOutput(self, "ImageBuildProjectName", value=self.images.project.project_name)
