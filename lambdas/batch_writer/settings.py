"""The batch writer's configuration, read once from its environment into a frozen dataclass."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from lambdas.environment import EnvironmentNames, SettingsError, number

CURATED_BUCKET_ENV = "CURATED_BUCKET"
SOURCE_PREFIX_ENV = "SOURCE_PREFIX"
OUTPUT_PREFIX_ENV = "OUTPUT_PREFIX"
SCORES_PREFIX_ENV = "SCORES_PREFIX"
TABLE_NAME_ENV = "WORKLIST_TABLE"
JOB_PREFIX_ENV = "JOB_NAME_PREFIX"
BUDGET_SHARE_ENV = "BUDGET_SHARE"
KMS_KEY_ENV = "KMS_KEY_ARN"
#: What the stack sets (stacks/components/batch_scoring.py).
ENVIRONMENT = EnvironmentNames.of(
    required=(
        CURATED_BUCKET_ENV,
        SOURCE_PREFIX_ENV,
        OUTPUT_PREFIX_ENV,
        SCORES_PREFIX_ENV,
        TABLE_NAME_ENV,
        JOB_PREFIX_ENV,
        BUDGET_SHARE_ENV,
        KMS_KEY_ENV,
    )
)

#: Longest SageMaker transform-job name.
MAX_JOB_NAME = 63
#: ``-YYYYMMDD-<12 hex>`` appended to the job prefix.
JOB_SUFFIX_CHARS = 22


@dataclass(frozen=True)
class WriterSettings:
    """Where the day's discharges, the transform output and the scores live; the store."""

    curated_bucket: str
    source_prefix: str
    output_prefix: str
    scores_prefix: str
    table_name: str
    job_name_prefix: str
    budget_share: float
    kms_key_arn: str = ""

    def __post_init__(self) -> None:
        required = {
            CURATED_BUCKET_ENV: self.curated_bucket,
            SOURCE_PREFIX_ENV: self.source_prefix,
            OUTPUT_PREFIX_ENV: self.output_prefix,
            SCORES_PREFIX_ENV: self.scores_prefix,
            TABLE_NAME_ENV: self.table_name,
            JOB_PREFIX_ENV: self.job_name_prefix,
        }
        for name, value in required.items():
            if not value:
                raise SettingsError(f"{name} is not set")
        if len(self.job_name_prefix) + JOB_SUFFIX_CHARS > MAX_JOB_NAME:
            raise SettingsError(f"{JOB_PREFIX_ENV} is too long for a transform-job name")
        if not 0.0 < self.budget_share <= 1.0:
            raise SettingsError(f"{BUDGET_SHARE_ENV} must lie in (0, 1]")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WriterSettings:
        values = os.environ if env is None else env
        return cls(
            curated_bucket=values.get(CURATED_BUCKET_ENV, ""),
            source_prefix=_folder(values.get(SOURCE_PREFIX_ENV, "")),
            output_prefix=_folder(values.get(OUTPUT_PREFIX_ENV, "")),
            scores_prefix=_folder(values.get(SCORES_PREFIX_ENV, "")),
            table_name=values.get(TABLE_NAME_ENV, ""),
            job_name_prefix=values.get(JOB_PREFIX_ENV, ""),
            budget_share=number(values, BUDGET_SHARE_ENV, 0.1),
            kms_key_arn=values.get(KMS_KEY_ENV, ""),
        )


def _folder(prefix: str) -> str:
    """A key prefix ending in exactly one ``/`` (empty stays empty)."""
    return f"{prefix.strip('/')}/" if prefix.strip("/") else ""
