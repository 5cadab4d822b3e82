"""The private network: isolated subnets, VPC endpoints instead of a NAT, flow logs.

Every endpoint carries a policy that lets only this account's principals reach only this
account's resources through it (``aws:PrincipalAccount`` and ``aws:ResourceAccount``, as in
AWS's data-perimeter guidance: https://docs.aws.amazon.com/whitepapers/latest/
building-a-data-perimeter-on-aws/perimeter-implementation.html and
https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html). A leaked
credential of another account cannot carry data out through the endpoints, and the
workloads cannot write to another account's bucket, topic or key.

No AWS-owned resource is excepted, because nothing in these subnets needs one: SageMaker
pulls the training and serving images from ECR itself (``TrainingRepositoryAccessMode`` and
``RepositoryAccessMode`` default to ``Platform``), so the ECR image-layer bucket
(``prod-<region>-starport-layer-bucket``, https://docs.aws.amazon.com/AmazonECR/latest/
userguide/vpc-endpoints.html#ecr-minimum-s3-perms) is never fetched through this VPC (it has
no ECR endpoint either); CodeBuild builds outside it; the Lambdas' code is not fetched through
it; and the Amazon Linux package buckets stay closed on purpose, so no container installs
packages at run time (https://docs.aws.amazon.com/sagemaker/latest/dg/train-vpc.html).
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.components.log_groups import vpc_flow_logs
from stacks.nag import acknowledge

VPC_CIDR = "10.40.0.0/16"
AVAILABILITY_ZONES = 2
SUBNET_CIDR_MASK = 22
HTTPS_PORT = 443

#: Interface endpoints the workloads reach AWS APIs through (no internet route exists).
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "CloudWatch": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "Sns": ec2.InterfaceVpcEndpointAwsService.SNS,
    "XRay": ec2.InterfaceVpcEndpointAwsService.XRAY,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    # The ETL job's driver runs in these subnets and its awsglue Job calls the Glue API
    # (https://docs.aws.amazon.com/glue/latest/dg/connection-JDBC-VPC.html).
    "Glue": ec2.InterfaceVpcEndpointAwsService.GLUE,
}

#: The condition keys that confine an endpoint to this account, on both sides of a request.
SAME_ACCOUNT_KEYS = ("aws:PrincipalAccount", "aws:ResourceAccount")


def same_account_statement() -> iam.PolicyStatement:
    """Any action, by a principal of this account, on a resource of this account."""
    return iam.PolicyStatement(
        sid="OnlyThisAccountsPrincipalsAndResources",
        principals=[iam.AnyPrincipal()],
        actions=["*"],
        resources=["*"],
        conditions={"StringEquals": dict.fromkeys(SAME_ACCOUNT_KEYS, Aws.ACCOUNT_ID)},
    )


class PrivateNetwork(Construct):
    """VPC with private isolated subnets in two AZs, no NAT, endpoints and flow logs.

    Exposes ``vpc``, ``subnets`` (the selection workloads go in), ``workload_security_group``
    (Lambdas, training jobs, endpoints), ``etl_security_group`` (the Glue job's network
    interfaces) and ``flow_log_group``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        log_retention_days: int,
        retain_logs: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=AVAILABILITY_ZONES,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="private",
                    subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                    cidr_mask=SUBNET_CIDR_MASK,
                )
            ],
        )
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.flow_log_group = vpc_flow_logs(
            self, self.vpc, key=key, days=log_retention_days, retain=retain_logs
        )
        self.workload_security_group = ec2.SecurityGroup(
            self,
            "Workloads",
            vpc=self.vpc,
            description="Lambdas, training jobs and endpoints: HTTPS out, and each other",
            allow_all_outbound=True,
        )
        # Multi-node torchrun (NCCL) talks between the training instances on arbitrary ports.
        self.workload_security_group.add_ingress_rule(
            self.workload_security_group, ec2.Port.all_traffic(), "Between training instances"
        )
        acknowledge(
            self.workload_security_group,
            "The only all-port ingress comes from this same security group (no CIDR): NCCL "
            "between the instances of one multi-node training job uses dynamic ports.",
            "HIPAA.Security-EC2RestrictedCommonPorts",
        )
        self.etl_security_group = ec2.SecurityGroup(
            self,
            "Etl",
            vpc=self.vpc,
            description="Network interfaces of the ETL Glue job: HTTPS out, and each other",
            allow_all_outbound=True,
        )
        # Glue's driver and executors talk to each other on dynamic TCP ports: Glue requires a
        # self-referencing inbound rule for all TCP ports on the connection's security group
        # (https://docs.aws.amazon.com/glue/latest/dg/connection-JDBC-VPC.html).
        self.etl_security_group.add_ingress_rule(
            self.etl_security_group, ec2.Port.all_tcp(), "Between the Glue job's workers"
        )
        acknowledge(
            self.etl_security_group,
            "The only ingress is all TCP from this same security group (no CIDR), which AWS "
            "Glue requires so that the Spark driver and executors of a job can reach each "
            "other on dynamic ports.",
            "HIPAA.Security-EC2RestrictedCommonPorts",
        )
        endpoint_security_group = ec2.SecurityGroup(
            self,
            "Endpoints",
            vpc=self.vpc,
            description="Interface VPC endpoints: HTTPS from inside the VPC only",
            allow_all_outbound=False,
        )
        endpoint_security_group.add_ingress_rule(
            ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(HTTPS_PORT), "HTTPS from the VPC"
        )
        gateway = self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        gateway.add_to_policy(same_account_statement())
        # DynamoDB from the isolated subnets (the worklist table: batch scoring writes it, the
        # worklist API reads it; the CDS Hooks service records each client JWT's jti in its
        # replay table): one gateway endpoint, free and on the subnets' route tables.
        dynamodb = self.vpc.add_gateway_endpoint(
            "DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB
        )
        dynamodb.add_to_policy(same_account_statement())
        for name, service in INTERFACE_ENDPOINTS.items():
            endpoint = self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=self.subnets,
                security_groups=[endpoint_security_group],
                private_dns_enabled=True,
                open=False,
            )
            endpoint.add_to_policy(same_account_statement())
