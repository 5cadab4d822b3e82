"""The alert topic: every alarm, failure and deployment notice reaches the on-call through it."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

#: Services that publish to the topic on the account's behalf (alarms; EventBridge rules).
PUBLISHING_SERVICES = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


class AlertTopic(Construct):
    """KMS-encrypted, TLS-only SNS topic with the stage's e-mail subscription.

    Exposes ``topic``. ``key``'s policy must let :data:`PUBLISHING_SERVICES` use it
    (see :class:`stacks.components.service_key.ServiceKey`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic_name: str,
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
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
