"""The drift monitor: the scheduled Lambda that turns endpoint capture into drift metrics."""

from __future__ import annotations

import dataclasses

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from contracts.drift import DEFAULT_METRIC_NAMESPACE
from contracts.fairness import FAIRNESS_CHECK_EVENT, monitor_environment
from lambdas.drift_monitor import settings as monitor_env
from stacks.components.grants import grant_key, grant_objects
from stacks.components.platform_function import PlatformFunction
from stacks.config import FairnessConfig
from stacks.wildcards import acknowledge_wildcards

#: Where in the capture bucket SageMaker writes capture, and labels arrive (see docs/deploy.md).
CAPTURE_PREFIX = "capture"
GROUND_TRUTH_PREFIX = "ground-truth"
BASELINE_PREFIX = "baselines"
#: One analysis per hour of capture (the monitor's default window).
SCHEDULE = events.Schedule.rate(Duration.hours(1))
WINDOW_MINUTES = 60
#: The fairness run: once a day, after the day's label files have landed (06:00 UTC).
FAIRNESS_SCHEDULE = events.Schedule.cron(minute="0", hour="6")


class DriftMonitor(Construct):
    """``lambdas/drift_monitor`` on an hourly EventBridge schedule, and daily for fairness.

    Reads capture, baselines and ground truth from the capture bucket (read only) and
    publishes to :data:`contracts.drift.DEFAULT_METRIC_NAMESPACE` only. Exposes ``function``
    (a :class:`PlatformFunction`), ``rule`` and ``fairness_rule``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_name: str,
        endpoint_name: str,
        capture_bucket: s3.IBucket,
        data_key: kms.IKey,
        psi_threshold: float,
        fairness: FairnessConfig,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        key: kms.IKey,
        log_retention_days: int,
        retain_logs: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PlatformFunction(
            self,
            "Function",
            folder="drift_monitor",
            function_name=function_name,
            description="Hourly: PSI of captured requests and scores against the baseline",
            environment=monitor_env.ENVIRONMENT.environment(
                {
                    monitor_env.ENDPOINT_NAME_ENV: endpoint_name,
                    monitor_env.CAPTURE_BUCKET_ENV: capture_bucket.bucket_name,
                    monitor_env.CAPTURE_PREFIX_ENV: CAPTURE_PREFIX,
                    monitor_env.WINDOW_MINUTES_ENV: str(WINDOW_MINUTES),
                    monitor_env.METRIC_NAMESPACE_ENV: DEFAULT_METRIC_NAMESPACE,
                    monitor_env.GROUND_TRUTH_PREFIX_ENV: GROUND_TRUTH_PREFIX,
                    monitor_env.PSI_THRESHOLD_ENV: str(psi_threshold),
                    **monitor_environment(**dataclasses.asdict(fairness)),
                }
            ),
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            key=key,
            log_retention_days=log_retention_days,
            retain_logs=retain_logs,
            timeout=Duration.minutes(15),
            memory_mb=1024,
            reserved_concurrency=1,
            asynchronous=True,
        )
        role = self.function.role
        grant_objects(role, capture_bucket, [CAPTURE_PREFIX, BASELINE_PREFIX, GROUND_TRUTH_PREFIX])
        grant_key(role, data_key)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishDriftMetricsOnly",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": DEFAULT_METRIC_NAMESPACE}},
            )
        )
        acknowledge_wildcards(
            role,
            "s3:GetObject is limited to the capture, baseline and ground-truth prefixes of the "
            "capture bucket, whose object keys are dated and not known in advance; "
            "PutMetricData's only resource type (dataset) does not name metrics, so it is "
            "pinned to the drift namespace by the cloudwatch:namespace condition.",
            "Resource::[*]",
            f"Resource::*/{CAPTURE_PREFIX}/*",
            f"Resource::*/{BASELINE_PREFIX}/*",
            f"Resource::*/{GROUND_TRUTH_PREFIX}/*",
        )
        self.rule = events.Rule(
            self,
            "Schedule",
            description=f"Run {function_name} once an hour",
            schedule=SCHEDULE,
            targets=[targets.LambdaFunction(self.function.function, retry_attempts=2)],
        )
        self.fairness_rule = events.Rule(
            self,
            "FairnessSchedule",
            description=f"Run {function_name}'s subgroup comparison once a day",
            schedule=FAIRNESS_SCHEDULE,
            targets=[
                targets.LambdaFunction(
                    self.function.function,
                    event=events.RuleTargetInput.from_object(dict(FAIRNESS_CHECK_EVENT)),
                    retry_attempts=2,
                )
            ],
        )
