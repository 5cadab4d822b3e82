"""The data lake: one KMS key, the four data buckets, their access-log bucket, the catalog."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.components.secure_bucket import NO_REPLICATION_REASON, LifecyclePolicy, SecureBucket
from stacks.config import RetentionConfig
from stacks.nag import acknowledge

#: Raw extracts move to infrequent access once the ETL has read them.
RAW_INFREQUENT_ACCESS_DAYS = 30


class DataLake(Construct):
    """KMS key with rotation and the raw, curated, artifact and capture buckets.

    Exposes ``key``, ``access_log_bucket``, ``raw_bucket``, ``curated_bucket``,
    ``artifact_bucket``, ``capture_bucket`` and ``glue_database_name``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        retention: RetentionConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retention.retain_data_on_delete else RemovalPolicy.DESTROY
        self.key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{prefix}-data",
            description=f"{prefix}: encrypts patient data at rest in the data lake",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.access_log_bucket = self._access_log_bucket(retention, removal)

        def data_bucket(name: str, lifecycle: LifecyclePolicy) -> s3.Bucket:
            return SecureBucket(
                self,
                name,
                encryption_key=self.key,
                access_log_bucket=self.access_log_bucket,
                lifecycle=lifecycle,
                retain_on_delete=retention.retain_data_on_delete,
            ).bucket

        versions = retention.noncurrent_version_days
        self.raw_bucket = data_bucket(
            "Raw",
            LifecyclePolicy(
                expire_after_days=retention.raw_days,
                noncurrent_version_days=versions,
                infrequent_access_after_days=RAW_INFREQUENT_ACCESS_DAYS,
            ),
        )
        self.curated_bucket = data_bucket("Curated", LifecyclePolicy(None, versions))
        self.artifact_bucket = data_bucket("Artifacts", LifecyclePolicy(None, versions))
        self.capture_bucket = data_bucket(
            "Capture", LifecyclePolicy(retention.capture_days, versions)
        )

        self.glue_database_name = prefix.replace("-", "_")
        glue.CfnDatabase(
            self,
            "CatalogDatabase",
            catalog_id=Stack.of(self).account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.glue_database_name,
                description="De-identified readmission features (curated bucket)",
                location_uri=self.curated_bucket.s3_url_for_object("features/"),
            ),
        )

    def _access_log_bucket(self, retention: RetentionConfig, removal: RemovalPolicy) -> s3.Bucket:
        """S3 server access logs can only be delivered to an SSE-S3 bucket, not SSE-KMS."""
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(retention.access_log_days),
                    noncurrent_version_expiration=Duration.days(retention.noncurrent_version_days),
                )
            ],
            removal_policy=removal,
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyNonLogDeliveryWrites",
                effect=iam.Effect.DENY,
                not_principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects("*")],
            )
        )
        loop = "This is the server access log bucket; logging it into itself would loop."
        acknowledge(bucket, loop, "AwsSolutions-S1", "HIPAA.Security-S3BucketLoggingEnabled")
        acknowledge(
            bucket,
            "S3 server access log delivery supports only SSE-S3 destination buckets.",
            "HIPAA.Security-S3DefaultEncryptionKMS",
        )
        acknowledge(bucket, NO_REPLICATION_REASON, "HIPAA.Security-S3BucketReplicationEnabled")
        return bucket
