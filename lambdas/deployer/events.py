"""The EventBridge event the deployer reacts to: "SageMaker Model Package State Change"."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser import BaseModel, Field
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ConfigDict

APPROVED = "Approved"
REJECTED = "Rejected"
PENDING_MANUAL_APPROVAL = "PendingManualApproval"


class ModelPackageStateChange(BaseModel):
    """The event's ``detail``: which package version changed, and to what approval status."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    model_package_arn: str = Field(alias="ModelPackageArn", min_length=1)
    model_package_group_name: str = Field(alias="ModelPackageGroupName", min_length=1)
    model_approval_status: str = Field(alias="ModelApprovalStatus", min_length=1)
    model_package_version: int | None = Field(default=None, alias="ModelPackageVersion")


class ModelPackageStateChangeEvent(EventBridgeModel):
    """The whole EventBridge envelope with a typed ``detail``."""

    detail: ModelPackageStateChange
