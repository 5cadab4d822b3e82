"""One of the platform's Lambda functions, deployed the same way every time.

Python 3.12 on ARM64, code staged by ``stacks.packaging.stage_lambda`` (the function's folder
plus ``contracts``), the AWS-managed Powertools layer of exactly the version the project pins
(resolved at deploy time from the public SSM parameter Powertools publishes per release),
inside the VPC's private subnets, X-Ray
active, environment encrypted with the stack's key, its own encrypted log group, and a role
that holds only what is granted to it here and by the stack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from lambdas.environment import LOG_LEVEL_ENV, RUNTIME_ENVIRONMENT, SERVICE_NAME_ENV
from stacks.components.log_groups import encrypted_log_group
from stacks.nag import acknowledge
from stacks.packaging import REPO_ROOT, stage_lambda

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
#: Powertools for AWS Lambda (Python) publishes, per release, the layer ARN of each runtime and
#: architecture as the public SSM parameter
#: ``/aws/service/powertools/python/<arch>/<python3.x>/<semantic version>`` (see
#: .github/workflows/update_ssm.yml of aws-powertools/powertools-lambda-python). Resolving
#: the pinned version's parameter at deploy time gives the layer of exactly that release.
POWERTOOLS_PACKAGE = "aws-lambda-powertools"
POWERTOOLS_PARAMETER_ROOT = "/aws/service/powertools/python"
PROJECT_REQUIREMENTS = REPO_ROOT / "requirements.txt"
#: ``name[extras] <specifier>  # comment`` -> name, specifier.
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*(?:#.*)?$")
_EXACT_PIN = re.compile(r"==\s*([0-9][0-9A-Za-z.+!-]*)")
#: How long a failed asynchronous event is kept for inspection in the dead-letter queue.
DLQ_RETENTION = Duration.days(14)

RUNTIME_REASON = (
    "Pinned to Python 3.12 on purpose: the AWS-managed Powertools v3 layer the functions use "
    "is published per runtime and the code is tested on 3.12-compatible dependencies."
)
ENI_REASON = (
    "Lambda creates, describes and deletes a VPC function's network interfaces with the "
    "function's role, in the subnets of its VpcConfig, before their ids exist; "
    "DescribeNetworkInterfaces has no resource type; the statement is the one of AWS's "
    "AWSLambdaVPCAccessExecutionRole, which Lambda's documentation prescribes."
)
XRAY_REASON = (
    "xray:PutTraceSegments and PutTelemetryRecords support no resource-level permissions; "
    "active tracing requires them on '*'."
)


def pinned_version(package: str, requirements: Path = PROJECT_REQUIREMENTS) -> str:
    """The exact ``==`` pin of ``package`` in a requirements file; refuses a loose one."""
    wanted = _canonical(package)
    for line in requirements.read_text().splitlines():
        match = _REQUIREMENT.match(line)
        if match is None or _canonical(match.group(1)) != wanted:
            continue
        pinned = _EXACT_PIN.fullmatch(match.group(2))
        if pinned is None:
            raise ValueError(f"{package} must be pinned with == in {requirements.name}")
        return pinned.group(1)
    raise ValueError(f"{package} is not in {requirements.name}")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def powertools_layer_parameter(
    version: str,
    runtime: lambda_.Runtime = RUNTIME,
    architecture: lambda_.Architecture = ARCHITECTURE,
) -> str:
    """``/aws/service/powertools/python/arm64/python3.12/<version>``."""
    return f"{POWERTOOLS_PARAMETER_ROOT}/{architecture.name}/{runtime.name}/{version}"


class PlatformFunction(Construct):
    """A Lambda from ``lambdas/<folder>``; handler ``lambdas.<folder>.app.lambda_handler``.

    Exposes ``function``, ``role``, ``log_group`` and ``dead_letter_queue`` (``None`` unless
    ``asynchronous``: EventBridge and schedules invoke asynchronously, and an event that still
    fails after Lambda's retries must be kept, not dropped).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        folder: str,
        function_name: str,
        description: str,
        environment: Mapping[str, str],
        vpc: ec2.IVpc | None,
        subnets: ec2.SubnetSelection | None,
        security_group: ec2.ISecurityGroup | None,
        key: kms.IKey,
        log_retention_days: int,
        retain_logs: bool,
        timeout: Duration,
        memory_mb: int = 512,
        reserved_concurrency: int | None = None,
        asynchronous: bool = False,
        outside_vpc_reason: str | None = None,
        extra_layers: Sequence[lambda_.ILayerVersion] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        if (vpc is None) != (outside_vpc_reason is not None):
            raise ValueError("a function runs in the VPC, or outside it for a written reason")
        self.log_group = encrypted_log_group(
            self,
            "Logs",
            key=key,
            days=log_retention_days,
            retain=retain_logs,
            log_group_name=f"/aws/lambda/{function_name}",
        )
        self.role = iam.Role(
            self,
            "Role",
            # Named like the function (stacks.naming.ResourceNames.role): resource policies
            # of the data lake name it before it exists.
            role_name=function_name,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{function_name}: runtime permissions of the function",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        if vpc is not None:
            self._allow_network_interfaces()
        self.dead_letter_queue: sqs.Queue | None = None
        if asynchronous:
            self.dead_letter_queue = sqs.Queue(
                self,
                "DeadLetters",
                encryption=sqs.QueueEncryption.KMS,
                encryption_master_key=key,
                enforce_ssl=True,
                retention_period=DLQ_RETENTION,
            )
            acknowledge(
                self.dead_letter_queue,
                f"This queue is the dead-letter queue of {function_name}; a dead-letter queue "
                "of a dead-letter queue would only move the same failed events again.",
                "AwsSolutions-SQS3",
            )
        layer_arn = ssm.StringParameter.value_for_string_parameter(
            self, powertools_layer_parameter(pinned_version(POWERTOOLS_PACKAGE))
        )
        layer = lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", layer_arn)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"lambdas.{folder}.app.lambda_handler",
            code=lambda_.Code.from_asset(str(stage_lambda(folder))),
            layers=[layer, *extra_layers],
            role=self.role,
            environment={
                SERVICE_NAME_ENV: function_name,
                LOG_LEVEL_ENV: "INFO",
                **RUNTIME_ENVIRONMENT,
                **environment,
            },
            environment_encryption=key,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=None if security_group is None else [security_group],
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            timeout=timeout,
            memory_size=memory_mb,
            reserved_concurrent_executions=reserved_concurrency,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=2 if asynchronous else None,
        )
        key.grant_decrypt(self.role)
        acknowledge(self.function, RUNTIME_REASON, "AwsSolutions-L1")
        acknowledge(
            self.role,
            f"{ENI_REASON} {XRAY_REASON}" if vpc is not None else XRAY_REASON,
            "AwsSolutions-IAM5[Resource::*]",
        )
        if outside_vpc_reason is not None:
            acknowledge(self.function, outside_vpc_reason, "HIPAA.Security-LambdaInsideVPC")
        if reserved_concurrency is None:
            acknowledge(
                self.function,
                "Concurrency is bounded upstream of this function (API Gateway throttling), "
                "so a reservation would only take capacity from the account pool.",
                "HIPAA.Security-LambdaConcurrency",
            )
        if not asynchronous:
            acknowledge(
                self.function,
                "Invoked synchronously only (API Gateway or Step Functions): the caller "
                "receives the error and retries or reports it; Lambda never queues an event.",
                "HIPAA.Security-LambdaDLQ",
            )

    def _allow_network_interfaces(self) -> None:
        """The ENI permissions a VPC function's role needs (AWSLambdaVPCAccessExecutionRole)."""
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="VpcNetworkInterfaces",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=["*"],
            )
        )
