"""The ETL stack: the Glue job, its key secret and security configuration, the catalog tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from stacks.components.data_lake import DataLake, role_arns
from stacks.components.feature_etl import FeatureEtl
from stacks.components.network import PrivateNetwork
from stacks.components.service_key import ServiceKey
from stacks.config import StageConfig
from stacks.naming import ResourceNames
from stacks.wildcards import acknowledge_inline_policies


class EtlStack(Stack):
    """Composes :class:`FeatureEtl`; exposes ``etl``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        data_lake: DataLake,
        network: PrivateNetwork,
        script: Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        acknowledge_inline_policies(self)
        names = ResourceNames(config.prefix)
        log_key = ServiceKey(
            self,
            "LogKey",
            alias=f"alias/{config.prefix}-etl",
            description=f"{config.prefix}: encrypts the Glue job's logs and bookmarks",
            retain=config.retention.retain_data_on_delete,
        ).key
        self.etl = FeatureEtl(
            self,
            "Etl",
            job_name=names.glue_job,
            security_configuration_name=names.glue_security_configuration,
            secret_name=names.deid_secret,
            secret_readers=role_arns(names, data_lake.access.deid_secret),
            role_name=names.role("etl"),
            etl=config.etl,
            data_key=data_lake.key,
            log_key=log_key,
            raw_bucket=data_lake.raw_bucket,
            curated_bucket=data_lake.curated_bucket,
            database_name=data_lake.glue_database_name,
            vpc=network.vpc,
            subnets=network.subnets,
            security_group=network.etl_security_group,
            script=script,
        )
        CfnOutput(self, "GlueJobName", value=self.etl.job_name)
        CfnOutput(self, "DeidentificationSecretArn", value=self.etl.deid_secret.secret_arn)
