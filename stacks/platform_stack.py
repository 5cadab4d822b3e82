"""The opening every stage stack shares: compliance wiring, names, retention, its own key.

Each stack of a stage (``app.add_stacks``) derives from :class:`PlatformStack`, which
acknowledges CDK's inline role policies for cdk-nag (``stacks.wildcards``; the packs
themselves are attached to the whole app by ``stacks.nag.apply_compliance_checks``), derives
the stage's resource names, reads whether data is retained on delete, and creates the
stack's own KMS key for its operational data on request (:meth:`PlatformStack.service_key`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.components.service_key import ServiceKey, TopicPublisher
from stacks.config import StageConfig
from stacks.naming import ResourceNames
from stacks.wildcards import acknowledge_inline_policies


class PlatformStack(Stack):
    """A stack of one stage; exposes ``config``, ``names`` and ``retain``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        acknowledge_inline_policies(self)
        self.config = config
        self.names = ResourceNames(config.prefix)
        self.retain = config.retention.retain_data_on_delete

    def service_key(
        self,
        alias_suffix: str,
        purpose: str,
        *,
        construct_id: str = "OperationsKey",
        publishers: Sequence[TopicPublisher] = (),
    ) -> kms.IKey:
        """The stack's own key: ``alias/<prefix>-<alias_suffix>``, ``<prefix>: <purpose>``."""
        prefix = self.config.prefix
        return ServiceKey(
            self,
            construct_id,
            alias=f"alias/{prefix}-{alias_suffix}",
            description=f"{prefix}: {purpose}",
            retain=self.retain,
            publishers=publishers,
        ).key
