"""Approval-driven deployment: registry and endpoint events -> a FIFO queue -> the deployer.

The deployer is a reconciler (lambdas/deployer/deployment.py): whatever wakes it, it reads the
registry and the endpoint and moves the endpoint one step towards serving the highest version a
person approved. Three things wake it, all through one SQS FIFO queue in one message group (the
package group's name), so that its runs never overlap and keep their order:

* every approval status change of the package group (a rule per group, not per status: an
  un-approval must retract a version as surely as an approval deploys one);
* every state change of the endpoint (an update ending, an endpoint failing);
* a sweep every ``SWEEP_INTERVAL``, so a trigger lost anywhere costs at most one interval.

A trigger that finds the endpoint changing stays on the queue (the deployer makes it visible
again after ``RETRY_SECONDS``) until the endpoint settles: an approval that arrives during an
update is deployed once the update ends. The queue's dead-letter queue only ever holds triggers
that outlived ``max_receive_count`` retries; the sweep reconciles regardless, and an alarm tells
the on-call.
"""

from __future__ import annotations

import math

import jsii
from aws_cdk import Aws, Duration, Fn
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces import aws_events as event_interfaces
from constructs import Construct

from contracts.deployment import (
    ENDPOINT_DIMENSION,
    ENDPOINT_STATE_CHANGE,
    METRIC_NAMESPACE,
    MODEL_PACKAGE_STATE_CHANGE,
    REJECTED_ROLLOUT_METRIC,
    RETRY_SECONDS,
    SHADOW_HELD_METRIC,
)
from lambdas.deployer import settings as deployer_env
from lambdas.deployer.settings import (
    AUTOSCALING_ENABLED_ENV,
    AUTOSCALING_MAX_ENV,
    AUTOSCALING_MIN_ENV,
    AUTOSCALING_TARGET_ENV,
    DEFAULT_MAX_EXECUTION_SECONDS,
    DEFAULT_TERMINATION_WAIT_SECONDS,
    SHADOW_ENABLED_ENV,
    SHADOW_MINIMUM_MINUTES_ENV,
    SHADOW_MINIMUM_PAIRS_ENV,
    SHADOW_TRAFFIC_PERCENT_ENV,
    shadow_bound_env,
)
from stacks.components.drift_monitor import BASELINE_PREFIX
from stacks.components.endpoint_autoscaling import EndpointAutoscaling, deployment_metric
from stacks.components.grants import grant_key, grant_objects, reference
from stacks.components.model_registry import (
    CAPTURE_PREFIX,
    TRAINING_PREFIX,
    ModelRegistry,
    alarm_arn,
    list_versions_statement,
)
from stacks.components.platform_alarms import MICROSECONDS_PER_MS, endpoint_metric
from stacks.components.platform_function import PlatformFunction
from stacks.config import AlarmThresholds, EndpointConfig, RolloutConfig
from stacks.nag import acknowledge
from stacks.naming import ResourceNames
from stacks.wildcards import acknowledge_wildcards

#: A reconciliation's Lambda work (describe, create model and config, start an update) takes
#: seconds; reading a large model archive for its drift baseline can take a minute or two.
DEPLOYER_TIMEOUT = Duration.minutes(3)
#: Lambda's guidance for SQS event sources: a visibility timeout of six times the function's.
QUEUE_VISIBILITY = Duration.minutes(18)
SWEEP_MINUTES = 15
SWEEP_INTERVAL = Duration.minutes(SWEEP_MINUTES)
#: Creating an endpoint can take tens of minutes; an update at most its execution timeout plus
#: its baking period. A trigger is retried every RETRY_SECONDS across all of it, twice over.
CREATION_ALLOWANCE_SECONDS = 3600
MAX_RECEIVE_COUNT = 2 * math.ceil(
    (CREATION_ALLOWANCE_SECONDS + DEFAULT_MAX_EXECUTION_SECONDS + DEFAULT_TERMINATION_WAIT_SECONDS)
    / RETRY_SECONDS
)
#: SQS keeps a FIFO message at most 14 days; the dead letters are kept that long.
DEAD_LETTER_RETENTION = Duration.days(14)


def rollback_alarm_names(names: ResourceNames) -> tuple[str, str]:
    """The latency and error alarms of a blue/green shift (deployer's ROLLBACK_ALARM_NAMES)."""
    return (names.rollback_latency_alarm, names.rollback_5xx_alarm)


def package_change_pattern(group_name: str) -> events.EventPattern:
    """Every approval status change of the versions of ``group_name``."""
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[MODEL_PACKAGE_STATE_CHANGE],
        detail={"ModelPackageGroupName": [group_name]},
    )


def endpoint_change_pattern(endpoint_name: str) -> events.EventPattern:
    """Every status change of the one endpoint."""
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[ENDPOINT_STATE_CHANGE],
        detail={"EndpointName": [endpoint_name]},
    )


@jsii.implements(events.IRuleTarget)
class FifoQueueTarget:
    """An SQS FIFO queue as a rule target, in one message group, granting nothing itself.

    CDK's ``targets.SqsQueue`` grants ``events.amazonaws.com`` on an encrypted queue (and its
    key) without any source condition, to avoid a key -> rule -> queue -> key cycle.
    :meth:`EndpointDeployment._allow_rules` grants instead: the queue policy names the rules
    by ``aws:SourceArn`` (no cycle), the key policy the queue by its encryption context.
    """

    def __init__(self, queue: sqs.IQueue, message_group_id: str) -> None:
        self.queue = queue
        self.message_group_id = message_group_id

    def bind(
        self,
        rule: event_interfaces.IRuleRef,
        id: str | None = None,
    ) -> events.RuleTargetConfig:
        """Called by the rule; the target config only (grants: see the class docstring)."""
        del rule, id
        return events.RuleTargetConfig(
            arn=self.queue.queue_arn,
            target_resource=self.queue,
            sqs_parameters=events.CfnRule.SqsParametersProperty(
                message_group_id=self.message_group_id
            ),
        )


def rollout_environment(rollout: RolloutConfig) -> dict[str, str]:
    """The deployer's shadow and autoscaling settings (lambdas/deployer/settings.py)."""
    shadow, scaling = rollout.shadow, rollout.autoscaling
    return {
        SHADOW_ENABLED_ENV: str(shadow.enabled).lower(),
        SHADOW_TRAFFIC_PERCENT_ENV: str(shadow.traffic_percent),
        SHADOW_MINIMUM_MINUTES_ENV: str(shadow.minimum_minutes),
        SHADOW_MINIMUM_PAIRS_ENV: str(shadow.minimum_pairs),
        **{shadow_bound_env(name): str(value) for name, value in vars(shadow.bounds).items()},
        AUTOSCALING_ENABLED_ENV: "true",
        AUTOSCALING_MIN_ENV: str(scaling.min_instances),
        AUTOSCALING_MAX_ENV: str(scaling.max_instances),
        AUTOSCALING_TARGET_ENV: str(scaling.target_invocations_per_instance),
    }


class EndpointDeployment(Construct):
    """Rollback and rejection alarms, the trigger queue, its rules, and the deployer.

    Exposes ``deployer`` (a :class:`PlatformFunction`), ``queue``, ``dead_letter_queue``,
    ``rollback_alarms``, ``rejection_alarm``, ``shadow_held_alarm``, ``autoscaling`` (an
    :class:`EndpointAutoscaling`) and ``rules`` (purpose -> rule).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        endpoint: EndpointConfig,
        rollout: RolloutConfig,
        thresholds: AlarmThresholds,
        registry: ModelRegistry,
        data_key: kms.IKey,
        artifact_bucket: s3.IBucket,
        capture_bucket: s3.IBucket,
        alert_topic: sns.ITopic,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        key: kms.IKey,
        log_retention_days: int,
        retain_logs: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = key
        self.rollback_alarms = self._rollback_alarms(names, thresholds, alert_topic)
        self.rejection_alarm = self._rejection_alarm(names)
        self.rejection_alarm.add_alarm_action(actions.SnsAction(alert_topic))
        self.queue, self.dead_letter_queue = self._queues(names, key, alert_topic)
        capture = reference(self, capture_bucket.bucket_name, capture_bucket)
        subnet_ids = vpc.select_subnets(
            subnet_type=subnets.subnet_type, subnet_group_name=subnets.subnet_group_name
        ).subnet_ids
        self.deployer = PlatformFunction(
            self,
            "Deployer",
            folder="deployer",
            function_name=names.function("deployer"),
            description="Keeps the endpoint on the highest version a person approved",
            environment=deployer_env.ENVIRONMENT.environment(
                {
                    deployer_env.ENDPOINT_NAME_ENV: names.endpoint,
                    deployer_env.EXECUTION_ROLE_ARN_ENV: registry.serving_role.role_arn,
                    deployer_env.APPROVER_ROLE_ARN_ENV: registry.approver_role.role_arn,
                    deployer_env.INSTANCE_TYPE_ENV: endpoint.instance_type,
                    deployer_env.INSTANCE_COUNT_ENV: str(endpoint.instance_count),
                    deployer_env.DATA_CAPTURE_S3_URI_ENV: f"s3://{capture}/{CAPTURE_PREFIX}",
                    deployer_env.KMS_KEY_ARN_ENV: reference(self, data_key.key_arn, data_key),
                    deployer_env.CAPTURE_SAMPLING_PERCENT_ENV: str(
                        endpoint.data_capture_sampling_percent
                    ),
                    deployer_env.ROLLBACK_ALARM_NAMES_ENV: ",".join(rollback_alarm_names(names)),
                    deployer_env.REJECTION_ALARM_NAME_ENV: names.rejected_rollout_alarm,
                    deployer_env.SNS_TOPIC_ARN_ENV: alert_topic.topic_arn,
                    deployer_env.MODEL_PACKAGE_GROUP_NAME_ENV: registry.group_name,
                    deployer_env.VPC_SUBNET_IDS_ENV: Fn.join(",", subnet_ids),
                    deployer_env.VPC_SECURITY_GROUP_IDS_ENV: security_group.security_group_id,
                    deployer_env.QUEUE_URL_ENV: self.queue.queue_url,
                    deployer_env.RETRY_SECONDS_ENV: str(RETRY_SECONDS),
                    **rollout_environment(rollout),
                }
            ),
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            key=key,
            log_retention_days=log_retention_days,
            retain_logs=retain_logs,
            timeout=DEPLOYER_TIMEOUT,
            # One reconciliation at a time: two concurrent updates of one endpoint would fail.
            reserved_concurrency=1,
        )
        self.deployer.function.add_event_source(
            event_sources.SqsEventSource(self.queue, batch_size=1, report_batch_item_failures=True)
        )
        self._grant(names, registry, data_key, artifact_bucket, capture_bucket, alert_topic)
        self._grant_shadow_reads(names, capture_bucket)
        self.rules = self._rules(names, registry)
        self.shadow_held_alarm = self._shadow_held_alarm(names, alert_topic)
        self.autoscaling = EndpointAutoscaling(
            self,
            "Autoscaling",
            names=names,
            autoscaling=rollout.autoscaling,
            deployer_role=self.deployer.role,
            alert_topic=alert_topic,
            sweep_minutes=SWEEP_MINUTES,
        )

    def _queues(
        self, names: ResourceNames, key: kms.IKey, alert_topic: sns.ITopic
    ) -> tuple[sqs.Queue, sqs.Queue]:
        """The FIFO trigger queue (content-based deduplication, as EventBridge requires of a
        FIFO target) and its dead-letter queue, watched by an alarm."""
        dead_letters = sqs.Queue(
            self,
            "DeadTriggers",
            queue_name=names.deployment_queue.replace(".fifo", "-dead.fifo"),
            fifo=True,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
        )
        acknowledge(
            dead_letters,
            "This is the dead-letter queue of the deployer's trigger queue; the periodic "
            "sweep reconciles the endpoint whatever it holds.",
            "AwsSolutions-SQS3",
        )
        queue = sqs.Queue(
            self,
            "Triggers",
            queue_name=names.deployment_queue,
            fifo=True,
            content_based_deduplication=True,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            visibility_timeout=QUEUE_VISIBILITY,
            retention_period=DEAD_LETTER_RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dead_letters, max_receive_count=MAX_RECEIVE_COUNT
            ),
        )
        alarm = dead_letters.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(5), statistic="Maximum"
        ).create_alarm(
            self,
            "DeadTriggersAlarm",
            alarm_name=names.alarm("deployer-dead-triggers"),
            alarm_description=(
                "A deployer trigger outlived its retries (docs/operations.md: the sweep still "
                "reconciles; find out why the endpoint did not settle)"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(alert_topic))
        return queue, dead_letters

    def _rules(self, names: ResourceNames, registry: ModelRegistry) -> dict[str, events.Rule]:
        """Package changes, endpoint changes and the sweep, all to the queue in one group."""

        def target() -> FifoQueueTarget:
            return FifoQueueTarget(self.queue, registry.group_name)

        rules = {
            "package": events.Rule(
                self,
                "PackageChanges",
                description=f"Approval status changes of {registry.group_name} versions",
                event_pattern=package_change_pattern(registry.group_name),
                targets=[target()],
            ),
            "endpoint": events.Rule(
                self,
                "EndpointChanges",
                description=f"Status changes of {names.endpoint}",
                event_pattern=endpoint_change_pattern(names.endpoint),
                targets=[target()],
            ),
            "sweep": events.Rule(
                self,
                "Sweep",
                description=f"Reconcile {names.endpoint} with the registry periodically",
                schedule=events.Schedule.rate(SWEEP_INTERVAL),
                targets=[target()],
            ),
        }
        self._allow_rules(names, list(rules.values()))
        return rules

    def _allow_rules(self, names: ResourceNames, rules: list[events.Rule]) -> None:
        """EventBridge may send to the queue for these rules only, and use the key for it.

        "The role needs sqs:SendMessage on the queue. If the queue is encrypted with a customer
        managed key, the role also needs kms:GenerateDataKey and kms:Decrypt on that key."
        (EventBridge, Amazon SQS queue target). SQS encrypts with the encryption context
        ``aws:sqs:arn`` = the queue's ARN (Amazon SQS, encryption at rest), which is known from
        the queue's name without a reference back to the queue.
        """
        events_service = iam.ServicePrincipal("events.amazonaws.com")
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeRulesOfThisDeployment",
                principals=[events_service],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": [rule.rule_arn for rule in rules]}},
            )
        )
        queue_arn = (
            f"arn:{Aws.PARTITION}:sqs:{Aws.REGION}:{Aws.ACCOUNT_ID}:{names.deployment_queue}"
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeSendsToTheTriggerQueue",
                principals=[events_service],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": Aws.ACCOUNT_ID,
                        "kms:EncryptionContext:aws:sqs:arn": queue_arn,
                    }
                },
            )
        )

    def _rejection_alarm(self, names: ResourceNames) -> cloudwatch.Alarm:
        """In every update's AutoRollbackConfiguration; the deployer sets it (and publishes its
        metric) while a version that is no longer approved is being rolled out."""
        metric = cloudwatch.Metric(
            namespace=METRIC_NAMESPACE,
            metric_name=REJECTED_ROLLOUT_METRIC,
            dimensions_map={ENDPOINT_DIMENSION: names.endpoint},
            statistic="Maximum",
            period=Duration.minutes(1),
        )
        return metric.create_alarm(
            self,
            "RejectedRollout",
            alarm_name=names.rejected_rollout_alarm,
            alarm_description="Rolls back a blue/green update whose version was rejected",
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _rollback_alarms(
        self, names: ResourceNames, thresholds: AlarmThresholds, topic: sns.ITopic
    ) -> list[cloudwatch.Alarm]:
        """The alarms SageMaker watches while it shifts traffic to a new version."""
        latency_name, errors_name = rollback_alarm_names(names)
        specs = (
            (
                "LatencyRollback",
                latency_name,
                endpoint_metric("ModelLatency", names.endpoint, "p95"),
                thresholds.latency_p95_ms * MICROSECONDS_PER_MS,
                cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            ),
            (
                "ServerErrorRollback",
                errors_name,
                endpoint_metric("Invocation5XXErrors", names.endpoint, "Sum"),
                thresholds.endpoint_5xx_per_5min,
                cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            ),
        )
        alarms = []
        for construct_id, name, metric, threshold, comparison in specs:
            alarm = metric.create_alarm(
                self,
                construct_id,
                alarm_name=name,
                alarm_description="Rolls a blue/green endpoint update back while it fires",
                threshold=threshold,
                comparison_operator=comparison,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarms.append(alarm)
        return alarms

    def _shadow_held_alarm(self, names: ResourceNames, topic: sns.ITopic) -> cloudwatch.Alarm:
        """A held shadow candidate: the on-call decides (the deployer also publishes to SNS)."""
        held = deployment_metric(
            SHADOW_HELD_METRIC, names.endpoint, Duration.minutes(5)
        ).create_alarm(
            self,
            "ShadowCandidateHeld",
            alarm_name=names.alarm("shadow-candidate-held"),
            alarm_description=(
                "A shadow candidate was held: it is not promoted until an operator acts "
                "(docs/operations.md, Holding a shadow candidate)"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        held.add_alarm_action(actions.SnsAction(topic))
        return held

    def _grant_shadow_reads(self, names: ResourceNames, capture_bucket: s3.IBucket) -> None:
        """The shadow stage reads the endpoint's capture and each variant's statistics."""
        role = self.deployer.role
        # GetMetricStatistics has no resource type (Service Authorization Reference).
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadVariantStatistics",
                actions=["cloudwatch:GetMetricStatistics"],
                resources=["*"],
            )
        )
        grant_objects(
            role, capture_bucket, [f"{CAPTURE_PREFIX}/{names.endpoint}"], sid="ReadShadowCapture"
        )
        acknowledge_wildcards(
            role,
            "GetMetricStatistics has no resource type; the shadow stage reads the objects under "
            "the endpoint's own capture prefix, whose keys SageMaker names by variant and hour.",
            f"Resource::*/{CAPTURE_PREFIX}/{names.endpoint}/*",
        )

    def _grant(
        self,
        names: ResourceNames,
        registry: ModelRegistry,
        data_key: kms.IKey,
        artifact_bucket: s3.IBucket,
        capture_bucket: s3.IBucket,
        alert_topic: sns.ITopic,
    ) -> None:
        role = self.deployer.role

        def arn(resource: str) -> str:
            return f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"

        endpoint = names.endpoint
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ManageTheEndpointsModelsAndConfigs",
                actions=[
                    "sagemaker:CreateModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:CreateEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:UpdateEndpoint",
                    # A Failed endpoint accepts DeleteEndpoint only; with no approved version
                    # left, deleting the endpoint is how nothing serves.
                    "sagemaker:DeleteEndpoint",
                    "sagemaker:AddTags",
                    "sagemaker:ListTags",
                ],
                resources=[
                    arn(f"model/{endpoint}-*"),
                    arn(f"endpoint-config/{endpoint}-*"),
                    arn(f"endpoint/{endpoint}"),
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadVersionsOfTheGroup",
                actions=["sagemaker:DescribeModelPackage"],
                resources=[registry.package_arns],
            )
        )
        role.add_to_policy(list_versions_statement())
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassServingRoleToSageMaker",
                actions=["iam:PassRole"],
                resources=[registry.serving_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # The deployer never reads the rollback alarms (SageMaker does, with the serving role);
        # it only trips the rejection alarm and publishes its metric.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="StopRejectedRollouts",
                actions=["cloudwatch:SetAlarmState"],
                resources=[alarm_arn(names.rejected_rollout_alarm)],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishDeploymentMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}},
            )
        )
        # CreateEndpointConfig with a KmsKeyId needs kms:CreateGrant for SageMaker's volumes;
        # DescribeKey has no grant, so it takes no kms:GrantIsForAWSResource condition.
        key_arn = reference(role, data_key.key_arn, data_key)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptEndpointVolumesAndCapture",
                actions=["kms:CreateGrant"],
                resources=[key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeTheDataKey", actions=["kms:DescribeKey"], resources=[key_arn]
            )
        )
        grant_objects(role, artifact_bucket, [TRAINING_PREFIX], sid="ReadModelArchives")
        grant_objects(role, capture_bucket, [BASELINE_PREFIX], write=True, sid="DriftBaselines")
        grant_key(role, data_key, encrypt=True)
        alert_topic.grant_publish(role)
        acknowledge_wildcards(
            role,
            "The deployer names models and endpoint configs <endpoint>-v<version>-<digest> at "
            "run time and may only touch those and its one endpoint; it reads versions of its "
            "one package group and lists this account's model packages (ListModelPackages' "
            "resource type is model-package: see model_registry.list_versions_statement); it "
            "reads model archives under training/<job>/ and writes baselines and its memory of "
            "failed deployments under baselines/<endpoint>/; PutMetricData's only "
            "resource type (dataset) does not name metrics, so it is pinned to the deployer's "
            "namespace by the cloudwatch:namespace condition; "
            "kms:GenerateDataKey* is what publishing to the encrypted alert topic needs.",
            "Resource::*:model/*-*",
            "Resource::*:endpoint-config/*-*",
            "Resource::*:model-package/*/*",
            "Resource::*:model-package/*",
            f"Resource::*/{TRAINING_PREFIX}/*",
            f"Resource::*/{BASELINE_PREFIX}/*",
            "Resource::[*]",
            "Action::kms:GenerateDataKey*",
        )
