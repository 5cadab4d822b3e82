"""The dev-to-prod pipeline: CDK Pipelines from a CodeConnections source, two accounts.

Source (CodeConnections) -> synth (``make setup``, ``cdk synth``) -> self-mutate -> the ``dev``
stage into the dev account -> the test suite and a signed smoke test there, side by side ->
a person approves -> the ``prod`` stage into the prod account. The pipeline itself lives in
the dev account. docs/deploy.md, "Dev to prod accounts", gives bootstrap and the order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, Environment, Stack, Stage, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.config import AccountTarget, PipelineConfig, StageConfig
from stacks.nag import acknowledge
from stacks.wildcards import acknowledge_inline_policies, acknowledge_wildcards

#: Composes one stage's stacks into a scope (``app.add_stacks``).
StageBuilder = Callable[[Construct, StageConfig], Any]

#: The Api stack's output holding the invoke URL (stacks/api_stack.py).
API_STACK = "Api"
API_URL_OUTPUT = "ApiUrl"
#: The prediction API's routes the smoke test calls (stacks/components/prediction_api.py).
SMOKE_ROUTES = ("GET/health", "POST/predict")
#: botocore for SigV4 in the smoke step, at the version requirements.lock pins.
BOTOCORE_PIN = "botocore==1.44.5"
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
#: The project's Python (pyproject: ==3.11.*) and Node 20, both on Ubuntu standard:7.0:
#: https://docs.aws.amazon.com/codebuild/latest/userguide/available-runtimes.html
RUNTIME_VERSIONS = {"python": "3.11", "nodejs": "20"}
TEST_TIMEOUT = Duration.minutes(60)
#: The suite runs Spark, torchrun and a model server side by side: 4 vCPUs and 7 GB (MEDIUM)
#: rather than the default 2 vCPUs and 3 GB.
TEST_COMPUTE = codebuild.ComputeType.MEDIUM


class PlatformStage(Stage):
    """One stage's stacks (``Network`` ... ``Api``) as a deployable unit of the pipeline.

    Exposes ``api_url`` (the Api stack's invoke-URL output).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        build: StageBuilder,
        target: AccountTarget,
    ) -> None:
        super().__init__(
            scope, construct_id, env=Environment(account=target.account, region=target.region)
        )
        stacks = build(self, config)
        api = stacks[API_STACK]
        output = api.node.find_child(API_URL_OUTPUT)
        if not isinstance(output, CfnOutput):
            raise TypeError(f"the {API_STACK} stack has no {API_URL_OUTPUT} output")
        self.api_url = output


class PipelineStack(Stack):
    """Exposes ``pipeline`` (a :class:`pipelines.CodePipeline`), ``dev_stage``,
    ``prod_stage``, ``tests``, ``smoke_test`` and ``approval``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline: PipelineConfig,
        dev: StageConfig,
        prod: StageConfig,
        build: StageBuilder,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=Environment(account=pipeline.dev.account, region=pipeline.dev.region),
            **kwargs,
        )
        acknowledge_inline_policies(self)
        source = pipelines.CodePipelineSource.connection(
            pipeline.repository, pipeline.branch, connection_arn=pipeline.connection_arn
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=f"{dev.project}-dev-to-prod",
            # Cross-account deployment needs a KMS key on the artifact bucket that the prod
            # account's deploy role can use; rotated yearly.
            cross_account_keys=True,
            enable_key_rotation=True,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE),
                partial_build_spec=codebuild.BuildSpec.from_object(
                    {"phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}}
                ),
            ),
            synth=pipelines.ShellStep(
                "Synth",
                input=source,
                commands=["make setup", "npx cdk synth"],
            ),
        )
        # The dev registry lets the prod account describe its versions (model_registry.py).
        dev_config = dataclasses.replace(dev, registry_reader_accounts=(pipeline.prod.account,))
        self.dev_stage = PlatformStage(
            self, "Dev", config=dev_config, build=build, target=pipeline.dev
        )
        self.prod_stage = PlatformStage(
            self, "Prod", config=prod, build=build, target=pipeline.prod
        )
        self.tests = pipelines.CodeBuildStep(
            "TestSuite",
            input=source,
            commands=["make test"],
            timeout=TEST_TIMEOUT,
            build_environment=codebuild.BuildEnvironment(
                build_image=BUILD_IMAGE, compute_type=TEST_COMPUTE
            ),
        )
        self.smoke_test = pipelines.CodeBuildStep(
            "SmokeTest",
            input=source,
            install_commands=[f"pip install {BOTOCORE_PIN}"],
            commands=['python scripts/smoke_test.py --api-url "$API_URL" --region "$AWS_REGION"'],
            env_from_cfn_outputs={"API_URL": self.dev_stage.api_url},
            role_policy_statements=[
                iam.PolicyStatement(
                    sid="InvokeTheSmokeTestedRoutes",
                    actions=["execute-api:Invoke"],
                    resources=[
                        f"arn:{Aws.PARTITION}:execute-api:{pipeline.dev.region}:"
                        f"{pipeline.dev.account}:*/*/{route}"
                        for route in SMOKE_ROUTES
                    ],
                )
            ],
        )
        self.approval = pipelines.ManualApprovalStep(
            "PromoteToProd",
            comment=(
                "The dev stage is deployed, the test suite and the smoke test passed. Approve "
                "to deploy the prod stage to the prod account (docs/operations.md, "
                "'Promoting to prod')."
            ),
        )
        self.pipeline.add_stage(self.dev_stage, post=[self.tests, self.smoke_test])
        self.pipeline.add_stage(self.prod_stage, pre=[self.approval])
        self.pipeline.build_pipeline()
        self._acknowledge()

    def _acknowledge(self) -> None:
        """cdk-nag findings on what CDK Pipelines generates, each with its reason."""
        acknowledge_wildcards(
            self,
            "Generated by CDK Pipelines' grants: read/write of the pipeline's own artifact "
            "bucket (objects are named per execution) and use of its KMS key; CodeBuild log "
            "groups and report groups are named per project and build. The smoke step may "
            "invoke GET /health and POST /predict only, on the dev account's APIs: the API "
            "id exists only once the dev stage is deployed.",
            "Action::s3:GetObject*",
            "Action::s3:GetBucket*",
            "Action::s3:List*",
            "Action::s3:Abort*",
            "Action::s3:DeleteObject*",
            "Action::kms:GenerateDataKey*",
            "Action::kms:ReEncrypt*",
            "Resource::<PipelineArtifactsBucket*.Arn>/*",
            "Resource::arn:*:codebuild:*:report-group/*",
            "Resource::arn:*:logs:*:log-group:/aws/codebuild/*",
            *(f"Resource::arn:<AWS::Partition>:execute-api:*:*/*/{r}" for r in SMOKE_ROUTES),
        )
        self_mutation = self.pipeline.node.find_child("UpdatePipeline").node.find_child(
            "SelfMutation"
        )
        acknowledge_wildcards(
            self_mutation,
            "The self-mutation build assumes the CDK bootstrap roles, any role of the account "
            "but only those tagged aws-cdk:bootstrap-role (the statement's condition), and "
            "reads stack state (cloudformation:DescribeStacks, s3:ListBucket), whose stacks "
            "and buckets it learns from the cloud assembly.",
            "Resource::*",
            "Resource::arn:*:iam::*:role/*",
        )
        acknowledge_wildcards(
            self.pipeline.node.find_child("Assets").node.find_child("FileRole"),
            "The asset-publishing role starts and watches its own CodeBuild builds "
            "(codebuild:StartBuild, BatchGetBuilds, StopBuild), created by CDK Pipelines.",
            "Resource::*",
        )
        acknowledge(
            self.pipeline.pipeline.artifact_bucket,
            "The pipeline's artifact bucket holds build inputs and outputs only (the source "
            "at a commit, the cloud assembly), no patient data, all reproducible from the "
            "repository; CDK Pipelines makes it KMS-encrypted, TLS-only and private, and "
            "CloudTrail records its management events.",
            "AwsSolutions-S1",
            "HIPAA.Security-S3BucketLoggingEnabled",
            "HIPAA.Security-S3BucketReplicationEnabled",
            "HIPAA.Security-S3BucketVersioningEnabled",
        )
        acknowledge(
            self,
            "Every CodeBuild project of the pipeline takes its source from CodePipeline "
            "(source type CODEPIPELINE), not a repository URL: the repository is reached "
            "through the CodeConnections connection (an OAuth app installation), and no "
            "project holds a token or password.",
            "HIPAA.Security-CodeBuildProjectSourceRepoUrl",
        )
