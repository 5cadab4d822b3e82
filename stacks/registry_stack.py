"""The registry stack: where trained models wait for a reviewer's approval."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput
from constructs import Construct

from stacks.components.data_lake import DataLake
from stacks.components.model_registry import ModelRegistry
from stacks.config import StageConfig
from stacks.naming import rollback_alarm_names
from stacks.platform_stack import PlatformStack


class RegistryStack(PlatformStack):
    """Composes :class:`ModelRegistry`; exposes ``registry``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        data_lake: DataLake,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        names = self.names
        self.registry = ModelRegistry(
            self,
            "Registry",
            group_name=names.model_package_group,
            names=names,
            data_key=data_lake.key,
            curated_bucket=data_lake.curated_bucket,
            artifact_bucket=data_lake.artifact_bucket,
            capture_bucket=data_lake.capture_bucket,
            training_image_repository=names.image_repository("training"),
            serving_image_repository=names.image_repository("serving"),
            rollback_alarm_names=rollback_alarm_names(names),
            reader_accounts=config.registry_reader_accounts,
        )
        CfnOutput(self, "ModelPackageGroupName", value=self.registry.group_name)
        CfnOutput(self, "ApproverRoleArn", value=self.registry.approver_role.role_arn)
        CfnOutput(self, "TrainingRoleArn", value=self.registry.training_role.role_arn)
        CfnOutput(self, "ServingRoleArn", value=self.registry.serving_role.role_arn)
