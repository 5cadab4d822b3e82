"""The model registry: the package group, who may approve, and the roles SageMaker runs as.

Who may set a version's approval status is decided here, twice over: the group's resource policy
denies ``CreateModelPackage`` with any status but ``PendingManualApproval`` (to every principal),
and ``UpdateModelPackage`` to every principal but the approver role; the deployer also serves
only versions whose last change was made by that role (lambdas/deployer/registry.py).

Training jobs and the endpoint run as two roles: training reads features and protected
attributes and writes model artifacts; the endpoint reads model artifacts, writes data capture,
and reads the rollback alarms SageMaker watches during a blue/green update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def alarm_arn(name: str) -> str:
    """ARN of a CloudWatch alarm of this account and region, by name."""
    return f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:{name}"


def sagemaker_arn(resource: str) -> str:
    """ARN of a SageMaker resource (``model-package/<group>/*``) in this account and region."""
    return f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"


@dataclass(frozen=True)
class ExecutionRoleNeeds:
    """What one SageMaker execution role runs and reaches (names, not constructs: the
    repositories and alarms live in stacks that depend on this one)."""

    role: str
    image_repository: str
    log_group_pattern: str


#: "SageMaker AI names its log groups /aws/sagemaker/TrainingJobs and /aws/sagemaker/Endpoints/
#: <endpoint>" (Log Amazon SageMaker AI Events with Amazon CloudWatch).
TRAINING_LOGS = "/aws/sagemaker/TrainingJobs*"
ENDPOINT_LOGS = "/aws/sagemaker/Endpoints/*"
PENDING_MANUAL_APPROVAL = "PendingManualApproval"


class ModelRegistry(Construct):
    """Model package group (retained), its policy, the approver and the two execution roles.

    Exposes ``group_name``, ``group_arn``, ``package_arns`` (ARN pattern of its versions),
    ``approver_role``, ``training_role`` and ``serving_role``.
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
        training_image_repository: str,
        serving_image_repository: str,
        rollback_alarm_names: Sequence[str],
        reader_accounts: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self._reader_accounts = tuple(reader_accounts)
        if not rollback_alarm_names:
            raise ValueError("the serving role must be able to read the rollback alarms")
        self.group_name = group_name
        self.group_arn = sagemaker_arn(f"model-package-group/{group_name}")
        self.package_arns = sagemaker_arn(f"model-package/{group_name}/*")
        self._names = names
        self.approver_role = self._approver_role(data_key, artifact_bucket)
        self.training_role = self._execution_role(
            "TrainingRole",
            "SageMaker training jobs run as this role: features in, model artifacts out",
            data_key,
            ExecutionRoleNeeds("training", training_image_repository, TRAINING_LOGS),
        )
        grant_objects(
            self.training_role,
            curated_bucket,
            [FEATURES_PREFIX, PROTECTED_PREFIX],
            sid="ReadTrainingData",
        )
        grant_objects(
            self.training_role, artifact_bucket, [TRAINING_PREFIX], write=True, sid="ModelArtifacts"
        )
        self.serving_role = self._execution_role(
            "ServingRole",
            "The real-time endpoint runs as this role: model artifacts in, data capture out",
            data_key,
            ExecutionRoleNeeds("serving", serving_image_repository, ENDPOINT_LOGS),
        )
        grant_objects(self.serving_role, artifact_bucket, [TRAINING_PREFIX], sid="ModelArchives")
        grant_objects(
            self.serving_role,
            capture_bucket,
            [CAPTURE_PREFIX],
            read=False,
            write=True,
            sid="Capture",
        )
        # "Ensure that your IAM execution role has permission to perform the
        # cloudwatch:DescribeAlarms action on the auto-rollback alarms you specify."
        # (SageMaker AI, Auto-Rollback Configuration and Monitoring)
        self.serving_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadRollbackAlarms",
                actions=["cloudwatch:DescribeAlarms"],
                resources=[alarm_arn(name) for name in rollback_alarm_names],
            )
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
        """Versions are created pending; only the approver role changes their status.

        ``sagemaker:ModelApprovalStatus`` is a condition key of CreateModelPackage and
        UpdateModelPackage (Service Authorization Reference, Amazon SageMaker AI). The create
        deny uses ``StringNotEquals`` without ``IfExists``: a request that omits the status is
        refused too, so a version's status is always stated, and stated as pending.
        """
        return iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="OnlyApproversChangeApprovalStatus",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["sagemaker:UpdateModelPackage"],
                    resources=[self.package_arns],
                    conditions={"ArnNotEquals": {"aws:PrincipalArn": self.approver_role.role_arn}},
                ),
                iam.PolicyStatement(
                    sid="VersionsAreCreatedPendingManualApproval",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["sagemaker:CreateModelPackage"],
                    # The AWS example of a model package group policy grants CreateModelPackage
                    # on model-package/<group>/*; the group's own ARN is named too, so the deny
                    # holds whichever of the two the request is evaluated against.
                    resources=[self.group_arn, self.package_arns],
                    conditions={
                        "StringNotEquals": {
                            "sagemaker:ModelApprovalStatus": PENDING_MANUAL_APPROVAL
                        }
                    },
                ),
                *self._reader_statements(),
            ]
        )

    def _reader_statements(self) -> list[iam.PolicyStatement]:
        """Read-only sharing with other accounts (the prod account, when the pipeline runs).

        The actions and resources of AWS's example group policy for cross-account
        discoverability (PutModelPackageGroupPolicy):
        https://docs.aws.amazon.com/sagemaker/latest/dg/model-registry-ram-discover.html
        Nothing here lets a reader approve: prod registers its own copy, pending, and only
        prod's approver approves it; the denies above hold for every principal.
        """
        if not self._reader_accounts:
            return []
        return [
            iam.PolicyStatement(
                sid="ReaderAccountsDescribeVersions",
                principals=[iam.AccountPrincipal(a) for a in self._reader_accounts],
                actions=[
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:ListModelPackages",
                ],
                resources=[self.group_arn, self.package_arns],
            )
        ]

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
        role.add_to_policy(list_versions_statement())
        role.add_to_policy(
            iam.PolicyStatement(
                sid="FindTheGroup",
                actions=["sagemaker:ListModelPackageGroups"],
                resources=["*"],
            )
        )
        grant_objects(role, artifact_bucket, [TRAINING_PREFIX], sid="ReadEvaluationReports")
        grant_key(role, data_key)
        acknowledge_wildcards(
            role,
            "Approvers act on every version of this one package group (versions are created "
            "by training, so their ARNs end in a number not known in advance); "
            "ListModelPackages is scoped to this account's and region's model packages (see "
            "list_versions_statement); ListModelPackageGroups lists no resource type in the "
            "Service Authorization Reference, so it takes '*'; evaluation reports lie under "
            "training/<job name>/output/.",
            "Resource::*:model-package/*/*",
            "Resource::*:model-package/*",
            "Resource::[*]",
            f"Resource::*/{TRAINING_PREFIX}/*",
        )
        return role

    def _execution_role(
        self, construct_id: str, description: str, data_key: kms.IKey, needs: ExecutionRoleNeeds
    ) -> iam.Role:
        """A SageMaker execution role: its image, its logs, the data key, VPC interfaces."""
        role = iam.Role(
            self,
            construct_id,
            role_name=self._names.role(needs.role),
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=description,
        )
        grant_key(role, data_key, encrypt=True)
        # CreateGrant is what SageMaker uses to encrypt volumes with the key; DescribeKey has no
        # grant, so kms:GrantIsForAWSResource can never be true for it (AWS KMS condition keys):
        # the two are separate statements.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptVolumesThroughSageMaker",
                actions=["kms:CreateGrant"],
                resources=[reference(role, data_key.key_arn, data_key)],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeTheDataKey",
                actions=["kms:DescribeKey"],
                resources=[reference(role, data_key.key_arn, data_key)],
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
                resources=[ecr_repository_arn(needs.image_repository)],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EcrToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            )
        )
        # The interface actions take network-interface, subnet and security-group ARNs (Service
        # Authorization Reference, Amazon EC2), but SageMaker creates the interfaces at run time
        # in the subnets and security group the job or model names: they are scoped to this
        # account's and region's. The Describe actions have no resource type.
        ec2_arn = f"arn:{Aws.PARTITION}:ec2:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="VpcNetworkInterfaces",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                ],
                resources=[
                    f"{ec2_arn}:network-interface/*",
                    f"{ec2_arn}:subnet/*",
                    f"{ec2_arn}:security-group/*",
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeVpcNetwork",
                actions=[
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
                    f":log-group:{needs.log_group_pattern}"
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
            "written per run and not known in advance; ecr:GetAuthorizationToken and the EC2 "
            "Describe actions have no resource type; PutMetricData's only resource type "
            "(dataset) does not name metrics, so it is pinned to /aws/sagemaker/* by the "
            "cloudwatch:namespace condition; SageMaker creates the network interfaces of VPC "
            "jobs and endpoints at run time, in the subnets and security group it is given "
            "(scoped to this account's and region's); SageMaker names its log groups "
            "/aws/sagemaker/TrainingJobs and /aws/sagemaker/Endpoints/<endpoint>.",
            "Resource::[*]",
            "Resource::*:network-interface/*",
            "Resource::*:subnet/*",
            "Resource::*:security-group/*",
            f"Resource::*/{FEATURES_PREFIX}/*",
            f"Resource::*/{PROTECTED_PREFIX}/*",
            f"Resource::*/{TRAINING_PREFIX}/*",
            f"Resource::*/{CAPTURE_PREFIX}/*",
            "Resource::*:log-group:/aws/sagemaker/*",
        )
        return role


def list_versions_statement(sid: str = "ListVersions") -> iam.PolicyStatement:
    """ListModelPackages, scoped to this account's and region's model packages.

    The Service Authorization Reference lists ``model-package`` as ListModelPackages' resource
    type (not required). Which ARN it is evaluated against for a group filter is not documented,
    so the statement names every model package of this account and region rather than one
    group's: a narrower ARN that SageMaker does not evaluate would deny the deployer its list.
    The list reveals names and statuses; DescribeModelPackage stays scoped to one group.
    """
    return iam.PolicyStatement(
        sid=sid,
        actions=["sagemaker:ListModelPackages"],
        resources=[sagemaker_arn("model-package/*")],
    )
