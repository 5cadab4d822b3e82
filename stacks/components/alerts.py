"""The alert topic: every alarm, failure and deployment notice reaches the on-call through it.

CloudWatch alarms publish as the ``cloudwatch.amazonaws.com`` service principal, allowed only
for alarms of this stage (``aws:SourceArn``) in the topic policy and in the key policy
(:func:`alarm_publisher`). EventBridge rules publish with an IAM role instead
(``authorize_using_role``): a key policy cannot confine EventBridge's service principal to a
source, since those deliveries carry no ``aws:SourceArn``/``aws:SourceAccount`` to KMS
(https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
Lambdas and the state machine publish with their own roles.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks.components.service_key import TopicPublisher

ALARMS_SERVICE = "cloudwatch.amazonaws.com"


def topic_arn(topic_name: str) -> str:
    """ARN of a topic of this account and Region, by name (known before the topic exists)."""
    return f"arn:{Aws.PARTITION}:sns:{Aws.REGION}:{Aws.ACCOUNT_ID}:{topic_name}"


def alarm_arns(alarm_prefix: str) -> str:
    """``ArnLike`` pattern of the alarms named ``<alarm_prefix>-*`` (``ResourceNames.alarm``)."""
    return f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:{alarm_prefix}-*"


def alarm_publisher(topic_name: str, alarm_prefix: str) -> TopicPublisher:
    """What the topic's key policy must allow for the stage's alarms to publish."""
    return TopicPublisher(ALARMS_SERVICE, alarm_arns(alarm_prefix), topic_arn(topic_name))


class AlertTopic(Construct):
    """KMS-encrypted, TLS-only SNS topic with the stage's e-mail subscription.

    Exposes ``topic``. ``key``'s policy must carry :func:`alarm_publisher` of the same topic
    name and alarm prefix (see :class:`stacks.components.service_key.ServiceKey`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic_name: str,
        alarm_prefix: str,
        key: kms.IKey,
        email: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=topic_name,
            display_name=f"{topic_name} (readmission platform alerts)",
            master_key=key,
            enforce_ssl=True,
        )
        self.topic.add_subscription(subscriptions.EmailSubscription(email))
        # A topic policy replaces the default one: CloudWatch alarms must be allowed explicitly.
        # https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmsOfThisStage",
                principals=[iam.ServicePrincipal(ALARMS_SERVICE)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {"aws:SourceArn": alarm_arns(alarm_prefix)},
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                },
            )
        )
