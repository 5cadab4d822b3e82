"""The registrar's configuration, read once from its environment into a frozen dataclass."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from lambdas.environment import EnvironmentNames, SettingsError, number

MODEL_PACKAGE_GROUP_NAME_ENV = "MODEL_PACKAGE_GROUP_NAME"
INFERENCE_IMAGE_URI_ENV = "INFERENCE_IMAGE_URI"
ENDPOINT_INSTANCE_TYPE_ENV = "ENDPOINT_INSTANCE_TYPE"
MIN_TEST_AUROC_ENV = "MIN_TEST_AUROC"
KMS_KEY_ARN_ENV = "KMS_KEY_ARN"
#: Lineage of a version: the ETL manifest it was trained from, the image and code that trained it.
MANIFEST_S3_URI_ENV = "MANIFEST_S3_URI"
TRAINING_IMAGE_TAG_ENV = "TRAINING_IMAGE_TAG"
SOURCE_REPOSITORY_ENV = "SOURCE_REPOSITORY"
SOURCE_COMMIT_ENV = "SOURCE_COMMIT"
#: What the stack sets (stacks/components/training_pipeline.py).
ENVIRONMENT = EnvironmentNames.of(
    required=(
        MODEL_PACKAGE_GROUP_NAME_ENV,
        INFERENCE_IMAGE_URI_ENV,
        ENDPOINT_INSTANCE_TYPE_ENV,
        MIN_TEST_AUROC_ENV,
        KMS_KEY_ARN_ENV,
        MANIFEST_S3_URI_ENV,
        TRAINING_IMAGE_TAG_ENV,
        SOURCE_REPOSITORY_ENV,
        SOURCE_COMMIT_ENV,
    )
)


@dataclass(frozen=True)
class RegistrarSettings:
    """Where versions are registered, what serves them, and the quality bar."""

    model_package_group_name: str
    inference_image_uri: str
    endpoint_instance_type: str
    min_test_auroc: float
    kms_key_arn: str
    manifest_s3_uri: str = ""
    training_image_tag: str = ""
    #: Optional: a version registered without them says so on its card.
    source_repository: str = ""
    source_commit: str = ""

    def __post_init__(self) -> None:
        required = {
            MODEL_PACKAGE_GROUP_NAME_ENV: self.model_package_group_name,
            INFERENCE_IMAGE_URI_ENV: self.inference_image_uri,
            ENDPOINT_INSTANCE_TYPE_ENV: self.endpoint_instance_type,
            KMS_KEY_ARN_ENV: self.kms_key_arn,
            MANIFEST_S3_URI_ENV: self.manifest_s3_uri,
            TRAINING_IMAGE_TAG_ENV: self.training_image_tag,
        }
        for name, value in required.items():
            if not value:
                raise SettingsError(f"{name} is not set")
        if math.isnan(self.min_test_auroc):
            raise SettingsError(f"{MIN_TEST_AUROC_ENV} is not set")
        if not 0.5 <= self.min_test_auroc <= 1.0:
            raise SettingsError(f"{MIN_TEST_AUROC_ENV} must lie in [0.5, 1]")
        if not self.manifest_s3_uri.startswith("s3://"):
            raise SettingsError(f"{MANIFEST_S3_URI_ENV} must be an s3:// URI")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RegistrarSettings:
        """Read the settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        min_auroc = number(env, MIN_TEST_AUROC_ENV, float("nan"))
        return cls(
            model_package_group_name=env.get(MODEL_PACKAGE_GROUP_NAME_ENV, ""),
            inference_image_uri=env.get(INFERENCE_IMAGE_URI_ENV, ""),
            endpoint_instance_type=env.get(ENDPOINT_INSTANCE_TYPE_ENV, ""),
            min_test_auroc=min_auroc,
            kms_key_arn=env.get(KMS_KEY_ARN_ENV, ""),
            manifest_s3_uri=env.get(MANIFEST_S3_URI_ENV, ""),
            training_image_tag=env.get(TRAINING_IMAGE_TAG_ENV, ""),
            source_repository=env.get(SOURCE_REPOSITORY_ENV, ""),
            source_commit=env.get(SOURCE_COMMIT_ENV, ""),
        )
