"""What the registry says: which versions a person approved, and what each one deploys.

A version counts as approved only when its status is ``Approved`` and, where the stack names an
approver role, the last change to it was made by that role (``LastModifiedBy.IamIdentity``): a
version registered as ``Approved`` by a machine, or approved by anyone else, never serves. The IAM
policies already forbid both (stacks/components/model_registry.py); this is the second lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from contracts.deployment import APPROVED

NOT_FOUND_CODES = ("ValidationException", "ResourceNotFound")


class ModelPackageError(RuntimeError):
    """The model package cannot be deployed as it is (no single container with model data)."""


def error_code(error: ClientError) -> str:
    """The AWS error code of a botocore ``ClientError``."""
    return str(error.response.get("Error", {}).get("Code", ""))


def is_not_found(error: ClientError) -> bool:
    """SageMaker answers a missing resource with ValidationException ("Could not find ...")."""
    return error_code(error) in NOT_FOUND_CODES


@dataclass(frozen=True)
class ModelPackage:
    """What the deployer needs from one model package version."""

    arn: str
    group: str
    version: int
    approval_status: str
    #: When the approval status last changed; a new approval of the same version is a new stamp.
    approval_stamp: str
    #: ARN of the identity that made the last change (an STS assumed-role ARN), if reported.
    changed_by: str | None
    containers: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> ModelPackage:
        """Build from DescribeModelPackage (any approval status)."""
        changed_at = description.get("LastModifiedTime") or description.get("CreationTime")
        identity = (description.get("LastModifiedBy") or {}).get("IamIdentity") or {}
        return cls(
            arn=description["ModelPackageArn"],
            group=description.get("ModelPackageGroupName", ""),
            version=int(description["ModelPackageVersion"]),
            approval_status=str(description.get("ModelApprovalStatus", "")),
            approval_stamp=_stamp(changed_at),
            changed_by=identity.get("Arn"),
            containers=tuple(description.get("InferenceSpecification", {}).get("Containers", [])),
        )

    @property
    def container(self) -> Mapping[str, Any]:
        """The one serving container; a package without exactly one cannot be deployed."""
        if len(self.containers) != 1:
            raise ModelPackageError("the model package must have exactly one container")
        container = self.containers[0]
        if not container.get("Image") or not container.get("ModelDataUrl"):
            raise ModelPackageError("the model package container needs an image and model data")
        return container

    @property
    def image(self) -> str:
        return str(self.container["Image"])

    @property
    def model_data_url(self) -> str:
        return str(self.container["ModelDataUrl"])

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.container.get("Environment", {}))


def _stamp(value: Any) -> str:
    if isinstance(value, datetime):
        return str(int(value.timestamp()))
    return str(value or "")


def role_name_of(role_arn: str) -> str:
    """``arn:aws:iam::1:role/path/Name`` -> ``Name`` (assumed-role ARNs drop the path)."""
    return role_arn.rsplit("/", 1)[-1]


def made_by_role(identity_arn: str | None, role_arn: str) -> bool:
    """Whether ``identity_arn`` is ``role_arn`` itself or a session of it."""
    if not identity_arn:
        return False
    if identity_arn == role_arn:
        return True
    # arn:<partition>:sts::<account>:assumed-role/<role name>/<session name>
    parts = identity_arn.split(":", 5)
    role_parts = role_arn.split(":", 5)
    if len(parts) != 6 or len(role_parts) != 6 or parts[2] != "sts":
        return False
    kind, _, rest = parts[5].partition("/")
    name = rest.split("/", 1)[0]
    return (
        kind == "assumed-role"
        and parts[1] == role_parts[1]
        and parts[4] == role_parts[4]
        and name == role_name_of(role_arn)
    )


def approved_by_person(package: ModelPackage, approver_role_arn: str) -> bool:
    """``Approved``, and (when an approver role is configured) approved by that role."""
    if package.approval_status != APPROVED:
        return False
    return not approver_role_arn or made_by_role(package.changed_by, approver_role_arn)


def describe_package(sagemaker: Any, arn: str) -> ModelPackage | None:
    """The package version, or ``None`` if it no longer exists."""
    try:
        return ModelPackage.from_description(sagemaker.describe_model_package(ModelPackageName=arn))
    except ClientError as error:
        if is_not_found(error):
            return None
        raise


def approved_versions(sagemaker: Any, group: str) -> list[str]:
    """ARNs of the group's versions whose status is ``Approved``, highest version first."""
    paginator = sagemaker.get_paginator("list_model_packages")
    found: list[tuple[int, str]] = []
    for page in paginator.paginate(
        ModelPackageGroupName=group, ModelApprovalStatus=APPROVED, ModelPackageType="Versioned"
    ):
        for summary in page.get("ModelPackageSummaryList", []):
            found.append((int(summary.get("ModelPackageVersion", 0)), summary["ModelPackageArn"]))
    return [arn for _, arn in sorted(found, reverse=True)]
