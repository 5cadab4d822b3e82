"""The deployment stack: approved model versions reach the endpoint, rejected ones leave it."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.components.data_lake import DataLake
from stacks.components.endpoint_deployment import EndpointDeployment
from stacks.components.model_registry import ModelRegistry
from stacks.components.network import PrivateNetwork
from stacks.config import StageConfig
from stacks.platform_stack import PlatformStack


class DeploymentStack(PlatformStack):
    """Composes :class:`EndpointDeployment`; exposes ``deployment``."""

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
            "deployment",
            "encrypts the deployer's logs, settings and queues",
        )
        self.deployment = EndpointDeployment(
            self,
            "Deployment",
            names=names,
            endpoint=config.endpoint,
            rollout=config.rollout,
            thresholds=config.alarms,
            registry=registry,
            data_key=data_lake.key,
            artifact_bucket=data_lake.artifact_bucket,
            capture_bucket=data_lake.capture_bucket,
            alert_topic=alert_topic,
            vpc=network.vpc,
            subnets=network.subnets,
            security_group=network.workload_security_group,
            key=key,
            log_retention_days=config.retention.log_group_days,
            retain_logs=retain,
        )
        CfnOutput(self, "EndpointName", value=names.endpoint)
