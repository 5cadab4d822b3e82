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

from contracts.fairness import (
    PLANNING_ALERT_RATE,
    PLANNING_PREVALENCE,
    minimum_outcomes,
    minimum_patients,
)

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
#: A key prefix under a bucket: lower-case segments, no leading slash, no empty segment.
S3_PREFIX_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*/?$")
#: Instance families with local NVMe storage (``ml.m5d``, ``ml.g4dn``): SageMaker refuses a
#: VolumeKmsKeyId for them, and batch scoring always encrypts its volume with the data key.
INSTANCE_STORAGE_FAMILY = re.compile(r"^ml\.[a-z]+[0-9]+[a-z]*d[n]?\.")
#: Sizes whose vCPUs batch scoring derives (one concurrent mini-batch per server worker).
BATCH_INSTANCE_SIZE = re.compile(r"^ml\.[a-z0-9-]+\.([0-9]*xlarge|large|medium)$")
#: Sources the ETL job reads (glue_jobs.ehr_features.SOURCE_CHOICES).
ETL_SOURCES = ("mimic3", "uci_diabetes", "mimic4", "fhir")
#: The worklist's sign-in: MFA required or optional; Cognito threat protection off, audit-only
#: (reports risk) or enforced (blocks risky sign-ins; needs the Plus feature plan).
WORKLIST_MFA_MODES = ("required", "optional")
WORKLIST_THREAT_PROTECTION_MODES = ("off", "audit", "enforced")
WORKLIST_FEDERATION_TYPES = ("saml", "oidc")
#: Cognito domain prefixes: lowercase letters, digits and hyphens (no "aws", "amazon", "cognito").
COGNITO_DOMAIN_PREFIX_PATTERN = re.compile(
    r"^(?!.*(aws|amazon|cognito))[a-z0-9](-?[a-z0-9]){0,62}$"
)
COGNITO_GROUP_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
HTTPS_URL_PATTERN = re.compile(r"^https://[A-Za-z0-9.-]+(:\d+)?(/\S*)?$")
DOMAIN_NAME_PATTERN = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
#: CloudFront takes ACM certificates of us-east-1 only.
CLOUDFRONT_CERTIFICATE_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[0-9a-f-]{36}$"
)
#: A CloudFront web ACL is created in us-east-1 with scope CLOUDFRONT (its ARN says global).
CLOUDFRONT_WEB_ACL_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:wafv2:us-east-1:\d{12}:global/webacl/[A-Za-z0-9_-]{1,128}/[0-9a-f-]{36}$"
)
IDP_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
SECRET_NAME_PATTERN = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
#: ``arn:<partition>:codeconnections|codestar-connections:<region>:<account>:connection/<id>``
#: (CodeConnections ARNs; connections made before the rename keep the codestar prefix).
CONNECTION_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:"
    r"connection/[0-9a-f-]{36}$"
)
#: ``owner/name`` of a GitHub, GitLab or Bitbucket repository.
REPOSITORY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
BRANCH_PATTERN = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
ACCOUNT_PATTERN = re.compile(r"^\d{12}$")
REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


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
    #: Share of discharges the care team can follow up; the job's default threshold rule
    #: alerts on that top share (training/job_spec.py passes it as a hyperparameter).
    alert_budget: float


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
class ShadowBoundsConfig:
    """How close a shadow candidate must stay to the serving version to be promoted."""

    min_pearson: float
    min_spearman: float
    min_band_agreement: float
    max_alert_rate_difference: float
    max_latency_p95_ratio: float
    max_error_rate: float


@dataclass(frozen=True)
class ShadowConfig:
    """The shadow stage before the canary (lambdas/deployer/comparison.py decides)."""

    enabled: bool
    traffic_percent: int
    minimum_minutes: int
    minimum_pairs: int
    bounds: ShadowBoundsConfig


@dataclass(frozen=True)
class AutoscalingConfig:
    """Target tracking of the production variant on invocations per instance per minute."""

    min_instances: int
    max_instances: int
    target_invocations_per_instance: int
    #: The variant at max_instances this long raises the sustained-max-capacity alarm.
    max_capacity_alarm_minutes: int


@dataclass(frozen=True)
class RolloutConfig:
    """How a new version reaches production, and how the endpoint scales."""

    shadow: ShadowConfig
    autoscaling: AutoscalingConfig


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
class FederationConfig:
    """The hospital's identity provider the worklist's user pool trusts (SAML or OIDC)."""

    type: str
    name: str
    #: SAML: the IdP's metadata document URL.
    metadata_url: str | None = None
    #: OIDC: the issuer, the client id, and the Secrets Manager secret holding the client secret.
    issuer_url: str | None = None
    client_id: str | None = None
    client_secret_name: str | None = None


@dataclass(frozen=True)
class WorklistConfig:
    """The care team's worklist page: its sign-in, hosting and data API limits."""

    access_group: str
    cognito_domain_prefix: str
    mfa: str
    threat_protection: str
    federation: FederationConfig | None
    #: A custom domain and its us-east-1 ACM certificate; ``None`` uses *.cloudfront.net.
    domain_name: str | None
    certificate_arn: str | None
    #: A CLOUDFRONT-scope web ACL made in us-east-1 (CloudFront takes no other), or ``None``.
    web_acl_arn: str | None
    throttle_rate_per_second: int
    throttle_burst: int


@dataclass(frozen=True)
class ImagesConfig:
    """The derived images: how many tags ECR keeps and how long a build may take."""

    keep_last: int
    build_timeout_minutes: int


@dataclass(frozen=True)
class FairnessConfig:
    """Fairness in production (docs/operations.md, "A fairness alarm"): the rolling window of
    scored days, the largest gap tolerated per metric, and who counts in a comparison."""

    window_days: int
    auroc_gap: float
    calibration_gap: float
    alert_rate_gap: float
    min_patients: int
    min_outcomes: int


@dataclass(frozen=True)
class CdsIssuer:
    """One EHR allowed to call the CDS Hooks service: its JWT ``iss`` and its JWKS URL."""

    iss: str
    jwks_url: str


@dataclass(frozen=True)
class CdsHooksConfig:
    """The CDS Hooks service: trusted EHRs, the authorizer's cache TTL, the hook's throttling,
    and the worklist page a card links to (``worklist.page_url``, when the stage has one)."""

    issuers: tuple[CdsIssuer, ...]
    authorizer_cache_ttl_s: int
    throttle_rate_per_second: int
    throttle_burst: int
    worklist_page_url: str | None = None


@dataclass(frozen=True)
class BatchScoringConfig:
    """Nightly batch scoring of the day's discharges into the care team's worklist."""

    enabled: bool
    #: EventBridge schedule expression (UTC); each run scores the day before its time.
    schedule: str
    #: Prefix of the curated bucket holding ``day=YYYY-MM-DD/`` folders of JSON-lines records.
    source_prefix: str
    instance_type: str
    #: Share of a day's discharges the care team can follow up (the worklist's budget line):
    #: the stage's ``training.alert_budget``, the one budget the model's threshold is chosen by.
    budget_share: float
    #: Version of the AWS-managed "AWS SDK for pandas" layer (pyarrow) the writer uses.
    sdk_for_pandas_layer_version: int


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
    worklist: WorklistConfig
    rollout: RolloutConfig
    fairness: FairnessConfig
    batch_scoring: BatchScoringConfig
    #: Accounts whose principals may describe and list this stage's model package versions
    #: (the prod account, set by the pipeline on the dev stage; empty otherwise).
    registry_reader_accounts: tuple[str, ...] = ()
    cds_hooks: CdsHooksConfig | None = None

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
        alert_budget=section.number("alert_budget", 0.001, 1.0),
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


def _rollout(section: _Section) -> RolloutConfig:
    shadow, scaling = section.section("shadow"), section.section("autoscaling")
    bounds = shadow.section("bounds")
    rollout = RolloutConfig(
        shadow=ShadowConfig(
            enabled=shadow.boolean("enabled"),
            traffic_percent=shadow.integer("traffic_percent", 1, 100),
            minimum_minutes=shadow.integer("minimum_minutes", 0, 43_200),
            minimum_pairs=shadow.integer("minimum_pairs", 2, 10_000_000),
            bounds=ShadowBoundsConfig(
                min_pearson=bounds.number("min_pearson", -1.0, 1.0),
                min_spearman=bounds.number("min_spearman", -1.0, 1.0),
                min_band_agreement=bounds.number("min_band_agreement", 0.0, 1.0),
                max_alert_rate_difference=bounds.number("max_alert_rate_difference", 0.0, 1.0),
                max_latency_p95_ratio=bounds.number("max_latency_p95_ratio", 1.0, 100.0),
                max_error_rate=bounds.number("max_error_rate", 0.0, 1.0),
            ),
        ),
        autoscaling=AutoscalingConfig(
            min_instances=scaling.integer("min_instances", 1, 100),
            max_instances=scaling.integer("max_instances", 1, 100),
            target_invocations_per_instance=scaling.integer(
                "target_invocations_per_instance", 1, 1_000_000
            ),
            # Whole 15-minute deployer sweeps (it publishes the capacity metric).
            max_capacity_alarm_minutes=scaling.integer("max_capacity_alarm_minutes", 15, 1_440),
        ),
    )
    if rollout.autoscaling.max_instances < rollout.autoscaling.min_instances:
        raise ConfigError(f"{scaling._path}.max_instances must be >= min_instances")
    return rollout


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


def _federation(parent: _Section) -> FederationConfig | None:
    if parent._data.get("federation") is None:
        return None
    section = parent.section("federation")
    kind = section.choice("type", WORKLIST_FEDERATION_TYPES)
    name = section.string("name", IDP_NAME_PATTERN)
    if kind == "saml":
        return FederationConfig(
            kind, name, metadata_url=section.string("metadata_url", HTTPS_URL_PATTERN)
        )
    return FederationConfig(
        kind,
        name,
        issuer_url=section.string("issuer_url", HTTPS_URL_PATTERN),
        client_id=section.string("client_id"),
        client_secret_name=section.string("client_secret_name", SECRET_NAME_PATTERN),
    )


def _worklist(section: _Section) -> WorklistConfig:
    worklist = WorklistConfig(
        access_group=section.string("access_group", COGNITO_GROUP_PATTERN),
        cognito_domain_prefix=section.string(
            "cognito_domain_prefix", COGNITO_DOMAIN_PREFIX_PATTERN
        ),
        mfa=section.choice("mfa", WORKLIST_MFA_MODES),
        threat_protection=section.choice("threat_protection", WORKLIST_THREAT_PROTECTION_MODES),
        federation=_federation(section),
        domain_name=section.optional_string("domain_name", DOMAIN_NAME_PATTERN),
        certificate_arn=section.optional_string(
            "certificate_arn", CLOUDFRONT_CERTIFICATE_ARN_PATTERN
        ),
        web_acl_arn=section.optional_string("web_acl_arn", CLOUDFRONT_WEB_ACL_ARN_PATTERN),
        throttle_rate_per_second=section.integer("throttle_rate_per_second", 1, 10_000),
        throttle_burst=section.integer("throttle_burst", 1, 5_000),
    )
    if (worklist.domain_name is None) != (worklist.certificate_arn is None):
        raise ConfigError(f"{section._path}.domain_name and certificate_arn go together")
    if worklist.throttle_burst < worklist.throttle_rate_per_second:
        raise ConfigError(f"{section._path}.throttle_burst must be >= throttle_rate_per_second")
    return worklist


def _images(section: _Section) -> ImagesConfig:
    return ImagesConfig(
        # At least the image in service and the one being rolled out.
        keep_last=section.integer("keep_last", 2, 1_000),
        # CodeBuild's limits: 5 minutes to 36 hours.
        build_timeout_minutes=section.integer("build_timeout_minutes", 5, 2_160),
    )


def _fairness(section: _Section) -> FairnessConfig:
    fairness = FairnessConfig(
        window_days=section.integer("window_days", 7, 365),
        auroc_gap=section.number("auroc_gap", 0.01, 0.5),
        calibration_gap=section.number("calibration_gap", 0.01, 0.5),
        alert_rate_gap=section.number("alert_rate_gap", 0.01, 0.5),
        min_patients=section.integer("min_patients", 1, 1_000_000),
        min_outcomes=section.integer("min_outcomes", 1, 1_000_000),
    )
    # Minimums too small for the bounds would page on noise (contracts/fairness.py).
    needed_outcomes = minimum_outcomes(fairness.auroc_gap)
    if fairness.min_outcomes < needed_outcomes:
        raise ConfigError(
            f"{section._path}.min_outcomes={fairness.min_outcomes} is below "
            f"{needed_outcomes}, the fewest readmissions per group that resolve "
            f"auroc_gap={fairness.auroc_gap}"
        )
    needed_patients = max(
        minimum_patients(fairness.alert_rate_gap, PLANNING_ALERT_RATE),
        minimum_patients(fairness.calibration_gap, PLANNING_PREVALENCE),
    )
    if fairness.min_patients < needed_patients:
        raise ConfigError(
            f"{section._path}.min_patients={fairness.min_patients} is below "
            f"{needed_patients}, the fewest patients per group that resolve "
            f"alert_rate_gap={fairness.alert_rate_gap} and "
            f"calibration_gap={fairness.calibration_gap}"
        )
    return fairness


@dataclass(frozen=True)
class AccountTarget:
    """Where a stage deploys: an account and a region."""

    account: str
    region: str


@dataclass(frozen=True)
class PipelineConfig:
    """The optional dev-to-prod CDK Pipeline (docs/deploy.md, "Dev to prod accounts")."""

    enabled: bool
    #: A CodeConnections connection to the repository's host (GitHub, GitLab or Bitbucket).
    connection_arn: str
    repository: str
    branch: str
    #: The pipeline lives in the dev account and deploys the ``dev`` stage there.
    dev: AccountTarget
    prod: AccountTarget


def _target(section: _Section) -> AccountTarget:
    return AccountTarget(
        account=section.string("account", ACCOUNT_PATTERN),
        region=section.string("region", REGION_PATTERN),
    )


def load_pipeline_config(context: Mapping[str, Any]) -> PipelineConfig | None:
    """The ``pipeline`` section, or ``None`` when it is absent or ``enabled`` is false.

    Nothing but ``enabled`` is read while the pipeline is off, so the single-account path
    needs no accounts or connection.
    """
    root = _Section(context, "context")
    if root._data.get("pipeline") is None:
        return None
    section = root.section("pipeline")
    if not section.boolean("enabled"):
        return None
    pipeline = PipelineConfig(
        enabled=True,
        connection_arn=section.string("connection_arn", CONNECTION_ARN_PATTERN),
        repository=section.string("repository", REPOSITORY_PATTERN),
        branch=section.string("branch", BRANCH_PATTERN),
        dev=_target(section.section("dev")),
        prod=_target(section.section("prod")),
    )
    if pipeline.dev.account == pipeline.prod.account:
        raise ConfigError(
            f"{section._path}.prod.account must differ from {section._path}.dev.account: "
            "the pipeline promotes from one account to another"
        )
    return pipeline


HTTPS_URL_PATTERN = re.compile(r"^https://[^\s/?#]+(?:/[^\s]*)?$")


def _cds_hooks(section: _Section, worklist_page_url: str | None) -> CdsHooksConfig:
    raw = section._raw("issuers")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{section._path}.issuers must be a non-empty list")
    issuers = []
    for position, item in enumerate(raw):
        issuer = _Section(item, f"{section._path}.issuers.{position}")
        issuers.append(
            CdsIssuer(
                iss=issuer.string("iss", HTTPS_URL_PATTERN),
                jwks_url=issuer.string("jwks_url", HTTPS_URL_PATTERN),
            )
        )
    if len({issuer.iss for issuer in issuers}) != len(issuers):
        raise ConfigError(f"{section._path}.issuers names an issuer twice")
    config = CdsHooksConfig(
        issuers=tuple(issuers),
        # API Gateway caches authorizer results for at most 3600 s; a CDS client's JWT lives
        # at most 300 s, so a longer TTL would only keep expired tokens' answers.
        authorizer_cache_ttl_s=section.integer("authorizer_cache_ttl_s", 0, 300),
        throttle_rate_per_second=section.integer("throttle_rate_per_second", 1, 10_000),
        throttle_burst=section.integer("throttle_burst", 1, 5_000),
        worklist_page_url=worklist_page_url,
    )
    if config.throttle_burst < config.throttle_rate_per_second:
        raise ConfigError(f"{section._path}.throttle_burst must be >= throttle_rate_per_second")
    return config


def _worklist_page_url(stage: _Section) -> str | None:
    """Where the worklist page is, for the CDS card's link: ``worklist.page_url`` if set, else
    the page's custom domain (``worklist.domain_name``); ``None`` (no link) on the default
    ``*.cloudfront.net`` name, which exists only once the worklist stack is deployed."""
    if "worklist" not in stage._data:
        return None
    worklist = stage.section("worklist")
    explicit = worklist.optional_string("page_url", HTTPS_URL_PATTERN)
    if explicit is not None:
        return explicit
    domain = worklist._data.get("domain_name")
    return f"https://{domain}/" if isinstance(domain, str) and domain else None


def _batch_scoring(section: _Section, alert_budget: float) -> BatchScoringConfig:
    config = BatchScoringConfig(
        enabled=section.boolean("enabled"),
        schedule=section.string("schedule", SCHEDULE_PATTERN),
        source_prefix=section.string("source_prefix", S3_PREFIX_PATTERN),
        instance_type=section.string("instance_type", BATCH_INSTANCE_SIZE),
        budget_share=alert_budget,
        sdk_for_pandas_layer_version=section.integer("sdk_for_pandas_layer_version", 1, 10_000),
    )
    if INSTANCE_STORAGE_FAMILY.match(config.instance_type):
        raise ConfigError(
            f"{section._path}.instance_type={config.instance_type!r} has instance storage: "
            "SageMaker cannot encrypt its volume with the data key (VolumeKmsKeyId)"
        )
    return config


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
    training = _training(section.section("training"))
    return StageConfig(
        project=root.string("project", STAGE_NAME_PATTERN),
        stage=stage,
        training=training,
        etl=_etl(section.section("etl")),
        endpoint=_endpoint(section.section("endpoint")),
        alarms=_alarms(section.section("alarms")),
        retraining_schedule=section.string("retraining_schedule", SCHEDULE_PATTERN),
        notification_email=section.string("notification_email", EMAIL_PATTERN),
        retention=retention,
        audit=_audit(section.section("audit"), retention),
        api=_api(section.section("api")),
        images=_images(section.section("images")),
        worklist=_worklist(section.section("worklist")),
        rollout=_rollout(section.section("rollout")),
        fairness=_fairness(section.section("fairness")),
        cds_hooks=(
            _cds_hooks(section.section("cds_hooks"), _worklist_page_url(section))
            if "cds_hooks" in section._data
            else None
        ),
        batch_scoring=_batch_scoring(section.section("batch_scoring"), training.alert_budget),
    )
