"""The model registry: the package group, who may approve, and the role SageMaker runs as."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.components.grants import grant_key, grant_objects, reference
from stacks.naming import ResourceNames
from stacks.wildcards import acknowledge_wildcards

#: Prefixes of the artifact bucket: training jobs write under ``training/``.
TRAINING_PREFIX = "training"
#: Where the curated bucket holds the ETL's output.
FEATURES_PREFIX = "features"
PROTECTED_PREFIX = "protected"
#: Where SageMaker writes endpoint data capture in the capture bucket.
CAPTURE_PREFIX = "capture"


def ecr_repository_arn(name: str) -> str:
    """ARN of an ECR repository of this account and region, by name."""
    return f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{Aws.ACCOUNT_ID}:repository/{name}"


def sagemaker_arn(resource: str) -> str:
    """ARN of a SageMaker resource (``model-package/<group>/*``) in this account and region."""
    return f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"


class ModelRegistry(Construct):
    """Model package group (retained), its policy, the approver and SageMaker execution roles.

    Exposes ``group_name``, ``group_arn``, ``package_arns`` (ARN pattern of its versions),
    ``approver_role`` and ``execution_role``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        group_name: str,
        names: ResourceNames,
        data_key: kms.IKey,
        curated_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        capture_bucket: s3.IBucket,
        image_repositories: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        if not image_repositories:
            raise ValueError("the execution role needs the image repositories it pulls from")
        self.group_name = group_name
        self.group_arn = sagemaker_arn(f"model-package-group/{group_name}")
        self.package_arns = sagemaker_arn(f"model-package/{group_name}/*")
        self._names = names
        self.approver_role = self._approver_role(data_key, artifact_bucket)
        self.execution_role = self._execution_role(
            data_key, curated_bucket, artifact_bucket, capture_bucket, image_repositories
        )
        group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=group_name,
            model_package_group_description=(
                "30-day readmission risk models; a version deploys only once approved"
            ),
            model_package_group_policy=self._group_policy().to_json(),
        )
        # Versions, their approval history and metrics are the audit trail of what was served.
        group.apply_removal_policy(RemovalPolicy.RETAIN)

    def _group_policy(self) -> iam.PolicyDocument:
        """Only the approver role may change a version's approval status."""
        return iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="OnlyApproversChangeApprovalStatus",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["sagemaker:UpdateModelPackage"],
                    resources=[self.package_arns],
                    conditions={"ArnNotEquals": {"aws:PrincipalArn": self.approver_role.role_arn}},
                )
            ]
        )

    def _approver_role(self, data_key: kms.IKey, artifact_bucket: s3.IBucket) -> iam.Role:
        """What a reviewer in SageMaker Studio (or the CLI) needs to review and approve."""
        role = iam.Role(
            self,
            "ApproverRole",
            role_name=self._names.role("approver"),
            assumed_by=iam.CompositePrincipal(
                iam.ServicePrincipal("sagemaker.amazonaws.com"),
                iam.AccountRootPrincipal(),
            ),
            description="Reviews model versions and their evaluation; approves or rejects them",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReviewAndApproveVersionsOfThisGroup",
                actions=[
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:UpdateModelPackage",
                    "sagemaker:ListTags",
                ],
                resources=[self.package_arns],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SeeTheGroup",
                actions=["sagemaker:DescribeModelPackageGroup", "sagemaker:ListTags"],
                resources=[self.group_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListVersions",
                actions=["sagemaker:ListModelPackages", "sagemaker:ListModelPackageGroups"],
                resources=["*"],
            )
        )
        grant_objects(role, artifact_bucket, [TRAINING_PREFIX], sid="ReadEvaluationReports")
        grant_key(role, data_key)
        acknowledge_wildcards(
            role,
            "Approvers act on every version of this one package group (versions are created "
            "by training, so their ARNs end in a number not known in advance); "
            "ListModelPackages/ListModelPackageGroups support no resource-level permission; "
            "evaluation reports lie under training/<job name>/output/.",
            "Resource::*:model-package/*/*",
            "Resource::[*]",
            f"Resource::*/{TRAINING_PREFIX}/*",
        )
        return role

    def _execution_role(
        self,
        data_key: kms.IKey,
        curated_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        capture_bucket: s3.IBucket,
        image_repositories: Sequence[str],
    ) -> iam.Role:
        """The role training jobs and the endpoint run as.

        It pulls the derived images by repository name (the repositories live in the
        TrainingPipeline stack, which depends on this one, so no reference back is possible).
        """
        role = iam.Role(
            self,
            "ExecutionRole",
            role_name=self._names.role("training"),
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker training jobs and the real-time endpoint run as this role",
        )
        grant_objects(
            role, curated_bucket, [FEATURES_PREFIX, PROTECTED_PREFIX], sid="ReadTrainingData"
        )
        grant_objects(role, artifact_bucket, [TRAINING_PREFIX], write=True, sid="ModelArtifacts")
        grant_objects(role, capture_bucket, [CAPTURE_PREFIX], read=False, write=True, sid="Capture")
        grant_key(role, data_key, encrypt=True)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptVolumesThroughSageMaker",
                actions=["kms:CreateGrant", "kms:DescribeKey"],
                resources=[reference(role, data_key.key_arn, data_key)],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PullDerivedImages",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[ecr_repository_arn(name) for name in image_repositories],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EcrToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="VpcNetworkInterfaces",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                resources=["*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SageMakerLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}"
                    ":log-group:/aws/sagemaker/*"
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SageMakerMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        acknowledge_wildcards(
            role,
            "Object keys under the features/, protected/, training/ and capture/ prefixes are "
            "written per run and not known in advance; ecr:GetAuthorizationToken, "
            "PutMetricData (pinned to /aws/sagemaker/* by condition) and the ENI actions of "
            "VPC jobs support no resource-level permission; SageMaker names its log groups "
            "/aws/sagemaker/<kind>/<job or endpoint>.",
            "Resource::[*]",
            f"Resource::*/{FEATURES_PREFIX}/*",
            f"Resource::*/{PROTECTED_PREFIX}/*",
            f"Resource::*/{TRAINING_PREFIX}/*",
            f"Resource::*/{CAPTURE_PREFIX}/*",
            "Resource::*:log-group:/aws/sagemaker/*",
        )
        return role
