"""An S3 bucket with the protections every bucket of patient data needs."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.nag import acknowledge

#: Why no bucket replicates across regions (HIPAA.Security-S3BucketReplicationEnabled).
NO_REPLICATION_REASON = (
    "Patient data stays in the deployment region (data residency); durability comes from "
    "versioning and S3's multi-AZ storage. Cross-region DR is the operator's decision."
)


@dataclass(frozen=True)
class LifecyclePolicy:
    """When objects expire; ``None`` keeps current versions forever.

    ``expire_prefix`` limits the expiry to the objects under one prefix (``capture/``), so
    that what else the bucket holds (drift baselines, ground-truth labels) is kept.
    """

    expire_after_days: int | None
    noncurrent_version_days: int
    infrequent_access_after_days: int | None = None
    expire_prefix: str | None = None

    def __post_init__(self) -> None:
        if self.expire_prefix is not None and not self.expire_prefix.endswith("/"):
            raise ValueError(f"expire_prefix {self.expire_prefix!r} must end with '/'")


class SecureBucket(Construct):
    """KMS-encrypted, TLS-only, versioned, access-logged bucket with public access blocked.

    ``object_lock`` makes every new object version immutable for its default retention
    (S3 Object Lock can only be enabled when the bucket is created). Exposes ``self.bucket``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption_key: kms.IKey,
        access_log_bucket: s3.IBucket,
        lifecycle: LifecyclePolicy,
        retain_on_delete: bool,
        object_lock: s3.ObjectLockRetention | None = None,
        bucket_key: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        rules = [
            s3.LifecycleRule(
                id="expire-noncurrent-versions",
                noncurrent_version_expiration=Duration.days(lifecycle.noncurrent_version_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )
        ]
        if lifecycle.expire_after_days is not None:
            rules.append(
                s3.LifecycleRule(
                    id="expire-current-versions",
                    expiration=Duration.days(lifecycle.expire_after_days),
                    prefix=lifecycle.expire_prefix,
                )
            )
        if lifecycle.infrequent_access_after_days is not None:
            rules.append(
                s3.LifecycleRule(
                    id="to-infrequent-access",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(lifecycle.infrequent_access_after_days),
                        )
                    ],
                )
            )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=encryption_key,
            bucket_key_enabled=bucket_key,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_log_bucket,
            server_access_logs_prefix=f"{construct_id.lower()}/",
            lifecycle_rules=rules,
            removal_policy=RemovalPolicy.RETAIN if retain_on_delete else RemovalPolicy.DESTROY,
            auto_delete_objects=False,
            object_lock_enabled=object_lock is not None or None,
            object_lock_default_retention=object_lock,
        )
        acknowledge(self.bucket, NO_REPLICATION_REASON, "HIPAA.Security-S3BucketReplicationEnabled")
