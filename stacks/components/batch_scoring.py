"""Nightly batch scoring: the day's discharges -> a Batch Transform job -> the care team's worklist.

An EventBridge rule starts a Step Functions workflow on the stage's schedule (its input is the
schedule's time; an operator re-runs a day by starting it with ``{"day": "YYYY-MM-DD"}``):

1. **Plan** (the batch writer Lambda): the day before the schedule's time, whether the curated
   bucket holds discharges under ``<source prefix>/day=<day>/``, a fresh output folder and job
   name (so a re-run never mixes with an earlier one).
2. A day without discharges goes straight to **Write**: an empty day with its summary.
3. **Find the serving model**: DescribeEndpoint, then DescribeEndpointConfig -> the model the
   endpoint serves now. The job uses that very model, not the registry's newest approved
   version: the worklist then scores exactly as the prediction API does at that moment (a
   version approved but not yet rolled out, or rolled back, is not what clinicians are
   shown), and the job inherits the model's serving image, execution role, VpcConfig and
   network isolation as they are, with nothing copied that could drift. The deployer never
   deletes models, so the job's model outlives any rollout that starts meanwhile.
4. **Score**: ``createTransformJob.sync`` with ``SplitType=Line``, ``BatchStrategy=MultiRecord``,
   ``AssembleWith=Line`` and ``application/jsonlines`` (``inference.lines``), output and volume
   encrypted with the data key.
5. **Write** (the Lambda again): input files paired line by line with their ``.out`` files ->
   the DynamoDB worklist table (replacing the day) and ``worklist-scores/day=<day>/`` Parquet,
   catalogued as a Glue table with partition projection.

Any failure of steps 3-4 still runs Write, so that the day's records are listed as failed with
"no prediction in the batch output" rather than missing, and then fails the execution: the
failure and time-out alarms tell the on-call through the alert topic.

Why DynamoDB for the worklist: the page reads one day at a time, a query on one partition key
that DynamoDB answers in milliseconds at any size, with no server to run, on-demand billing for
a workload that writes once a night, TTL to drop days after ``contracts.worklist.RETENTION_DAYS``
and point-in-time recovery; a relational database would add a VPC-resident server and
connection management for a single key-value access pattern.

Why Parquet is written in the Lambda with pyarrow from the AWS-managed "AWS SDK for pandas"
layer: a day is thousands of rows, seconds of work; a Glue job would add a minute of start-up
and another role for that. pyarrow is ~120 MB unpacked, too large to bundle beside the code
within Lambda's 250 MB with Powertools comfortably, and the managed layer is published per
runtime and architecture (https://aws-sdk-pandas.readthedocs.io/en/stable/layers.html); the
cold start it adds (about a second) is nothing to a nightly step.
"""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from contracts.serving import BATCH_MAX_PAYLOAD_MB, CONTENT_TYPE_JSONLINES
from contracts.worklist import KEY_DAY, KEY_ENTRY, KEY_EXPIRES_AT
from lambdas.batch_writer import settings as writer_env
from stacks.components.grants import grant_key, grant_objects, reference
from stacks.components.model_registry import sagemaker_arn
from stacks.components.platform_function import PlatformFunction
from stacks.components.workflow import (
    ERROR_PATH,
    catch_all,
    logged_state_machine,
    sync_job_statements,
    sync_rule_statement,
)
from stacks.config import BatchScoringConfig
from stacks.nag import acknowledge
from stacks.naming import ResourceNames
from stacks.wildcards import acknowledge_wildcards
from worklist.scores_columns import COLUMNS, PARTITION_COLUMN

#: Where the transform job writes (``<prefix>/day=<day>/<run>/<input file>.out``).
OUTPUT_PREFIX = "batch-scoring/output"
#: Where the day's Parquet file goes (``<prefix>/day=<day>/scores.parquet``).
SCORES_PREFIX = "worklist-scores"
SCORES_TABLE = "worklist_scores"
#: Largest mini-batch Batch Transform posts, in MB: under the container's 6 MiB request limit
#: (inference.endpoint_app.MAX_PAYLOAD_BYTES).
MAX_PAYLOAD_MB = BATCH_MAX_PAYLOAD_MB
#: Seconds one mini-batch may take, and retries of a failed one, before the job fails.
INVOCATION_TIMEOUT_S = 600
INVOCATION_RETRIES = 2
WORKFLOW_TIMEOUT = Duration.hours(12)
#: ``ml.<family>.<size>``: vCPUs of the size (``large`` 2, ``xlarge`` 4, ``<n>xlarge`` 4n).
INSTANCE_SIZE = re.compile(
    r"^ml\.[a-z0-9-]+\.(?:(?P<n>[0-9]+)?(?P<size>xlarge)|(?P<small>large|medium))$"
)
SMALL_SIZE_VCPUS = {"medium": 1, "large": 2}
XLARGE_VCPUS = 4
WRITER_TIMEOUT = Duration.minutes(15)
#: 1,769 MB is one full vCPU (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
WRITER_MEMORY_MB = 1769
#: The AWS SDK for pandas team publishes its layers from this account in most Regions
#: (https://aws-sdk-pandas.readthedocs.io/en/stable/layers.html).
SDK_FOR_PANDAS_ACCOUNT = "336392948345"
SDK_FOR_PANDAS_LAYER = "AWSSDKPandas-Python312-Arm64"
#: Partition projection over days (https://docs.aws.amazon.com/athena/latest/ug/partition-projection-supported-types.html).
FIRST_PROJECTED_DAY = "2024-01-01"

#: createTransformJob.sync needs, on the job, what the Step Functions guide grants ("IAM
#: policies for Amazon SageMaker", CreateTransformJob, static resources:
#: https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html); the request sets
#: no Tags (no sagemaker:AddTags) and passes no role (CreateTransformJob takes none: the job
#: runs as the model's execution role), so no iam:PassRole.
TRANSFORM_JOB_SYNC_ACTIONS = (
    "sagemaker:CreateTransformJob",
    "sagemaker:DescribeTransformJob",
    "sagemaker:StopTransformJob",
)
SAGEMAKER_SYNC_RULE = "StepFunctionsGetEventsForSageMakerTransformJobsRule"

# State names, in the order a scoring execution visits them.
PLAN = "Plan the day"
HAS_DISCHARGES = "Any discharges?"
DESCRIBE_ENDPOINT = "Find the serving endpoint config"
DESCRIBE_CONFIG = "Find the serving model"
SCORE = "Score the day (Batch Transform)"
WRITE = "Write the worklist"
SCORING_FAILED = "Scoring failed?"
FAILED = "Scoring failed"
DONE = "Done"
#: Errors an SDK call may meet that a retry can cure.
TRANSIENT_SAGEMAKER_ERRORS = ("SageMaker.ThrottlingException", "SageMaker.InternalFailure")


def instance_vcpus(instance_type: str) -> int:
    """vCPUs of a SageMaker instance type by its size (the EC2 sizes' convention)."""
    match = INSTANCE_SIZE.match(instance_type)
    if match is None:
        raise ValueError(f"cannot tell the vCPUs of {instance_type}")
    if match.group("small"):
        return SMALL_SIZE_VCPUS[match.group("small")]
    return XLARGE_VCPUS * int(match.group("n") or 1)


def sdk_for_pandas_layer_arn(version: int) -> str:
    return (
        f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{SDK_FOR_PANDAS_ACCOUNT}"
        f":layer:{SDK_FOR_PANDAS_LAYER}:{version}"
    )


def transform_job_state(job_prefix: str, instance_type: str, data_key_arn: str) -> dict[str, Any]:
    """The ``createTransformJob.sync`` task state (input: ``$.plan`` and ``$.serving``)."""
    return {
        "Type": "Task",
        "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:createTransformJob.sync",
        "Comment": f"Transform jobs are named {job_prefix}-<YYYYMMDD>-<run>",
        "Parameters": {
            "TransformJobName.$": "$.plan.job_name",
            "ModelName.$": "$.serving.model",
            "BatchStrategy": "MultiRecord",
            "MaxPayloadInMB": MAX_PAYLOAD_MB,
            # Unset, it is 1 (the container has no execution-parameters route): one mini-batch
            # at a time, whatever the instance. The server runs one worker per vCPU
            # (inference.serve), so as many requests as vCPUs keep every worker busy.
            # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html
            "MaxConcurrentTransforms": instance_vcpus(instance_type),
            "ModelClientConfig": {
                "InvocationsTimeoutInSeconds": INVOCATION_TIMEOUT_S,
                "InvocationsMaxRetries": INVOCATION_RETRIES,
            },
            "TransformInput": {
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri.$": "$.plan.input_uri"}
                },
                "ContentType": CONTENT_TYPE_JSONLINES,
                "SplitType": "Line",
                "CompressionType": "None",
            },
            "TransformOutput": {
                "S3OutputPath.$": "$.plan.output_uri",
                "Accept": CONTENT_TYPE_JSONLINES,
                "AssembleWith": "Line",
                "KmsKeyId": data_key_arn,
            },
            "TransformResources": {
                "InstanceType": instance_type,
                "InstanceCount": 1,
                "VolumeKmsKeyId": data_key_arn,
            },
            "DataProcessing": {"JoinSource": "None"},
        },
        "ResultSelector": {"status.$": "$.TransformJobStatus"},
        "ResultPath": "$.transform",
    }


class BatchScoring(Construct):
    """Worklist table, writer Lambda, workflow, schedule and failure alarms.

    Exposes ``table`` (and its ``table_key``), ``writer``, ``state_machine``, ``schedule_rule``
    and ``alarms``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        config: BatchScoringConfig,
        curated_bucket: s3.IBucket,
        data_key: kms.IKey,
        glue_database_name: str,
        serving_role: iam.IRole,
        alert_topic: sns.ITopic,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        key: kms.IKey,
        log_retention_days: int,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        source = config.source_prefix.strip("/")
        self.table_key = kms.Key(
            self,
            "WorklistKey",
            alias=f"alias/{names.prefix}-worklist",
            description=f"{names.prefix}: encrypts the care team's worklist table",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        self.table = dynamodb.Table(
            self,
            "Worklist",
            table_name=names.worklist_table,
            partition_key=dynamodb.Attribute(name=KEY_DAY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=KEY_ENTRY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.table_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=KEY_EXPIRES_AT,
            removal_policy=removal,
        )
        acknowledge(
            self.table,
            "The worklist is derived data with a 30-day TTL: every day in it is rebuilt by "
            "re-running the workflow for that day from the curated bucket (versioned, in the "
            "data lake's retention), and its scores are also kept as Parquet there; point-in-"
            "time recovery covers accidental writes for 35 days. A backup plan would only keep "
            "a second copy of what the lake already holds.",
            "HIPAA.Security-DynamoDBInBackupPlan",
        )
        curated_name = reference(self, curated_bucket.bucket_name, curated_bucket)
        data_key_arn = reference(self, data_key.key_arn, data_key)
        self.writer = PlatformFunction(
            self,
            "Writer",
            folder="batch_writer",
            function_name=names.function("batch_writer"),
            description="Nightly batch scoring: plans the day, writes its worklist and Parquet",
            environment=writer_env.ENVIRONMENT.environment(
                {
                    writer_env.CURATED_BUCKET_ENV: curated_name,
                    writer_env.SOURCE_PREFIX_ENV: source,
                    writer_env.OUTPUT_PREFIX_ENV: OUTPUT_PREFIX,
                    writer_env.SCORES_PREFIX_ENV: SCORES_PREFIX,
                    writer_env.TABLE_NAME_ENV: names.worklist_table,
                    writer_env.JOB_PREFIX_ENV: names.batch_transform_job_prefix,
                    writer_env.BUDGET_SHARE_ENV: repr(config.budget_share),
                    writer_env.KMS_KEY_ENV: data_key_arn,
                }
            ),
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            key=key,
            log_retention_days=log_retention_days,
            retain_logs=retain,
            timeout=WRITER_TIMEOUT,
            memory_mb=WRITER_MEMORY_MB,
            # The nightly run and an operator's re-run of another day may overlap.
            reserved_concurrency=2,
            extra_layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    self,
                    "SdkForPandas",
                    sdk_for_pandas_layer_arn(config.sdk_for_pandas_layer_version),
                )
            ],
        )
        self._grant_writer(curated_bucket, data_key, source)
        self._grant_serving_role(serving_role, curated_bucket, source)
        self._scores_table(curated_name, glue_database_name)
        self.state_machine = logged_state_machine(
            self,
            name=names.batch_scoring_state_machine,
            definition=self._definition(names, config, data_key_arn),
            timeout=WORKFLOW_TIMEOUT,
            key=key,
            log_retention_days=log_retention_days,
            retain_logs=retain,
        )
        self._grant_state_machine(names)
        self.schedule_rule = events.Rule(
            self,
            "Schedule",
            description="Nightly batch scoring of the previous day's discharges",
            schedule=events.Schedule.expression(config.schedule),
            enabled=config.enabled,
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    input=events.RuleTargetInput.from_object(
                        {"scheduled_time": events.EventField.time}
                    ),
                )
            ],
        )
        self.alarms = self._alarms(names, alert_topic)

    # ----- the workflow -----
    def _definition(
        self, names: ResourceNames, config: BatchScoringConfig, data_key_arn: str
    ) -> sfn.IChainable:
        """Plan -> (any discharges: find the serving model -> Batch Transform) -> Write.

        A failed scoring step still writes (the worklist records the failure) and the
        execution then fails; a failed plan or write fails it at once.
        """
        plan, write = self._plan(), self._write()
        failed = sfn.Fail(self, FAILED, error="BatchScoringFailed")
        write.next(
            sfn.Choice(self, SCORING_FAILED)
            .when(sfn.Condition.is_present(ERROR_PATH), failed)
            .otherwise(sfn.Succeed(self, DONE))
        )
        describe_endpoint, describe_config = self._find_serving_model(names)
        score = sfn.CustomState(
            self,
            SCORE,
            state_json=transform_job_state(
                names.batch_transform_job_prefix, config.instance_type, data_key_arn
            ),
        )
        # A failed scoring step hands on the error's name only; the plan stays in the state.
        for scoring_state in (describe_endpoint, describe_config, score):
            catch_all(scoring_state, write)
        for step in (plan, write):
            catch_all(step, failed)
        scoring = describe_endpoint.next(describe_config).next(score).next(write)
        return plan.next(
            sfn.Choice(self, HAS_DISCHARGES)
            .when(sfn.Condition.boolean_equals("$.plan.has_records", True), scoring)
            .otherwise(write)
        )

    def _plan(self) -> tasks.LambdaInvoke:
        """The writer plans the day: which day, whether it has records, where output goes."""
        return tasks.LambdaInvoke(
            self,
            PLAN,
            lambda_function=self.writer.function,
            payload=sfn.TaskInput.from_object(
                {"step": "plan", "request": sfn.JsonPath.object_at("$")}
            ),
            payload_response_only=True,
            result_path="$.plan",
            retry_on_service_exceptions=True,
        )

    def _write(self) -> tasks.LambdaInvoke:
        """The writer writes the day's worklist from the transform's output (or none)."""
        return tasks.LambdaInvoke(
            self,
            WRITE,
            lambda_function=self.writer.function,
            payload=sfn.TaskInput.from_object(
                {
                    "step": "write",
                    "day": sfn.JsonPath.string_at("$.plan.day"),
                    "has_records": sfn.JsonPath.string_at("$.plan.has_records"),
                    "output_prefix": sfn.JsonPath.string_at("$.plan.output_prefix"),
                }
            ),
            payload_response_only=True,
            result_path="$.written",
            retry_on_service_exceptions=True,
        )

    def _find_serving_model(
        self, names: ResourceNames
    ) -> tuple[tasks.CallAwsService, tasks.CallAwsService]:
        """The endpoint's current config, then its model: what the transform job scores with.

        Each SDK call is retried on SageMaker's transient errors.
        """
        describe_endpoint = tasks.CallAwsService(
            self,
            DESCRIBE_ENDPOINT,
            service="sagemaker",
            action="describeEndpoint",
            parameters={"EndpointName": names.endpoint},
            iam_resources=[sagemaker_arn(f"endpoint/{names.endpoint}")],
            iam_action="sagemaker:DescribeEndpoint",
            result_selector={"config": sfn.JsonPath.string_at("$.EndpointConfigName")},
            result_path="$.endpoint",
        )
        describe_config = tasks.CallAwsService(
            self,
            DESCRIBE_CONFIG,
            service="sagemaker",
            action="describeEndpointConfig",
            parameters={"EndpointConfigName": sfn.JsonPath.string_at("$.endpoint.config")},
            iam_resources=[sagemaker_arn(f"endpoint-config/{names.endpoint}-*")],
            iam_action="sagemaker:DescribeEndpointConfig",
            result_selector={"model": sfn.JsonPath.string_at("$.ProductionVariants[0].ModelName")},
            result_path="$.serving",
        )
        for state in (describe_endpoint, describe_config):
            state.add_retry(
                errors=list(TRANSIENT_SAGEMAKER_ERRORS),
                interval=Duration.seconds(5),
                max_attempts=3,
                backoff_rate=2.0,
            )
        return describe_endpoint, describe_config

    # ----- permissions -----
    def _grant_writer(self, curated_bucket: s3.IBucket, data_key: kms.IKey, source: str) -> None:
        role = self.writer.role
        grant_objects(role, curated_bucket, [source, OUTPUT_PREFIX], sid="ReadDayAndOutput")
        grant_objects(
            role, curated_bucket, [SCORES_PREFIX], read=False, write=True, sid="WriteScores"
        )
        grant_key(role, data_key, encrypt=True)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteTheWorklist",
                actions=[
                    "dynamodb:Query",
                    "dynamodb:GetItem",
                    "dynamodb:BatchWriteItem",
                ],
                resources=[self.table.table_arn],
            )
        )
        self.table_key.grant_encrypt_decrypt(role)
        acknowledge_wildcards(
            role,
            "The writer reads the day's discharges under the batch source prefix and the "
            "transform output under batch-scoring/output/, and writes one Parquet file per day "
            "under worklist-scores/ (file names carry the day); kms:GenerateDataKey* and "
            "ReEncrypt* are what encrypting through a customer key (S3 SSE-KMS, DynamoDB) needs.",
            f"Resource::*/{source}/*",
            f"Resource::*/{OUTPUT_PREFIX}/*",
            f"Resource::*/{SCORES_PREFIX}/*",
            "Action::kms:GenerateDataKey*",
            "Action::kms:ReEncrypt*",
        )

    def _grant_serving_role(
        self, serving_role: iam.IRole, curated_bucket: s3.IBucket, source: str
    ) -> None:
        """A transform job reads its input and writes its output as the model's execution role
        (https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html#sagemaker-roles-createtransformjob-perms);
        the role already holds the data key (encrypt, and grants for volumes). The statements
        join the role's own policy, where every grant of the role is reviewed together."""
        grant_objects(serving_role, curated_bucket, [source], sid="BatchDays")
        grant_objects(
            serving_role,
            curated_bucket,
            [OUTPUT_PREFIX],
            read=False,
            write=True,
            sid="BatchOutput",
        )
        serving_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="TransformJobLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}"
                    ":log-group:/aws/sagemaker/TransformJobs*"
                ],
            )
        )
        acknowledge_wildcards(
            serving_role,
            "Batch Transform reads the input files under the batch source prefix and writes "
            "<file>.out under batch-scoring/output/<day>/<run>/ (names known at run time); "
            "SageMaker names each job's log streams in /aws/sagemaker/TransformJobs.",
            f"Resource::*/{source}/*",
            f"Resource::*/{OUTPUT_PREFIX}/*",
            "Resource::*:log-group:/aws/sagemaker/TransformJobs*",
        )

    def _grant_state_machine(self, names: ResourceNames) -> None:
        role = self.state_machine.role
        for statement in (
            *sync_job_statements(
                "Transform",
                TRANSFORM_JOB_SYNC_ACTIONS,
                sagemaker_arn(f"transform-job/{names.batch_transform_job_prefix}-*"),
            ),
            sync_rule_statement("Transform", SAGEMAKER_SYNC_RULE),
        ):
            role.add_to_principal_policy(statement)
        acknowledge_wildcards(
            role,
            "Transform jobs are named <prefix>-<day>-<run> at run time; endpoint configs "
            "<endpoint>-v<version>-<digest> by the deployer; sagemaker:ListTags on every "
            "resource is what the Step Functions guide's policy for createTransformJob.sync "
            "grants; the Lambda task permission CDK generates covers the function's versions; "
            "the X-Ray and CloudWatch Logs delivery actions have no resource type.",
            "Resource::*:transform-job/*-*",
            "Resource::*:endpoint-config/*-*",
            "Resource::[*]",
            "Resource::*:function:*:*",
            "Resource::<*.Arn>:*",
        )

    # ----- the Glue table -----
    def _scores_table(self, curated_name: str, database_name: str) -> None:
        """Parquet partitioned by day, with date partition projection (no crawler, no
        partition to add per night)."""
        location = f"s3://{curated_name}/{SCORES_PREFIX}/"
        glue.CfnTable(
            self,
            "ScoresTable",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=SCORES_TABLE,
                description="Nightly readmission risk scores with top factors (worklist)",
                table_type="EXTERNAL_TABLE",
                partition_keys=[glue.CfnTable.ColumnProperty(name=PARTITION_COLUMN, type="string")],
                parameters={
                    "classification": "parquet",
                    "projection.enabled": "true",
                    f"projection.{PARTITION_COLUMN}.type": "date",
                    f"projection.{PARTITION_COLUMN}.format": "yyyy-MM-dd",
                    f"projection.{PARTITION_COLUMN}.range": f"{FIRST_PROJECTED_DAY},NOW",
                    f"projection.{PARTITION_COLUMN}.interval": "1",
                    f"projection.{PARTITION_COLUMN}.interval.unit": "DAYS",
                    "storage.location.template": (
                        f"{location}{PARTITION_COLUMN}=${{{PARTITION_COLUMN}}}"
                    ),
                },
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[
                        glue.CfnTable.ColumnProperty(name=name, type=kind) for name, kind in COLUMNS
                    ],
                    location=location,
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=(
                            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                        )
                    ),
                ),
            ),
        )

    # ----- alarms -----
    def _alarms(self, names: ResourceNames, topic: sns.ITopic) -> dict[str, cloudwatch.Alarm]:
        alarms: dict[str, cloudwatch.Alarm] = {}
        for purpose, metric, text in (
            (
                "batch-scoring-failed",
                self.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
                "A nightly batch-scoring run failed: the day's worklist lists its records as "
                "failed or was not written. Re-run the day (docs/operations.md).",
            ),
            (
                "batch-scoring-timed-out",
                self.state_machine.metric_timed_out(period=Duration.minutes(5), statistic="Sum"),
                "A nightly batch-scoring run timed out before writing the worklist.",
            ),
        ):
            alarm = cloudwatch.Alarm(
                self,
                purpose.title().replace("-", ""),
                alarm_name=names.alarm(purpose),
                alarm_description=text,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarms[purpose] = alarm
        return alarms
