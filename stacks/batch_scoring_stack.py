"""The batch-scoring stack: nightly scoring of the day's discharges into the worklist."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.components.batch_scoring import BatchScoring
from stacks.components.data_lake import DataLake
from stacks.components.model_registry import ModelRegistry
from stacks.components.network import PrivateNetwork
from stacks.config import StageConfig
from stacks.platform_stack import PlatformStack


class BatchScoringStack(PlatformStack):
    """Composes :class:`BatchScoring`; exposes ``batch_scoring`` (its ``table`` is the worklist)."""

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
            "batch-scoring",
            "encrypts batch scoring's logs and settings",
        )
        self.batch_scoring = BatchScoring(
            self,
            "BatchScoring",
            names=names,
            config=config.batch_scoring,
            curated_bucket=data_lake.curated_bucket,
            data_key=data_lake.key,
            glue_database_name=data_lake.glue_database_name,
            serving_role=registry.serving_role,
            alert_topic=alert_topic,
            vpc=network.vpc,
            subnets=network.subnets,
            security_group=network.workload_security_group,
            key=key,
            log_retention_days=config.retention.log_group_days,
            retain=retain,
        )
        CfnOutput(self, "WorklistTableName", value=names.worklist_table)
        CfnOutput(self, "StateMachineName", value=names.batch_scoring_state_machine)
