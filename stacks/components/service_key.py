"""A customer-managed KMS key for one stack's operational data (logs, queues, topics, env vars).

Each stack gets its own key rather than sharing the data lake's: a key policy can only be
edited in the stack that owns the key, and the services below (CloudWatch Logs, CloudWatch
alarms, EventBridge) need statements in the key policy itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

#: What a service that writes encrypted data through the key needs.
ENCRYPT_ACTIONS = (
    "kms:Encrypt*",
    "kms:Decrypt*",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:Describe*",
)
#: What a publisher to an encrypted SNS topic or SQS queue needs.
PUBLISH_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")


class ServiceKey(Construct):
    """Rotating KMS key whose policy lets CloudWatch Logs (and optional publishers) use it.

    Exposes ``self.key``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alias: str,
        description: str,
        retain: bool,
        publishing_services: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            alias=alias,
            description=description,
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=list(ENCRYPT_ACTIONS),
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                        )
                    }
                },
            )
        )
        for service in publishing_services:
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"Allow{service.split('.')[0].capitalize()}ToPublish",
                    principals=[iam.ServicePrincipal(service)],
                    actions=list(PUBLISH_ACTIONS),
                    resources=["*"],
                    conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                )
            )
