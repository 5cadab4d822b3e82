"""The data lake stack: storage for raw extracts, features, models and endpoint capture.

It also holds the audit trail of those buckets: the stage's own CloudTrail trail, or, when
``audit.existing_trail_arn`` names the organisation's trail, the data event selectors that
trail must carry (output ``RequiredTrailEventSelectors``).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput
from constructs import Construct

from stacks.components.audit_trail import AuditRetention, AuditTrail, event_selectors
from stacks.components.data_lake import DataLake
from stacks.config import StageConfig
from stacks.platform_stack import PlatformStack


class DataLakeStack(PlatformStack):
    """Composes :class:`DataLake` and :class:`AuditTrail` and exports their names.

    Exposes ``data_lake``, ``audit_trail`` (``None`` with an existing trail) and
    ``audit_trail_arn``.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        names = self.names
        self.data_lake = DataLake(self, "DataLake", names=names, retention=config.retention)
        lake = self.data_lake
        self.audit_trail: AuditTrail | None = None
        if config.audit.existing_trail_arn is None:
            self.audit_trail = AuditTrail(
                self,
                "AuditTrail",
                trail_name=names.audit_trail,
                data_buckets=lake.phi_buckets,
                access_log_bucket=lake.access_log_bucket,
                retention=AuditRetention(
                    object_lock_mode=config.audit.object_lock_mode,
                    object_lock_days=config.audit.object_lock_days,
                    log_file_days=config.retention.audit_log_days,
                    noncurrent_version_days=config.retention.noncurrent_version_days,
                    log_group_days=config.retention.log_group_days,
                ),
            )
            self.audit_trail_arn = self.audit_trail.trail_arn
            CfnOutput(self, "AuditBucketName", value=self.audit_trail.bucket.bucket_name)
        else:
            self.audit_trail_arn = config.audit.existing_trail_arn
            CfnOutput(
                self,
                "RequiredTrailEventSelectors",
                description="Advanced event selectors the existing trail must include",
                value=self.to_json_string(
                    event_selectors([bucket.bucket_arn for bucket in lake.phi_buckets])
                ),
            )
        CfnOutput(self, "AuditTrailArn", value=self.audit_trail_arn)
        for name, bucket in (
            ("RawBucketName", lake.raw_bucket),
            ("CuratedBucketName", lake.curated_bucket),
            ("ArtifactBucketName", lake.artifact_bucket),
            ("CaptureBucketName", lake.capture_bucket),
        ):
            CfnOutput(self, name, value=bucket.bucket_name)
        CfnOutput(self, "DataKeyArn", value=lake.key.key_arn)
        CfnOutput(self, "IngestRoleArn", value=lake.ingest_role.role_arn)
        CfnOutput(self, "GlueDatabaseName", value=lake.glue_database_name)
