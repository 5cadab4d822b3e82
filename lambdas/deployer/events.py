"""What wakes the deployer: EventBridge events, delivered as the bodies of FIFO queue messages.

Three kinds, all of which mean "look again": a model package state change of the served group,
a state change of the endpoint, and the periodic sweep. The deployer does not act on what an event
says happened (events can arrive twice, late or out of order); it reads the registry and the
endpoint and reconciles. The event only decides whether the message concerns this endpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_lambda_powertools.utilities.parser import BaseModel, Field
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ConfigDict, ValidationError

from contracts.deployment import (
    APPROVED,
    ENDPOINT_STATE_CHANGE,
    MODEL_PACKAGE_STATE_CHANGE,
    PENDING_MANUAL_APPROVAL,
    REJECTED,
    SCHEDULED_EVENT,
)

__all__ = [
    "APPROVED",
    "PENDING_MANUAL_APPROVAL",
    "REJECTED",
    "ModelPackageStateChange",
    "Trigger",
    "parse_trigger",
]

# Kinds of trigger.
PACKAGE_CHANGE = "package_change"
ENDPOINT_CHANGE = "endpoint_change"
SWEEP = "sweep"


class ModelPackageStateChange(BaseModel):
    """A model package event's ``detail``: which version changed, and to what status."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    model_package_arn: str = Field(alias="ModelPackageArn", min_length=1)
    model_package_group_name: str = Field(alias="ModelPackageGroupName", min_length=1)
    model_approval_status: str = Field(alias="ModelApprovalStatus", min_length=1)
    model_package_version: int | None = Field(default=None, alias="ModelPackageVersion")


class EndpointStateChange(BaseModel):
    """An endpoint event's ``detail``: which endpoint, and its new status."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    endpoint_name: str = Field(alias="EndpointName", min_length=1)
    endpoint_status: str | None = Field(default=None, alias="EndpointStatus")


class ModelPackageStateChangeEvent(EventBridgeModel):
    """The whole EventBridge envelope of a model package state change."""

    detail: ModelPackageStateChange


class EndpointStateChangeEvent(EventBridgeModel):
    """The whole EventBridge envelope of an endpoint state change."""

    detail: EndpointStateChange


@dataclass(frozen=True)
class Trigger:
    """Why the deployer looks now; ``None`` fields are unknown for that kind of trigger."""

    kind: str
    event_id: str
    model_package_group: str | None = None
    model_package_arn: str | None = None
    model_package_version: int | None = None
    approval_status: str | None = None
    endpoint_name: str | None = None
    endpoint_status: str | None = None

    def concerns(self, group: str, endpoint: str) -> bool:
        """Whether this trigger is about the deployer's package group or endpoint."""
        if self.kind == PACKAGE_CHANGE:
            return self.model_package_group == group
        if self.kind == ENDPOINT_CHANGE:
            return self.endpoint_name == endpoint
        return self.kind == SWEEP


class TriggerError(ValueError):
    """A queue message that is not an event the deployer understands (dropped, counted)."""


def parse_trigger(body: str) -> Trigger:
    """Read one queue message body (an EventBridge event) into a :class:`Trigger`."""
    try:
        raw = json.loads(body)
        detail_type = raw.get("detail-type") if isinstance(raw, dict) else None
        if detail_type == MODEL_PACKAGE_STATE_CHANGE:
            package = ModelPackageStateChangeEvent.model_validate(raw)
            return Trigger(
                kind=PACKAGE_CHANGE,
                event_id=package.id,
                model_package_group=package.detail.model_package_group_name,
                model_package_arn=package.detail.model_package_arn,
                model_package_version=package.detail.model_package_version,
                approval_status=package.detail.model_approval_status,
            )
        if detail_type == ENDPOINT_STATE_CHANGE:
            endpoint = EndpointStateChangeEvent.model_validate(raw)
            return Trigger(
                kind=ENDPOINT_CHANGE,
                event_id=endpoint.id,
                endpoint_name=endpoint.detail.endpoint_name,
                endpoint_status=endpoint.detail.endpoint_status,
            )
        if detail_type == SCHEDULED_EVENT:
            return Trigger(kind=SWEEP, event_id=EventBridgeModel.model_validate(raw).id)
    except (ValueError, ValidationError, AttributeError) as error:
        raise TriggerError("the message is not a well-formed EventBridge event") from error
    raise TriggerError("the message is not an event the deployer acts on")
