"""The monitoring stack: alert topic, drift monitor, alarms and the health dashboard.

It comes before the stacks it watches: they publish to its topic, and it addresses their
resources by the physical names of :mod:`stacks.naming` (see there why).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.components.alerts import AlertTopic, alarm_publisher
from stacks.components.drift_monitor import DriftMonitor
from stacks.components.fairness_alarms import FairnessAlarms
from stacks.components.health_dashboard import HealthDashboard
from stacks.components.network import PrivateNetwork
from stacks.components.platform_alarms import PlatformAlarms
from stacks.config import StageConfig
from stacks.platform_stack import PlatformStack
from stacks.wildcards import acknowledge_wildcards


class MonitoringStack(PlatformStack):
    """Exposes ``alert_topic``, ``alarms`` (a :class:`PlatformAlarms`), ``fairness_alarms``
    and ``drift_monitor``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        network: PrivateNetwork,
        capture_bucket: s3.IBucket,
        data_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        names, retain = self.names, self.retain
        key = self.service_key(
            "monitoring",
            "encrypts alerts, monitoring logs and queues",
            publishers=[alarm_publisher(names.alert_topic, names.prefix)],
        )
        self.alert_topic = AlertTopic(
            self,
            "Alerts",
            topic_name=names.alert_topic,
            alarm_prefix=names.prefix,
            key=key,
            email=config.notification_email,
        ).topic
        self.drift_monitor = DriftMonitor(
            self,
            "DriftMonitor",
            function_name=names.function("drift_monitor"),
            endpoint_name=names.endpoint,
            capture_bucket=capture_bucket,
            data_key=data_key,
            psi_threshold=config.alarms.feature_psi,
            fairness=config.fairness,
            vpc=network.vpc,
            subnets=network.subnets,
            security_group=network.workload_security_group,
            key=key,
            log_retention_days=config.retention.log_group_days,
            retain_logs=retain,
        )
        self.alarms = PlatformAlarms(
            self, "Alarms", names=names, thresholds=config.alarms, topic=self.alert_topic
        )
        self.fairness_alarms = FairnessAlarms(
            self, "Fairness", names=names, fairness=config.fairness, topic=self.alert_topic
        )
        acknowledge_wildcards(
            self.alarms.glue_failure_rule,
            "The rule publishes to the encrypted alert topic with its own role, whose "
            "kms:GenerateDataKey* on the topic's key is what publishing to an encrypted "
            "topic needs.",
            "Action::kms:GenerateDataKey*",
        )
        HealthDashboard(
            self,
            "Health",
            dashboard_name=f"{config.prefix}-model-health",
            endpoint_name=names.endpoint,
            feature_psi_threshold=config.alarms.feature_psi,
            prediction_psi_threshold=config.alarms.prediction_psi,
            fairness=config.fairness,
        )
        CfnOutput(self, "AlertTopicArn", value=self.alert_topic.topic_arn)
