"""The network stack: the private VPC every SageMaker job, endpoint and Lambda runs in."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from constructs import Construct

from stacks.components.network import PrivateNetwork
from stacks.components.service_key import ServiceKey
from stacks.config import StageConfig
from stacks.wildcards import acknowledge_inline_policies


class NetworkStack(Stack):
    """Composes :class:`PrivateNetwork` with a key for its flow logs.

    Exposes ``network``.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        acknowledge_inline_policies(self)
        retain = config.retention.retain_data_on_delete
        key = ServiceKey(
            self,
            "LogKey",
            alias=f"alias/{config.prefix}-network-logs",
            description=f"{config.prefix}: encrypts the VPC flow logs",
            retain=retain,
        ).key
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
