"""The API stack: the authenticated REST API clinical applications call for risk scores."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.components.api_gateway_account import ApiGatewayCloudWatchRole
from stacks.components.data_lake import DataLake
from stacks.components.network import PrivateNetwork
from stacks.components.prediction_api import PredictionApi
from stacks.config import StageConfig
from stacks.platform_stack import PlatformStack


class ApiStack(PlatformStack):
    """Composes :class:`PredictionApi` and, where the stage creates it, the account's
    :class:`ApiGatewayCloudWatchRole`; exposes ``prediction_api`` and ``cloudwatch_role``
    (``None`` where the account already has one)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        network: PrivateNetwork,
        data_lake: DataLake,
        deid_secret: secretsmanager.ISecret,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        names, retain = self.names, self.retain
        key = self.service_key(
            "api",
            "encrypts the API's access logs and Lambda settings",
        )
        self.prediction_api = PredictionApi(
            self,
            "PredictionApi",
            api_name=names.api,
            function_name=names.function("predict"),
            endpoint_name=names.endpoint,
            api_config=config.api,
            deid_secret=deid_secret,
            data_key=data_lake.key,
            vpc=network.vpc,
            subnets=network.subnets,
            security_group=network.workload_security_group,
            key=key,
            log_retention_days=config.retention.log_group_days,
            retain_logs=retain,
            cds_hooks=config.cds_hooks,
            authorizer_function_name=names.function("cds_authorizer"),
        )
        self.cloudwatch_role = (
            ApiGatewayCloudWatchRole(
                self,
                "ApiGatewayCloudWatchRole",
                description=(
                    "API Gateway's CloudWatch Logs role for this account and region (set by "
                    f"{config.prefix}; shared by every REST API here, retained on delete)"
                ),
            )
            if config.api.creates_cloudwatch_role
            else None
        )
        if self.cloudwatch_role is not None:
            self.cloudwatch_role.precede_stage_of(self.prediction_api.api)
        CfnOutput(self, "ApiUrl", value=self.prediction_api.api.url)
