"""The audit trail: who read or wrote patient data, and every control-plane change.

A multi-Region CloudTrail trail records management events and the S3 data events (object
reads and writes) of the PHI buckets, with log file validation, into a bucket that S3 Object
Lock keeps immutable for the configured retention, encrypted with a key of its own whose
policy lets CloudTrail use it for this trail only. A stage whose organisation already runs
a trail creates none: :func:`event_selectors` is then what that trail must carry (the
DataLake stack outputs it).

AWS documentation this follows:
- bucket policy: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html
- key policy: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html
- data events with advanced event selectors:
  https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-data-events-with-cloudtrail.html
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.components.data_lake import KEY_ADMIN_ACTIONS
from stacks.components.log_groups import encrypted_log_group
from stacks.components.secure_bucket import LifecyclePolicy, SecureBucket
from stacks.components.service_key import ENCRYPT_ACTIONS

CLOUDTRAIL = "cloudtrail.amazonaws.com"


@dataclass(frozen=True)
class AuditRetention:
    """How long the trail's files are locked and kept, and its CloudWatch copy, in days."""

    object_lock_mode: str
    object_lock_days: int
    log_file_days: int
    noncurrent_version_days: int
    log_group_days: int

    @property
    def object_lock(self) -> s3.ObjectLockRetention:
        duration = Duration.days(self.object_lock_days)
        if self.object_lock_mode == "COMPLIANCE":
            return s3.ObjectLockRetention.compliance(duration)
        return s3.ObjectLockRetention.governance(duration)


def trail_arn(trail_name: str) -> str:
    """ARN of a trail of this account whose home Region is the stack's."""
    return f"arn:{Aws.PARTITION}:cloudtrail:{Aws.REGION}:{Aws.ACCOUNT_ID}:trail/{trail_name}"


def event_selectors(bucket_arns: Sequence[str]) -> list[dict[str, Any]]:
    """Advanced event selectors: all management events; object events of the given buckets.

    As CloudTrail's API spells them (``put-event-selectors --advanced-event-selectors``).
    """
    return [
        {
            "Name": "All management events",
            "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}],
        },
        {
            "Name": "Object reads and writes of the PHI buckets",
            "FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Data"]},
                {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                {"Field": "resources.ARN", "StartsWith": [f"{arn}/" for arn in bucket_arns]},
            ],
        },
    ]


def _cfn_selectors(
    selectors: list[dict[str, Any]],
) -> list[cloudtrail.CfnTrail.AdvancedEventSelectorProperty]:
    return [
        cloudtrail.CfnTrail.AdvancedEventSelectorProperty(
            name=selector["Name"],
            field_selectors=[
                cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(
                    field=field["Field"],
                    equal_to=field.get("Equals"),
                    starts_with=field.get("StartsWith"),
                )
                for field in selector["FieldSelectors"]
            ],
        )
        for selector in selectors
    ]


def audit_key_policy(trail_name: str, log_group_name: str) -> iam.PolicyDocument:
    """Account administers; CloudTrail encrypts for this trail only; account reads log files."""
    account = iam.AccountRootPrincipal()
    this_trail = {"aws:SourceArn": trail_arn(trail_name)}
    any_trail_of_account = {
        "kms:EncryptionContext:aws:cloudtrail:arn": (
            f"arn:{Aws.PARTITION}:cloudtrail:*:{Aws.ACCOUNT_ID}:trail/*"
        )
    }
    log_group_arn = (
        f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{log_group_name}"
    )
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid="AccountAdministersTheKey",
                principals=[account],
                actions=list(KEY_ADMIN_ACTIONS),
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="CloudTrailEncryptsThisTrailsLogs",
                principals=[iam.ServicePrincipal(CLOUDTRAIL)],
                actions=["kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": this_trail, "StringLike": any_trail_of_account},
            ),
            iam.PolicyStatement(
                sid="CloudTrailDescribesTheKey",
                principals=[iam.ServicePrincipal(CLOUDTRAIL)],
                actions=["kms:DescribeKey"],
                resources=["*"],
                conditions={"StringEquals": this_trail},
            ),
            iam.PolicyStatement(
                sid="AccountDecryptsLogFiles",
                principals=[account],
                actions=["kms:Decrypt", "kms:ReEncryptFrom"],
                resources=["*"],
                conditions={
                    "StringEquals": {"kms:CallerAccount": Aws.ACCOUNT_ID},
                    "StringLike": any_trail_of_account,
                },
            ),
            # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
            iam.PolicyStatement(
                sid="CloudWatchLogsEncryptsTheTrailsLogGroup",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=list(ENCRYPT_ACTIONS),
                resources=["*"],
                conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}},
            ),
        ]
    )


class AuditTrail(Construct):
    """The trail, its Object Lock bucket, its key and its CloudWatch log group.

    Exposes ``trail_arn``, ``trail``, ``bucket``, ``key`` and ``log_group``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        trail_name: str,
        data_buckets: Sequence[s3.IBucket],
        access_log_bucket: s3.IBucket,
        retention: AuditRetention,
    ) -> None:
        super().__init__(scope, construct_id)
        if not data_buckets:
            raise ValueError("the trail needs the buckets whose data events it records")
        log_group_name = f"/aws/cloudtrail/{trail_name}"
        self.trail_arn = trail_arn(trail_name)
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{trail_name}",
            description=f"{trail_name}: encrypts the audit trail's log files and log group",
            enable_key_rotation=True,
            # Log files outlive the stack (Object Lock): so must the key that reads them.
            removal_policy=RemovalPolicy.RETAIN,
            policy=audit_key_policy(trail_name, log_group_name),
        )
        self.bucket = SecureBucket(
            self,
            "Trail",
            encryption_key=self.key,
            access_log_bucket=access_log_bucket,
            lifecycle=LifecyclePolicy(retention.log_file_days, retention.noncurrent_version_days),
            retain_on_delete=True,
            object_lock=retention.object_lock,
            # CloudTrail encrypts each file with the trail's key itself; an S3 Bucket Key
            # would also make trail creation need kms:Decrypt for the deploying role.
            bucket_key=False,
        ).bucket
        self._bucket_policy(self.bucket)
        self.log_group = encrypted_log_group(
            self,
            "Logs",
            key=self.key,
            days=retention.log_group_days,
            retain=True,
            log_group_name=log_group_name,
        )
        logs_role = iam.Role(
            self,
            "LogsRole",
            assumed_by=iam.ServicePrincipal(CLOUDTRAIL),
            description=f"{trail_name}: delivers the trail's events to its log group",
        )
        logs_role.add_to_policy(
            iam.PolicyStatement(
                sid="DeliverToTheTrailsLogGroup",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.trail = cloudtrail.CfnTrail(
            self,
            "Resource",
            trail_name=trail_name,
            is_logging=True,
            s3_bucket_name=self.bucket.bucket_name,
            kms_key_id=self.key.key_arn,
            enable_log_file_validation=True,
            include_global_service_events=True,
            is_multi_region_trail=True,
            cloud_watch_logs_log_group_arn=self.log_group.log_group_arn,
            cloud_watch_logs_role_arn=logs_role.role_arn,
            advanced_event_selectors=_cfn_selectors(
                event_selectors([bucket.bucket_arn for bucket in data_buckets])
            ),
        )
        # CloudTrail checks that it may write to the bucket and the log group when the trail
        # is created.
        if self.bucket.policy is not None:
            self.trail.node.add_dependency(self.bucket.policy)
        self.trail.node.add_dependency(logs_role)

    def _bucket_policy(self, bucket: s3.IBucket) -> None:
        """CloudTrail (this trail only) may check the ACL and write; nobody else may write."""
        this_trail = {"aws:SourceArn": self.trail_arn}
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailChecksTheAcl",
                principals=[iam.ServicePrincipal(CLOUDTRAIL)],
                actions=["s3:GetBucketAcl"],
                resources=[bucket.bucket_arn],
                conditions={"StringEquals": this_trail},
            )
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailWritesThisTrailsLogs",
                principals=[iam.ServicePrincipal(CLOUDTRAIL)],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"AWSLogs/{Aws.ACCOUNT_ID}/*")],
                conditions={
                    "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", **this_trail}
                },
            )
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyWritesOtherThanCloudTrail",
                effect=iam.Effect.DENY,
                not_principals=[iam.ServicePrincipal(CLOUDTRAIL)],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects("*")],
            )
        )
