"""The derived training and serving images: ECR repositories and the CodeBuild project.

The training jobs and the endpoint run in subnets without a route to the internet, so the
PyTorch DLC images cannot ``pip install`` the project's pins at start-up. The images in
``containers/`` add them; CodeBuild builds them in AWS (privileged, docker-in-docker) from the
staged build context, and the training pipeline starts a build only when ECR lacks the tag.

What the build reaches, all over HTTPS (TCP 443) from its own :class:`BuildNetwork` (private
subnet, NAT gateway, no ingress, flow logs), and nothing else:

- ECR of AWS's Deep Learning Containers account (763104351884): pull the two PyTorch bases;
- ECR of this account: push the two derived images;
- pypi.org and files.pythonhosted.org: the pinned packages of the requirements files;
- S3: the build context (the CDK asset) and ECR's image layers, through the gateway endpoint;
- CloudWatch Logs: the build's log group.

Each tag is ``<DLC tag>-<content hash>``: the hash covers the image's folder of the staged
context (Dockerfile and requirements), computed at synthesis, so a changed pin gives a new tag,
an unchanged one the same tag on every machine, and IMMUTABLE repositories can never hold two
different images under one tag.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from stacks.components.build_network import BuildNetwork
from stacks.components.log_groups import encrypted_log_group
from stacks.components.sagemaker_images import (
    pytorch_image_tag,
    pytorch_image_uri,
    pytorch_repository_arn,
)
from stacks.nag import acknowledge
from stacks.packaging import CONTAINER_BUILD_SCRIPT, content_digest, stage_container_context
from stacks.wildcards import acknowledge_wildcards

#: Hex digits of the content hash in a tag (64 bits: collisions are not a practical concern).
TAG_HASH_CHARS = 16
#: CodeBuild's standard Ubuntu image with docker; big enough to unpack the multi-GB DLC layers.
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
BUILD_COMPUTE = codebuild.ComputeType.LARGE

#: What pushing an image to ECR needs, on the repository.
PUSH_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
)
#: What pulling an image from ECR needs, on the repository.
PULL_ACTIONS = (
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
)

#: CodeBuild runs the docker daemon only in privileged mode ("Set to true only if the build
#: project is used to build Docker images"): docs.aws.amazon.com/codebuild/latest/APIReference/
#: API_ProjectEnvironment.html
PRIVILEGED_REASON = (
    "Privileged mode is what lets CodeBuild run the docker daemon that builds the derived "
    "images (docker-in-docker); the project builds only the staged containers/ context from "
    "this stack's S3 asset, holds no secrets, and runs in its own build network (HTTPS out "
    "only), never in the platform's VPC."
)
#: What CodeBuild's service role needs to place a build in a VPC, as aws-cdk-lib adds it for a
#: project with a VPC and as AWS's example policy has it ("Allow CodeBuild access to AWS
#: services required to create a VPC network interface"): docs.aws.amazon.com/codebuild/latest/
#: userguide/auth-and-access-control-iam-identity-based-access-control.html
VPC_ACCESS_REASON = (
    "What CodeBuild needs to run a build in the build network (AWS's CodeBuild VPC example "
    "policy, added by aws-cdk-lib): ec2:Describe* support no resource-level permission, and "
    "the network interfaces CodeBuild creates and deletes have no id before it creates them "
    "(the project's VpcConfig fixes their subnet and security group); "
    "ec2:CreateNetworkInterfacePermission is conditioned on the build subnet and on the "
    "CodeBuild service."
)


def image_tag(context_folder: str, digest: str, instance_type: str) -> str:
    """``<DLC tag>-<hash>``, e.g. ``2.6.0-gpu-py312-0123456789abcdef``."""
    if len(digest) < TAG_HASH_CHARS:
        raise ValueError(f"digest of {context_folder} is shorter than {TAG_HASH_CHARS} characters")
    return f"{pytorch_image_tag(instance_type)}-{digest[:TAG_HASH_CHARS]}"


@dataclass(frozen=True)
class ImageSpec:
    """One derived image: its folder under ``containers/``, DLC scope and instance type."""

    folder: str  # training | serving
    dlc_scope: str  # training | inference
    instance_type: str


class ContainerImages(Construct):
    """ECR repositories ``<prefix>-training`` and ``<prefix>-serving`` and their build project.

    Exposes ``training_repository``, ``serving_repository``, ``training_tag``,
    ``serving_tag``, ``training_image_uri``, ``serving_image_uri``, ``project``,
    ``project_timeout``, ``role`` and ``network`` (the :class:`BuildNetwork`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        training_repository_name: str,
        serving_repository_name: str,
        project_name: str,
        training_instance_type: str,
        serving_instance_type: str,
        key: kms.IKey,
        keep_last: int,
        build_timeout: Duration,
        log_retention_days: int,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.project_timeout = build_timeout
        context = stage_container_context()
        training = ImageSpec("training", "training", training_instance_type)
        serving = ImageSpec("serving", "inference", serving_instance_type)
        self.training_tag = image_tag(
            training.folder, content_digest(context / training.folder), training.instance_type
        )
        self.serving_tag = image_tag(
            serving.folder, content_digest(context / serving.folder), serving.instance_type
        )
        self.training_repository = self._repository(
            "TrainingRepository", training_repository_name, key, keep_last, retain
        )
        self.serving_repository = self._repository(
            "ServingRepository", serving_repository_name, key, keep_last, retain
        )
        self.training_image_uri = self.training_repository.repository_uri_for_tag(self.training_tag)
        self.serving_image_uri = self.serving_repository.repository_uri_for_tag(self.serving_tag)
        source = s3_assets.Asset(self, "BuildContext", path=str(context))
        self.role = iam.Role(
            self,
            "BuildRole",
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"{project_name}: builds the derived images and pushes them to ECR",
        )
        self._grant(training, serving, source)
        self.network = BuildNetwork(
            self,
            "Network",
            key=key,
            log_retention_days=log_retention_days,
            retain_logs=retain,
        )
        self.project = codebuild.Project(
            self,
            "Build",
            project_name=project_name,
            description="Builds the derived training and serving images (containers/) on demand",
            build_spec=codebuild.BuildSpec.from_object(
                {
                    "version": "0.2",
                    "phases": {"build": {"commands": [f"bash {CONTAINER_BUILD_SCRIPT}"]}},
                }
            ),
            environment=codebuild.BuildEnvironment(
                build_image=BUILD_IMAGE, compute_type=BUILD_COMPUTE, privileged=True
            ),
            environment_variables=self._variables(training, serving),
            role=self.role,
            vpc=self.network.vpc,
            subnet_selection=self.network.subnets,
            security_groups=[self.network.security_group],
            encryption_key=key,
            timeout=build_timeout,
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(
                    log_group=encrypted_log_group(
                        self,
                        "Logs",
                        key=key,
                        days=log_retention_days,
                        retain=retain,
                        log_group_name=f"/aws/codebuild/{project_name}",
                    )
                )
            ),
        )
        # The S3 source is set on the L1 resource: codebuild.Source.s3 would also grant
        # s3:GetObject*/GetBucket*/List* on the whole asset bucket; the role gets exactly
        # what CodeBuild needs on this one object in _grant.
        project = self.project.node.default_child
        if not isinstance(project, codebuild.CfnProject):
            raise TypeError("the CodeBuild project has no CfnProject to set the source on")
        project.add_property_override("Source.Type", "S3")
        project.add_property_override(
            "Source.Location", f"{source.s3_bucket_name}/{source.s3_object_key}"
        )
        acknowledge(self.project, PRIVILEGED_REASON, "AwsSolutions-CB3")
        acknowledge(
            self.project,
            "The source is an S3 object (the CDK asset of the staged containers/ context), not "
            "a GitHub or Bitbucket repository: there is no repository URL or credential.",
            "HIPAA.Security-CodeBuildProjectSourceRepoUrl",
        )
        acknowledge_wildcards(self.project, VPC_ACCESS_REASON, "Resource::[*]")
        acknowledge_wildcards(self.role, VPC_ACCESS_REASON, "Resource::*:network-interface/*")
        acknowledge_wildcards(
            self.role,
            "CDK's own statements of a CodeBuild project: its log group's streams "
            "(/aws/codebuild/<project>:*, named per build), its report groups "
            "(<project>-*), and the project key's ReEncrypt*/GenerateDataKey* with which "
            "CodeBuild encrypts build logs and cache.",
            "Resource::*:log-group:/aws/codebuild/*:*",
            "Resource::*:report-group/*-*",
            "Action::kms:ReEncrypt*",
            "Action::kms:GenerateDataKey*",
        )

    def _repository(
        self, construct_id: str, name: str, key: kms.IKey, keep_last: int, retain: bool
    ) -> ecr.Repository:
        return ecr.Repository(
            self,
            construct_id,
            repository_name=name,
            encryption=ecr.RepositoryEncryption.KMS,
            encryption_key=key,
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description=f"Keep the newest {keep_last} images",
                    max_image_count=keep_last,
                )
            ],
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            empty_on_delete=not retain,
        )

    def _variables(
        self, training: ImageSpec, serving: ImageSpec
    ) -> dict[str, codebuild.BuildEnvironmentVariable]:
        """What ``containers/build.sh`` reads: each image's repository, tag and base image."""
        values = {
            "TRAINING_REPOSITORY_URI": self.training_repository.repository_uri,
            "TRAINING_IMAGE_TAG": self.training_tag,
            "TRAINING_BASE_IMAGE": pytorch_image_uri(training.dlc_scope, training.instance_type),
            "SERVING_REPOSITORY_URI": self.serving_repository.repository_uri,
            "SERVING_IMAGE_TAG": self.serving_tag,
            "SERVING_BASE_IMAGE": pytorch_image_uri(serving.dlc_scope, serving.instance_type),
        }
        return {name: codebuild.BuildEnvironmentVariable(value=v) for name, v in values.items()}

    def _grant(self, training: ImageSpec, serving: ImageSpec, source: s3_assets.Asset) -> None:
        """Pull the two DLC base repositories, push to the own two, read the build context."""
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PullBaseImages",
                actions=list(PULL_ACTIONS),
                resources=sorted(
                    {pytorch_repository_arn(spec.dlc_scope) for spec in (training, serving)}
                ),
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PushDerivedImages",
                actions=list(PUSH_ACTIONS),
                resources=[
                    self.training_repository.repository_arn,
                    self.serving_repository.repository_arn,
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EcrToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadBuildContext",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[source.bucket.arn_for_objects(source.s3_object_key)],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="LocateBuildContextBucket",
                actions=["s3:GetBucketAcl", "s3:GetBucketLocation"],
                resources=[source.bucket.bucket_arn],
            )
        )
        acknowledge_wildcards(
            self.role,
            "ecr:GetAuthorizationToken supports no resource-level permission (the token is "
            "per registry, and each push or pull is still checked against the repository).",
            "Resource::[*]",
        )
