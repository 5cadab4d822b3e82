"""The ETL stack: the Glue job, its key secret and security configuration, the catalog tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput
from constructs import Construct

from stacks.components.data_lake import DataLake, role_arns
from stacks.components.feature_etl import FeatureEtl
from stacks.components.network import PrivateNetwork
from stacks.config import StageConfig
from stacks.platform_stack import PlatformStack


class EtlStack(PlatformStack):
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
        super().__init__(scope, construct_id, config=config, **kwargs)
        names = self.names
        log_key = self.service_key(
            "etl",
            "encrypts the Glue job's logs and bookmarks",
            construct_id="LogKey",
        )
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
