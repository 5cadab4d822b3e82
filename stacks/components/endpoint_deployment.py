"""Approval-driven deployment: registry state changes -> the deployer Lambda -> the endpoint.

Two EventBridge rules, one per approval status the deployer acts on (``Approved`` deploys,
``Rejected`` rolls back). No rule matches every state change: a rule that did would hand the
deployer every registration and edit, the known way public templates deploy unapproved models.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Fn
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.components.drift_monitor import BASELINE_PREFIX
from stacks.components.grants import grant_key, grant_objects, reference
from stacks.components.model_registry import CAPTURE_PREFIX, TRAINING_PREFIX, ModelRegistry
from stacks.components.platform_alarms import MICROSECONDS_PER_MS, endpoint_metric
from stacks.components.platform_function import PlatformFunction
from stacks.config import AlarmThresholds, EndpointConfig
from stacks.naming import ResourceNames
from stacks.wildcards import acknowledge_wildcards

STATE_CHANGE = "SageMaker Model Package State Change"
#: The approval statuses the deployer acts on, each with its own rule.
DEPLOY_STATUSES = {"Approved": "DeployOnApproval", "Rejected": "RollBackOnRejection"}
#: A deployment's Lambda work (create model and config, start the update) takes seconds;
#: SageMaker shifts traffic afterwards on its own.
DEPLOYER_TIMEOUT = Duration.minutes(5)


def rollback_alarm_names(names: ResourceNames) -> tuple[str, str]:
    """The alarms SageMaker watches during a blue/green shift (deployer's ROLLBACK_ALARM_NAMES)."""
    return (names.rollback_latency_alarm, names.rollback_5xx_alarm)


def state_change_pattern(group_name: str, status: str) -> events.EventPattern:
    """Model package state changes of ``group_name`` to ``status`` only."""
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[STATE_CHANGE],
        detail={"ModelPackageGroupName": [group_name], "ModelApprovalStatus": [status]},
    )


class EndpointDeployment(Construct):
    """Rollback alarms, the deployer Lambda and its two rules.

    Exposes ``deployer`` (a :class:`PlatformFunction`), ``rollback_alarms`` and ``rules``
    (status -> rule).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        endpoint: EndpointConfig,
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
        self.rollback_alarms = self._rollback_alarms(names, thresholds, alert_topic)
        capture = reference(self, capture_bucket.bucket_name, capture_bucket)
        subnet_ids = vpc.select_subnets(
            subnet_type=subnets.subnet_type, subnet_group_name=subnets.subnet_group_name
        ).subnet_ids
        self.deployer = PlatformFunction(
            self,
            "Deployer",
            folder="deployer",
            function_name=names.function("deployer"),
            description="Deploys approved model versions; rolls back rejected ones",
            environment={
                "ENDPOINT_NAME": names.endpoint,
                "EXECUTION_ROLE_ARN": registry.execution_role.role_arn,
                "INSTANCE_TYPE": endpoint.instance_type,
                "INSTANCE_COUNT": str(endpoint.instance_count),
                "DATA_CAPTURE_S3_URI": f"s3://{capture}/{CAPTURE_PREFIX}",
                "KMS_KEY_ARN": reference(self, data_key.key_arn, data_key),
                "CAPTURE_SAMPLING_PERCENT": str(endpoint.data_capture_sampling_percent),
                "ROLLBACK_ALARM_NAMES": ",".join(rollback_alarm_names(names)),
                "SNS_TOPIC_ARN": alert_topic.topic_arn,
                "MODEL_PACKAGE_GROUP_NAME": registry.group_name,
                "VPC_SUBNET_IDS": Fn.join(",", subnet_ids),
                "VPC_SECURITY_GROUP_IDS": security_group.security_group_id,
            },
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            key=key,
            log_retention_days=log_retention_days,
            retain_logs=retain_logs,
            timeout=DEPLOYER_TIMEOUT,
            # One deployment at a time: two concurrent updates of one endpoint would fail.
            reserved_concurrency=1,
            asynchronous=True,
        )
        self._grant(names, registry, data_key, artifact_bucket, capture_bucket, alert_topic)
        self.rules = {
            status: events.Rule(
                self,
                rule_id,
                description=f"{names.model_package_group} versions changed to {status}",
                event_pattern=state_change_pattern(registry.group_name, status),
                targets=[
                    targets.LambdaFunction(
                        self.deployer.function,
                        retry_attempts=2,
                        max_event_age=Duration.hours(1),
                    )
                ],
            )
            for status, rule_id in DEPLOY_STATUSES.items()
        }

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
                    "sagemaker:DeleteModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DeleteEndpointConfig",
                    "sagemaker:CreateEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:UpdateEndpoint",
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
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListVersions", actions=["sagemaker:ListModelPackages"], resources=["*"]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassExecutionRoleToSageMaker",
                actions=["iam:PassRole"],
                resources=[registry.execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadRollbackAlarms",
                actions=["cloudwatch:DescribeAlarms"],
                resources=[alarm.alarm_arn for alarm in self.rollback_alarms],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptEndpointVolumesAndCapture",
                actions=["kms:CreateGrant", "kms:DescribeKey"],
                resources=[reference(role, data_key.key_arn, data_key)],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
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
            "one package group, model archives under training/<job>/ and writes baselines "
            "under baselines/<endpoint>/; ListModelPackages supports no resource-level "
            "permission; kms:GenerateDataKey* is what publishing to the encrypted alert topic "
            "needs.",
            "Resource::*:model/*-*",
            "Resource::*:endpoint-config/*-*",
            "Resource::*:model-package/*/*",
            f"Resource::*/{TRAINING_PREFIX}/*",
            f"Resource::*/{BASELINE_PREFIX}/*",
            "Resource::[*]",
            "Action::kms:GenerateDataKey*",
        )
