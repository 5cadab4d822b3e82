"""The image build's network: out to the internet on HTTPS only, nothing in, every flow logged.

The derived images need two things from outside AWS's private network: the PyTorch base images
(ECR in AWS's Deep Learning Containers account) and the pinned packages from PyPI. The
platform's VPC has no route to the internet by design, so the build cannot run there. Without
a VPC, a CodeBuild build has unrestricted internet access that nothing records. In this VPC
the build runs in a private subnet whose only way out is a NAT gateway, under a security group
that allows no ingress and only TCP 443 egress, with VPC flow logs of every connection.

What a security group cannot do is name hosts: TCP 443 to any address is allowed (DNS goes to
the VPC's resolver, which security groups do not filter). CodeBuild's own host allow-list (the
managed proxy) exists only for reserved-capacity fleets, which are billed while their
instances are provisioned, build or not, and cannot run in a VPC; a domain filter in this VPC
(AWS Network Firewall) would cost far more than the builds. What the build installs is
pinned by hash in the image builds (containers/), so a host that answers cannot change it.

https://docs.aws.amazon.com/codebuild/latest/userguide/vpc-support.html
https://docs.aws.amazon.com/codebuild/latest/userguide/run-codebuild-in-managed-proxy-server.html
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.components.log_groups import vpc_flow_logs
from stacks.nag import acknowledge

#: Separate from the platform VPC (10.40.0.0/16); the two are never connected.
BUILD_VPC_CIDR = "10.41.0.0/24"
#: The NAT gateway's subnet (nothing else runs there) and the builds' subnet.
EGRESS_SUBNET_MASK = 28
BUILD_SUBNET_MASK = 26
HTTPS_PORT = 443


class BuildNetwork(Construct):
    """One AZ: a public subnet holding only the NAT gateway, a private subnet for the builds,
    an S3 gateway endpoint (ECR's image layers and the build context stay off the NAT), flow
    logs, and the builds' security group.

    Exposes ``vpc``, ``subnets``, ``security_group`` and ``flow_log_group``.
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
            ip_addresses=ec2.IpAddresses.cidr(BUILD_VPC_CIDR),
            max_azs=1,
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="egress",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=EGRESS_SUBNET_MASK,
                    map_public_ip_on_launch=False,
                ),
                ec2.SubnetConfiguration(
                    name="build",
                    subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                    cidr_mask=BUILD_SUBNET_MASK,
                ),
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
        )
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.flow_log_group = vpc_flow_logs(
            self, self.vpc, key=key, days=log_retention_days, retain=retain_logs
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "Builds",
            vpc=self.vpc,
            description="Image builds: no ingress; HTTPS out only (ECR, PyPI, S3, Logs)",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS_PORT), "HTTPS to registries, PyPI and AWS"
        )
        for subnet in self.vpc.public_subnets:
            acknowledge(
                subnet,
                "The one public subnet holds only the NAT gateway (no instance, no public IP "
                "on launch): its route to the internet gateway is how the build's private "
                "subnet reaches the base-image registry and PyPI, on HTTPS only.",
                "HIPAA.Security-VPCNoUnrestrictedRouteToIGW",
            )
