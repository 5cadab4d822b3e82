"""The data lake stack: storage for raw extracts, features, models and endpoint capture."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from stacks.components.data_lake import DataLake
from stacks.config import StageConfig


class DataLakeStack(Stack):
    """Composes the :class:`DataLake` construct and exports its names."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.data_lake = DataLake(
            self, "DataLake", prefix=config.prefix, retention=config.retention
        )
        for name, bucket in (
            ("RawBucketName", self.data_lake.raw_bucket),
            ("CuratedBucketName", self.data_lake.curated_bucket),
            ("ArtifactBucketName", self.data_lake.artifact_bucket),
            ("CaptureBucketName", self.data_lake.capture_bucket),
        ):
            CfnOutput(self, name, value=bucket.bucket_name)
        CfnOutput(self, "DataKeyArn", value=self.data_lake.key.key_arn)
        CfnOutput(self, "GlueDatabaseName", value=self.data_lake.glue_database_name)
