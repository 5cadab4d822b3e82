"""The network stack: the private VPC every SageMaker job, endpoint and Lambda runs in."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn
from constructs import Construct

from stacks.components.network import PrivateNetwork
from stacks.config import StageConfig
from stacks.platform_stack import PlatformStack


class NetworkStack(PlatformStack):
    """Composes :class:`PrivateNetwork` with a key for its flow logs.

    Exposes ``network``.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        retain = self.retain
        key = self.service_key(
            "network-logs",
            "encrypts the VPC flow logs",
            construct_id="LogKey",
        )
        self.network = PrivateNetwork(
            self,
            "Network",
            key=key,
            log_retention_days=config.retention.log_group_days,
            retain_logs=retain,
        )
        # What a hand-launched training job (python -m training.launch) runs in.
        subnet_ids = self.network.vpc.select_subnets(
            subnet_type=self.network.subnets.subnet_type
        ).subnet_ids
        CfnOutput(self, "PrivateSubnetIds", value=Fn.join(",", subnet_ids))
        CfnOutput(
            self,
            "WorkloadSecurityGroupId",
            value=self.network.workload_security_group.security_group_id,
        )
