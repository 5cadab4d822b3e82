"""A customer-managed KMS key for one stack's operational data (logs, queues, topics, env vars).

Each stack gets its own key rather than sharing the data lake's: a key policy can only be
edited in the stack that owns the key, and the services below (CloudWatch Logs, CloudWatch
alarms, EventBridge) need statements in the key policy itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class TopicPublisher:
    """An AWS service that publishes to one encrypted topic for resources of this account.

    ``source_arn`` is an ``ArnLike`` pattern of those resources (the confused-deputy guard);
    the topic is matched by SNS's encryption context ``aws:sns:topicArn``.
    https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
    """

    service: str
    source_arn: str
    topic_arn: str

    @property
    def sid(self) -> str:
        return f"Allow{self.service.split('.')[0].capitalize()}ToPublish"


class ServiceKey(Construct):
    """Rotating KMS key whose policy lets CloudWatch Logs (and optional topic publishers) use it.

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
        publishers: Sequence[TopicPublisher] = (),
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
        for publisher in publishers:
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=publisher.sid,
                    principals=[iam.ServicePrincipal(publisher.service)],
                    actions=list(PUBLISH_ACTIONS),
                    resources=["*"],
                    conditions={
                        "ArnLike": {"aws:SourceArn": publisher.source_arn},
                        "StringEquals": {
                            "aws:SourceAccount": Aws.ACCOUNT_ID,
                            "kms:EncryptionContext:aws:sns:topicArn": publisher.topic_arn,
                        },
                    },
                )
            )
