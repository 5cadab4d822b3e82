"""Stage configuration: ``cdk.json`` context read once into frozen, validated dataclasses.

``app.py`` calls :func:`load_stage_config` and hands the result to the stacks as keyword
arguments; nothing below it reads context or the environment. A missing or malformed key
fails synthesis at once with the key's full path in the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

SAGEMAKER_INSTANCE_PATTERN = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SCHEDULE_PATTERN = re.compile(r"^(cron\(.+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$")
STAGE_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,15}$")
API_AUTH_MODES = ("iam", "api_key")
#: Who provides API Gateway's account-level CloudWatch Logs role (one per account and region):
#: "create" makes it in the Api stack, "existing" relies on one already set in the account.
API_CLOUDWATCH_ROLE_MODES = ("create", "existing")
#: S3 Object Lock retention modes of the audit trail's bucket.
OBJECT_LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
#: ``arn:<partition>:cloudtrail:<region>:<account>:trail/<name>`` (CloudTrail's trail names).
TRAIL_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:\d{12}:trail/[A-Za-z0-9][A-Za-z0-9._-]{2,127}$"
)
#: Sources the ETL job reads (glue_jobs.ehr_features.SOURCE_CHOICES).
ETL_SOURCES = ("mimic3", "uci_diabetes", "mimic4", "fhir")


class ConfigError(ValueError):
    """A key of the ``cdk.json`` context is missing or invalid."""


class _Section:
    """Typed access to one mapping of the context that reports full key paths."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path} must be an object, got {type(data).__name__}")
        self._data = data
        self._path = path

    def _raw(self, key: str) -> Any:
        if key not in self._data:
            raise ConfigError(f"{self._path}.{key} is missing")
        return self._data[key]

    def section(self, key: str) -> _Section:
        return _Section(self._raw(key), f"{self._path}.{key}")

    def _typed(self, key: str, kind: type[T]) -> T:
        value = self._raw(key)
        # bool is an int subclass: never accept it where a number is expected.
        if isinstance(value, bool) and kind is not bool:
            raise ConfigError(f"{self._path}.{key} must be {kind.__name__}, got bool")
        if kind is float and isinstance(value, int):
            return float(value)  # type: ignore[return-value]
        if not isinstance(value, kind):
            raise ConfigError(
                f"{self._path}.{key} must be {kind.__name__}, got {type(value).__name__}"
            )
        return value

    def string(self, key: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self._typed(key, str)
        if pattern is not None and not pattern.match(value):
            raise ConfigError(f"{self._path}.{key}={value!r} does not match {pattern.pattern}")
        return value

    def integer(self, key: str, minimum: int, maximum: int) -> int:
        value = self._typed(key, int)
        if not minimum <= value <= maximum:
            raise ConfigError(f"{self._path}.{key}={value} is outside [{minimum}, {maximum}]")
        return value

    def number(self, key: str, minimum: float, maximum: float) -> float:
        value = self._typed(key, float)
        if not minimum <= value <= maximum:
            raise ConfigError(f"{self._path}.{key}={value} is outside [{minimum}, {maximum}]")
        return value

    def optional_string(self, key: str, pattern: re.Pattern[str]) -> str | None:
        """A string matching ``pattern``, or ``None`` for ``null``.

        An absent key also reads as ``null``: the CDK CLI drops ``null`` values from the
        ``cdk.json`` context before the app sees it.
        """
        if self._data.get(key) is None:
            return None
        return self.string(key, pattern)

    def boolean(self, key: str) -> bool:
        return self._typed(key, bool)

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self._typed(key, str)
        if value not in choices:
            raise ConfigError(f"{self._path}.{key}={value!r} must be one of {choices}")
        return value


@dataclass(frozen=True)
class TrainingConfig:
    """The SageMaker training job's compute."""

    instance_type: str
    instance_count: int
    use_spot: bool
    max_runtime_hours: int
    #: Quality gate: a model registers only with a test AUROC at least this (and above the
    #: logistic baseline's).
    min_test_auroc: float


@dataclass(frozen=True)
class EtlConfig:
    """The Glue job: which source it reads and its compute."""

    source: str
    worker_count: int
    timeout_minutes: int


@dataclass(frozen=True)
class EndpointConfig:
    """The real-time endpoint's compute and data capture."""

    instance_type: str
    instance_count: int
    data_capture_sampling_percent: int


@dataclass(frozen=True)
class AlarmThresholds:
    """Thresholds of the CloudWatch alarms (PSI is unitless; counts are per 5 minutes)."""

    feature_psi: float
    prediction_psi: float
    latency_p95_ms: int
    endpoint_5xx_per_5min: int
    endpoint_4xx_per_5min: int
    lambda_errors_per_5min: int


@dataclass(frozen=True)
class RetentionConfig:
    """How long each kind of data is kept, in days, and whether data outlives the stack."""

    raw_days: int
    capture_days: int
    noncurrent_version_days: int
    access_log_days: int
    log_group_days: int
    #: CloudTrail log files expire after this many days (never before their Object Lock ends).
    audit_log_days: int
    retain_data_on_delete: bool


@dataclass(frozen=True)
class AuditConfig:
    """The audit trail: the stage's own CloudTrail trail, or the organisation's existing one."""

    #: ``None``: the DataLake stack creates a trail; otherwise the ARN of the trail that
    #: already records this account (it must carry the data event selectors of
    #: docs/architecture.md, "Audit trail").
    existing_trail_arn: str | None
    #: S3 Object Lock default retention of the trail's log files: mode and days.
    object_lock_mode: str
    object_lock_days: int


@dataclass(frozen=True)
class ApiConfig:
    """The prediction API's authentication, throttling, WAF and account logging role."""

    auth: str
    throttle_rate_per_second: int
    throttle_burst: int
    waf_enabled: bool
    #: One of :data:`API_CLOUDWATCH_ROLE_MODES` (docs/deploy.md, "Account prerequisites").
    cloudwatch_role: str

    @property
    def creates_cloudwatch_role(self) -> bool:
        """Whether the Api stack sets the account's API Gateway CloudWatch Logs role."""
        return self.cloudwatch_role == "create"


@dataclass(frozen=True)
class ImagesConfig:
    """The derived images: how many tags ECR keeps and how long a build may take."""

    keep_last: int
    build_timeout_minutes: int


@dataclass(frozen=True)
class StageConfig:
    """Everything a stage configures; built once by :func:`load_stage_config`."""

    project: str
    stage: str
    training: TrainingConfig
    etl: EtlConfig
    endpoint: EndpointConfig
    alarms: AlarmThresholds
    retraining_schedule: str
    notification_email: str
    retention: RetentionConfig
    audit: AuditConfig
    api: ApiConfig
    images: ImagesConfig

    @property
    def prefix(self) -> str:
        """Resource name prefix, e.g. ``readmission-dev``."""
        return f"{self.project}-{self.stage}"


def _training(section: _Section) -> TrainingConfig:
    return TrainingConfig(
        instance_type=section.string("instance_type", SAGEMAKER_INSTANCE_PATTERN),
        instance_count=section.integer("instance_count", 1, 64),
        use_spot=section.boolean("use_spot"),
        max_runtime_hours=section.integer("max_runtime_hours", 1, 120),
        min_test_auroc=section.number("min_test_auroc", 0.5, 1.0),
    )


def _etl(section: _Section) -> EtlConfig:
    return EtlConfig(
        source=section.choice("source", ETL_SOURCES),
        # Glue 5.0 needs at least 2 workers (one driver, one executor).
        worker_count=section.integer("worker_count", 2, 299),
        timeout_minutes=section.integer("timeout_minutes", 10, 2_880),
    )


def _endpoint(section: _Section) -> EndpointConfig:
    return EndpointConfig(
        instance_type=section.string("instance_type", SAGEMAKER_INSTANCE_PATTERN),
        instance_count=section.integer("instance_count", 1, 32),
        data_capture_sampling_percent=section.integer("data_capture_sampling_percent", 1, 100),
    )


def _alarms(section: _Section) -> AlarmThresholds:
    return AlarmThresholds(
        feature_psi=section.number("feature_psi", 0.01, 10.0),
        prediction_psi=section.number("prediction_psi", 0.01, 10.0),
        latency_p95_ms=section.integer("latency_p95_ms", 1, 60_000),
        endpoint_5xx_per_5min=section.integer("endpoint_5xx_per_5min", 1, 1_000_000),
        endpoint_4xx_per_5min=section.integer("endpoint_4xx_per_5min", 1, 1_000_000),
        lambda_errors_per_5min=section.integer("lambda_errors_per_5min", 1, 1_000_000),
    )


def _retention(section: _Section) -> RetentionConfig:
    return RetentionConfig(
        raw_days=section.integer("raw_days", 1, 36_500),
        capture_days=section.integer("capture_days", 1, 36_500),
        noncurrent_version_days=section.integer("noncurrent_version_days", 1, 36_500),
        access_log_days=section.integer("access_log_days", 1, 36_500),
        log_group_days=section.integer("log_group_days", 1, 3_653),
        audit_log_days=section.integer("audit_log_days", 1, 36_500),
        retain_data_on_delete=section.boolean("retain_data_on_delete"),
    )


def _audit(section: _Section, retention: RetentionConfig) -> AuditConfig:
    audit = AuditConfig(
        existing_trail_arn=section.optional_string("existing_trail_arn", TRAIL_ARN_PATTERN),
        object_lock_mode=section.choice("object_lock_mode", OBJECT_LOCK_MODES),
        # S3 Object Lock accepts a default retention of at most 36,500 days.
        object_lock_days=section.integer("object_lock_days", 1, 36_500),
    )
    if retention.audit_log_days < audit.object_lock_days:
        raise ConfigError(
            f"{section._path}.object_lock_days={audit.object_lock_days} exceeds "
            f"retention.audit_log_days={retention.audit_log_days}: a log file would be "
            "scheduled to expire while still locked"
        )
    return audit


def _api(section: _Section) -> ApiConfig:
    api = ApiConfig(
        auth=section.choice("auth", API_AUTH_MODES),
        throttle_rate_per_second=section.integer("throttle_rate_per_second", 1, 10_000),
        throttle_burst=section.integer("throttle_burst", 1, 5_000),
        waf_enabled=section.boolean("waf_enabled"),
        cloudwatch_role=section.choice("cloudwatch_role", API_CLOUDWATCH_ROLE_MODES),
    )
    if api.throttle_burst < api.throttle_rate_per_second:
        raise ConfigError(f"{section._path}.throttle_burst must be >= throttle_rate_per_second")
    return api


def _images(section: _Section) -> ImagesConfig:
    return ImagesConfig(
        # At least the image in service and the one being rolled out.
        keep_last=section.integer("keep_last", 2, 1_000),
        # CodeBuild's limits: 5 minutes to 36 hours.
        build_timeout_minutes=section.integer("build_timeout_minutes", 5, 2_160),
    )


def load_stage_config(context: Mapping[str, Any], stage: str) -> StageConfig:
    """Build the :class:`StageConfig` of ``stage`` from the ``cdk.json`` context.

    Raises :class:`ConfigError` naming the first missing or invalid key.
    """
    if not STAGE_NAME_PATTERN.match(stage):
        raise ConfigError(f"stage {stage!r} must match {STAGE_NAME_PATTERN.pattern}")
    root = _Section(context, "context")
    stages = root.section("stages")
    if stage not in stages._data:
        known = ", ".join(sorted(stages._data))
        raise ConfigError(f"context.stages.{stage} is missing (known stages: {known})")
    section = stages.section(stage)
    retention = _retention(section.section("retention"))
    return StageConfig(
        project=root.string("project", STAGE_NAME_PATTERN),
        stage=stage,
        training=_training(section.section("training")),
        etl=_etl(section.section("etl")),
        endpoint=_endpoint(section.section("endpoint")),
        alarms=_alarms(section.section("alarms")),
        retraining_schedule=section.string("retraining_schedule", SCHEDULE_PATTERN),
        notification_email=section.string("notification_email", EMAIL_PATTERN),
        retention=retention,
        audit=_audit(section.section("audit"), retention),
        api=_api(section.section("api")),
        images=_images(section.section("images")),
    )
