"""The training pipeline: images -> ETL -> distributed training -> gate -> registry -> notify.

A Step Functions state machine, started by the retraining schedule and by the feature-drift
alarm. It first asks ECR whether the derived training and serving images of this synthesis
exist (``ecr:describeImages`` on their content-hash tags) and runs the CodeBuild project
(``startBuild.sync``) only when one is missing. The training step is a ``CustomState`` over
``createTrainingJob.sync`` because the CDK ``SageMakerCreateTrainingJob`` task cannot express
managed spot (``EnableManagedSpotTraining``, ``MaxWaitTimeInSeconds``) or ``CheckpointConfig``;
its request (encryption and network settings included) is built from :mod:`training.job_spec`,
like the manual launcher's, and its IAM permissions are added here exactly.

The state machine's role holds what each service integration needs according to the Step
Functions developer guide's "IAM policies for ..." pages (CDK's tasks add those of the Glue,
CodeBuild, Lambda, SNS and SDK integrations; the custom training state's are added here from
https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html), and no more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from aws_cdk import Aws, Duration, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from contracts.etl_manifest import MANIFEST_FILE
from lambdas.registrar import settings as registrar_env
from stacks.components.container_images import ContainerImages
from stacks.components.grants import grant_key, grant_objects, reference
from stacks.components.model_registry import (
    FEATURES_PREFIX,
    PROTECTED_PREFIX,
    TRAINING_PREFIX,
    ModelRegistry,
    list_versions_statement,
    sagemaker_arn,
)
from stacks.components.platform_function import PlatformFunction
from stacks.components.workflow import (
    catch_all,
    logged_state_machine,
    sync_job_statements,
    sync_rule_statement,
)
from stacks.config import EndpointConfig, TrainingConfig
from stacks.lineage import SourceLineage
from stacks.training_source import build_training_source_archive
from stacks.wildcards import acknowledge_wildcards
from training import job_spec

SPLITS = ("train", "validation", "test")
#: createTrainingJob.sync polls through this EventBridge rule that Step Functions manages.
SAGEMAKER_SYNC_RULE = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"
#: What createTrainingJob.sync needs on the job ("Run a Job (.sync)", static resources, of
#: https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html). The request sets
#: no Tags, so sagemaker:AddTags is not among them.
TRAINING_JOB_SYNC_ACTIONS = (
    "sagemaker:CreateTrainingJob",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:StopTrainingJob",
)
#: ... plus sagemaker:ListTags on every resource and the managed rule above
#: (``stacks.components.workflow``).
SECONDS_PER_HOUR = 3600

#: What describeImages raises, as a Step Functions SDK integration names it, for a missing tag.
IMAGE_NOT_FOUND = "Ecr.ImageNotFoundException"

#: State names, in the order a successful execution visits them.
PREPARE = "Prepare"
CHECK_TRAINING_IMAGE = "Check training image"
CHECK_SERVING_IMAGE = "Check serving image"
BUILD_IMAGES = "Build images"
RUN_ETL = "Run ETL"
TRAIN = "Train"
EVALUATE = "Evaluate"
GATE = "Quality gate"
REGISTER = "Register model version"
NOTIFY_SUCCESS = "Notify registered"
SUCCEEDED = "Registered"
NOTIFY_GATE_FAILED = "Notify gate failed"
GATE_FAILED = "Quality gate failed"
NOTIFY_FAILURE = "Notify failure"
FAILED = "Pipeline failed"


@dataclass(frozen=True)
class PipelineNames:
    """Physical names the pipeline needs."""

    state_machine: str
    training_job_prefix: str
    registrar_function: str
    glue_job: str
    feature_drift_alarm: str


def training_job_state(
    *,
    image: str,
    role_arn: str,
    source_uri: str,
    source_archive: str,
    region: str,
    features_uri: str,
    protected_uri: str,
    output_uri: str,
    key_arn: str,
    training: TrainingConfig,
    subnet_ids: list[str],
    security_group_ids: list[str],
) -> dict[str, Any]:
    """The ``createTrainingJob.sync`` task state (Parameters as SageMaker's API names them).

    ``source_uri`` is the source archive's S3 object and ``source_archive`` its file name: the
    archive reaches the network-isolated container as the ``code`` channel.
    """
    channels = [
        {
            "ChannelName": split,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": f"{features_uri}/split={split}/",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
        for split in SPLITS
    ]
    channels.append(
        {
            "ChannelName": "protected",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": f"{protected_uri}/split=test/",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
    )
    channels.append(job_spec.code_channel(source_uri))
    checkpoint = job_spec.checkpoint_config(job_spec.checkpoint_s3_uri(output_uri, "{}"))
    return {
        "Type": "Task",
        "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {
            "TrainingJobName.$": "$.job_name",
            "RoleArn": role_arn,
            "AlgorithmSpecification": {
                "TrainingImage": image,
                "TrainingInputMode": "File",
                "MetricDefinitions": job_spec.metric_definitions(),
                "EnableSageMakerMetricsTimeSeries": True,
            },
            "HyperParameters": job_spec.hyperparameters(
                source_archive, region, job_spec.stage_hyperparameters(training.alert_budget)
            ),
            "Environment": job_spec.environment(),
            "InputDataConfig": channels,
            "OutputDataConfig": job_spec.output_data_config(output_uri, key_arn),
            "ResourceConfig": job_spec.resource_config(
                training.instance_type, training.instance_count, key_arn
            ),
            "StoppingCondition": job_spec.stopping_condition(
                training.max_runtime_hours * SECONDS_PER_HOUR, training.use_spot
            ),
            "EnableManagedSpotTraining": training.use_spot,
            "CheckpointConfig": {
                # The job name is only known at run time: the path is formatted per execution.
                "S3Uri.$": f"States.Format('{checkpoint['S3Uri']}', $.job_name)",
                "LocalPath": checkpoint["LocalPath"],
            },
            # VpcConfig, inter-container traffic encryption, network isolation.
            **job_spec.network_config(subnet_ids, security_group_ids),
        },
        "ResultSelector": {
            "TrainingJobName.$": "$.TrainingJobName",
            "ModelDataUrl.$": "$.ModelArtifacts.S3ModelArtifacts",
        },
        "ResultPath": "$.training",
    }


class TrainingPipeline(Construct):
    """Registrar Lambda, state machine, retraining schedule and drift trigger.

    Trains on ``images``' derived training image and registers versions with its derived
    serving image (the deployer serves whatever image a version names).

    Exposes ``state_machine``, ``registrar`` (a :class:`PlatformFunction`),
    ``schedule_rule`` and ``drift_rule``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: PipelineNames,
        training: TrainingConfig,
        endpoint: EndpointConfig,
        schedule: str,
        registry: ModelRegistry,
        images: ContainerImages,
        data_key: kms.IKey,
        curated_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        alert_topic: sns.ITopic,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        key: kms.IKey,
        log_retention_days: int,
        retain_logs: bool,
        etl_timeout_minutes: int,
        lineage: SourceLineage,
    ) -> None:
        super().__init__(scope, construct_id)
        curated = reference(self, curated_bucket.bucket_name, curated_bucket)
        self.registrar = PlatformFunction(
            self,
            "Registrar",
            folder="registrar",
            function_name=names.registrar_function,
            description="Quality-gates a trained model and registers it for manual approval",
            environment=registrar_env.ENVIRONMENT.environment(
                {
                    registrar_env.MODEL_PACKAGE_GROUP_NAME_ENV: registry.group_name,
                    registrar_env.INFERENCE_IMAGE_URI_ENV: images.serving_image_uri,
                    registrar_env.ENDPOINT_INSTANCE_TYPE_ENV: endpoint.instance_type,
                    registrar_env.MIN_TEST_AUROC_ENV: str(training.min_test_auroc),
                    registrar_env.KMS_KEY_ARN_ENV: reference(self, data_key.key_arn, data_key),
                    # Lineage the registrar puts on every version (lambdas/registrar/evidence.py).
                    registrar_env.MANIFEST_S3_URI_ENV: f"s3://{curated}/{MANIFEST_FILE}",
                    registrar_env.TRAINING_IMAGE_TAG_ENV: images.training_tag,
                    registrar_env.SOURCE_REPOSITORY_ENV: lineage.repository,
                    registrar_env.SOURCE_COMMIT_ENV: lineage.commit,
                }
            ),
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            key=key,
            log_retention_days=log_retention_days,
            retain_logs=retain_logs,
            timeout=Duration.minutes(5),
            reserved_concurrency=2,
        )
        self._grant_registrar(registry, artifact_bucket, curated_bucket, data_key)
        source = s3_assets.Asset(self, "TrainingSource", path=str(build_training_source_archive()))
        if Token.is_unresolved(source.s3_object_key):
            raise ValueError("the training source's asset key must be known at synthesis")
        artifacts = reference(self, artifact_bucket.bucket_name, artifact_bucket)
        selection = vpc.select_subnets(
            subnet_type=subnets.subnet_type, subnet_group_name=subnets.subnet_group_name
        )
        train_state = training_job_state(
            image=images.training_image_uri,
            role_arn=registry.training_role.role_arn,
            source_uri=source.s3_object_url,
            source_archive=PurePosixPath(source.s3_object_key).name,
            region=Aws.REGION,
            features_uri=f"s3://{curated}/{FEATURES_PREFIX}",
            protected_uri=f"s3://{curated}/{PROTECTED_PREFIX}",
            output_uri=f"s3://{artifacts}/{TRAINING_PREFIX}",
            key_arn=reference(self, data_key.key_arn, data_key),
            training=training,
            subnet_ids=selection.subnet_ids,
            security_group_ids=[security_group.security_group_id],
        )
        definition = self._definition(names, train_state, alert_topic, images)
        # An image build, ETL, the longest a (spot) training job may take, and an hour for
        # the rest.
        training_hours = training.max_runtime_hours * (
            job_spec.SPOT_WAIT_FACTOR if training.use_spot else 1
        )
        build_hours = images.project_timeout.to_minutes() / 60
        timeout_hours = build_hours + etl_timeout_minutes / 60 + training_hours + 1
        self.state_machine = logged_state_machine(
            self,
            name=names.state_machine,
            definition=definition,
            timeout=Duration.minutes(round(timeout_hours * 60)),
            key=key,
            log_retention_days=log_retention_days,
            retain_logs=retain_logs,
        )
        self._grant_state_machine(names, registry, source)
        alert_topic.grant_publish(self.state_machine)
        target = targets.SfnStateMachine(self.state_machine)
        self.schedule_rule = events.Rule(
            self,
            "RetrainingSchedule",
            description="Retrain on the stage's schedule",
            schedule=events.Schedule.expression(schedule),
            targets=[target],
        )
        self.drift_rule = events.Rule(
            self,
            "RetrainOnFeatureDrift",
            description="Retrain when the feature-drift alarm goes into ALARM",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                detail={
                    "alarmName": [names.feature_drift_alarm],
                    "state": {"value": ["ALARM"]},
                },
            ),
            targets=[target],
        )

    def _definition(
        self,
        names: PipelineNames,
        train_state: dict[str, Any],
        topic: sns.ITopic,
        images: ContainerImages,
    ) -> sfn.IChainable:
        """Prepare -> image checks (a missing image goes to the build) -> ETL -> Train ->
        Evaluate -> Quality gate; any failed task notifies and fails the execution."""
        failure = self._failure(names, topic)
        prepare = self._prepare(names)
        build = catch_all(self._build_images(images), failure)
        check_training = self._image_check(
            CHECK_TRAINING_IMAGE, images.training_repository, images.training_tag, build
        )
        check_serving = self._image_check(
            CHECK_SERVING_IMAGE, images.serving_repository, images.serving_tag, build
        )
        for check in (check_training, check_serving):
            catch_all(check, failure)
        etl = catch_all(self._run_etl(names), failure)
        train = catch_all(sfn.CustomState(self, TRAIN, state_json=train_state), failure)
        evaluate = catch_all(self._evaluate(), failure)
        gate = self._gate(names, topic, register=catch_all(self._register(), failure))
        build.next(etl)
        return (
            prepare.next(check_training)
            .next(check_serving)
            .next(etl)
            .next(train)
            .next(evaluate)
            .next(gate)
        )

    def _failure(self, names: PipelineNames, topic: sns.ITopic) -> sfn.IChainable:
        """Notify the alert topic of the failed execution (the error's name only), then fail."""
        return tasks.SnsPublish(
            self,
            NOTIFY_FAILURE,
            topic=topic,
            subject=f"{names.state_machine}: pipeline failed",
            message=sfn.TaskInput.from_object(
                {
                    "pipeline": names.state_machine,
                    "execution": sfn.JsonPath.string_at("$$.Execution.Name"),
                    "error": sfn.JsonPath.string_at("$.error.Error"),
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        ).next(sfn.Fail(self, FAILED, error="TrainingPipelineFailed"))

    def _prepare(self, names: PipelineNames) -> sfn.Pass:
        """Name this execution's training job ``<prefix>-<uuid>``."""
        return sfn.Pass(
            self,
            PREPARE,
            parameters={
                "job_name": sfn.JsonPath.format(
                    f"{names.training_job_prefix}-{{}}", sfn.JsonPath.uuid()
                )
            },
        )

    def _build_images(self, images: ContainerImages) -> tasks.CodeBuildStartBuild:
        """Build both derived images (``startBuild.sync``)."""
        return tasks.CodeBuildStartBuild(
            self,
            BUILD_IMAGES,
            project=images.project,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_path=sfn.JsonPath.DISCARD,
        )

    def _run_etl(self, names: PipelineNames) -> tasks.GlueStartJobRun:
        """Run the feature ETL job to completion (``startJobRun.sync``)."""
        return tasks.GlueStartJobRun(
            self,
            RUN_ETL,
            glue_job_name=names.glue_job,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_selector={"JobRunId.$": "$.Id", "JobRunState.$": "$.JobRunState"},
            result_path="$.etl",
        )

    def _evaluate(self) -> tasks.LambdaInvoke:
        """The registrar evaluates the trained model against the quality gate."""
        return tasks.LambdaInvoke(
            self,
            EVALUATE,
            lambda_function=self.registrar.function,
            payload=sfn.TaskInput.from_object(
                {
                    "action": "evaluate",
                    "model_data_url": sfn.JsonPath.string_at("$.training.ModelDataUrl"),
                    "training_job_name": sfn.JsonPath.string_at("$.training.TrainingJobName"),
                }
            ),
            result_selector={"evaluation.$": "$.Payload"},
            result_path="$.gate",
        )

    def _register(self) -> tasks.LambdaInvoke:
        """The registrar registers the evaluated model as a version pending approval."""
        return tasks.LambdaInvoke(
            self,
            REGISTER,
            lambda_function=self.registrar.function,
            payload=sfn.TaskInput.from_object(
                {
                    "action": "register",
                    "evaluation": sfn.JsonPath.object_at("$.gate.evaluation"),
                }
            ),
            result_selector={"model_package_arn.$": "$.Payload.model_package_arn"},
            result_path="$.registration",
        )

    def _gate(
        self, names: PipelineNames, topic: sns.ITopic, *, register: tasks.LambdaInvoke
    ) -> sfn.Choice:
        """Passed: register, notify, succeed. Failed: notify the reasons, fail."""
        notify_success = tasks.SnsPublish(
            self,
            NOTIFY_SUCCESS,
            topic=topic,
            subject=f"{names.state_machine}: model version awaits approval",
            message=sfn.TaskInput.from_object(
                {
                    "model_package_arn": sfn.JsonPath.string_at("$.registration.model_package_arn"),
                    "test_auroc": sfn.JsonPath.number_at("$.gate.evaluation.test_auroc"),
                    "baseline_auroc": sfn.JsonPath.number_at("$.gate.evaluation.baseline_auroc"),
                    "next_step": "review and approve or reject in SageMaker Studio",
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        notify_gate_failed = tasks.SnsPublish(
            self,
            NOTIFY_GATE_FAILED,
            topic=topic,
            subject=f"{names.state_machine}: model rejected by the quality gate",
            message=sfn.TaskInput.from_object(
                {
                    "training_job_name": sfn.JsonPath.string_at("$.training.TrainingJobName"),
                    "reasons": sfn.JsonPath.list_at("$.gate.evaluation.reasons"),
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        ).next(sfn.Fail(self, GATE_FAILED, error="QualityGateFailed"))
        return (
            sfn.Choice(self, GATE)
            .when(
                sfn.Condition.boolean_equals("$.gate.evaluation.passed", True),
                register.next(notify_success).next(sfn.Succeed(self, SUCCEEDED)),
            )
            .otherwise(notify_gate_failed)
        )

    def _image_check(
        self, state_id: str, repository: ecr.IRepository, tag: str, build: sfn.IChainable
    ) -> tasks.CallAwsService:
        """``ecr:describeImages`` for one tag; a missing image goes to the build."""
        check = tasks.CallAwsService(
            self,
            state_id,
            service="ecr",
            action="describeImages",
            parameters={
                "RepositoryName": repository.repository_name,
                "ImageIds": [{"ImageTag": tag}],
            },
            iam_resources=[repository.repository_arn],
            iam_action="ecr:DescribeImages",
            result_path=sfn.JsonPath.DISCARD,
        )
        # The error lands beside the input, so the job name travels on to the build and ETL.
        check.add_catch(build, errors=[IMAGE_NOT_FOUND], result_path="$.image_missing")
        return check

    def _grant_registrar(
        self,
        registry: ModelRegistry,
        artifact_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        data_key: kms.IKey,
    ) -> None:
        role = self.registrar.role
        # Reads the archive, writes the report and the evidence beside it (card, bias and
        # explainability reports, drift baseline, sample payload, HTML card), reads the card
        # back when it registers.
        grant_objects(role, artifact_bucket, [TRAINING_PREFIX], write=True, sid="Evaluation")
        grant_key(role, data_key, encrypt=True)
        # The ETL manifest, hashed into the version's lineage: that one object, read only. No
        # s3:ListBucket: a missing manifest reads as 403, which the registrar names on the card.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="HashEtlManifest",
                actions=["s3:GetObject"],
                resources=[
                    f"{reference(self, curated_bucket.bucket_arn, curated_bucket)}/{MANIFEST_FILE}"
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterVersions",
                actions=["sagemaker:DescribeModelPackage"],
                resources=[registry.package_arns],
            )
        )
        # Versions are created pending, never approved: sagemaker:ModelApprovalStatus is a
        # condition key of CreateModelPackage (Service Authorization Reference); the group's
        # policy denies any other status to every principal as well. The version's card,
        # metrics reports, drift baselines, lineage, sample payload and lifecycle are members
        # of the same CreateModelPackage request and need no other action: a model package's
        # card is not a model-card resource (no sagemaker:CreateModelCard), and SageMaker does
        # not read the S3 reports at creation (the approver's Studio session reads them with
        # the approver role's grant on training/). Service Authorization Reference, Amazon
        # SageMaker: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html
        # and API_ModelPackageModelCard:
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelPackageModelCard.html
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterPendingVersions",
                actions=["sagemaker:CreateModelPackage"],
                resources=[registry.group_arn, registry.package_arns],
                conditions={
                    "StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}
                },
            )
        )
        role.add_to_policy(list_versions_statement("FindVersions"))
        acknowledge_wildcards(
            role,
            "The registrar reads model archives and writes evaluation reports under "
            "training/<job name>/output/ (job names are generated per run), creates versions "
            "of its one package group (version ARNs end in a number assigned by SageMaker), "
            "and lists this account's model packages (ListModelPackages' resource type is "
            "model-package; see model_registry.list_versions_statement).",
            f"Resource::*/{TRAINING_PREFIX}/*",
            "Resource::*:model-package/*/*",
            "Resource::*:model-package/*",
        )

    def _grant_state_machine(
        self, names: PipelineNames, registry: ModelRegistry, source: s3_assets.Asset
    ) -> None:
        role = self.state_machine.role
        for statement in sync_job_statements(
            "Training",
            TRAINING_JOB_SYNC_ACTIONS,
            sagemaker_arn(f"training-job/{names.training_job_prefix}-*"),
        ):
            role.add_to_principal_policy(statement)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassExecutionRoleToSageMaker",
                actions=["iam:PassRole"],
                resources=[registry.training_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        role.add_to_principal_policy(sync_rule_statement("Training", SAGEMAKER_SYNC_RULE))
        # The training job downloads its source with the execution role.
        registry.training_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadTrainingSource",
                actions=["s3:GetObject"],
                resources=[
                    f"arn:{Aws.PARTITION}:s3:::{source.s3_bucket_name}/{source.s3_object_key}"
                ],
            )
        )
        acknowledge_wildcards(
            role,
            "Training jobs are named <prefix>-<execution uuid> at run time; the Lambda task "
            "permission CDK generates covers the function's versions; the X-Ray and "
            "CloudWatch Logs delivery actions have no resource type in the Service "
            "Authorization Reference; sagemaker:ListTags on every resource is what the Step "
            "Functions guide's policy for createTrainingJob.sync grants; kms:GenerateDataKey* "
            "on the alert topic's key is what publishing to an encrypted topic needs.",
            "Resource::*:training-job/*-*",
            "Action::kms:GenerateDataKey*",
            "Resource::[*]",
            "Resource::*:function:*:*",
            "Resource::<*.Arn>:*",
        )
