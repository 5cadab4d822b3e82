"""A stage's settings: the ``cdk.json`` context read once into frozen, validated dataclasses.

Every section is a frozen pydantic dataclass that refuses unknown keys (a misspelled ``trainng``
fails instead of loading without its section's settings), takes JSON types strictly and checks
ranges, patterns and choices on construction. Rules that join keys of one section (a burst not
below its rate) hold on construction too; the fairness minimums, a policy on what a stage may
deploy, are checked when a stage is read from the file. :func:`load_stage_config` and
:func:`load_pipeline_config` raise :class:`ConfigError` naming the key's full path
(``context.stages.prod.training.instance_count is missing``).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass as stdlib_dataclass
from dataclasses import fields
from typing import Annotated, Any

from pydantic import ConfigDict, ValidationInfo, model_validator
from pydantic.dataclasses import dataclass

from contracts.fairness import (
    PLANNING_ALERT_RATE,
    PLANNING_PREVALENCE,
    minimum_outcomes,
    minimum_patients,
)
from platform_config.fields import (
    ConfigError,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    between,
    known_keys,
    matches,
    one_of,
    problem,
    validated,
    validated_value,
)

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
#: An https URL: a host (and port), then an optional path.
HTTPS_URL_PATTERN = re.compile(r"^https://[^\s/?#]+(?:/[^\s]*)?$")
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

SageMakerInstance = Annotated[StrictStr, matches(SAGEMAKER_INSTANCE_PATTERN)]
Schedule = Annotated[StrictStr, matches(SCHEDULE_PATTERN)]
Account = Annotated[StrictStr, matches(ACCOUNT_PATTERN)]
HttpsUrl = Annotated[StrictStr, matches(HTTPS_URL_PATTERN)]
Rate = Annotated[StrictInt, between(1, 10_000)]
Burst = Annotated[StrictInt, between(1, 5_000)]
Share = Annotated[StrictFloat, between(0.0, 1.0)]
#: Alarm thresholds counted per 5 minutes.
Count = Annotated[StrictInt, between(1, 1_000_000)]
Days = Annotated[StrictInt, between(1, 36_500)]
Gap = Annotated[StrictFloat, between(0.01, 0.5)]


@stdlib_dataclass(frozen=True)
class StageFile:
    """Validation context of a stage read from ``cdk.json``: what its section does not hold."""

    project: str
    stage: str


def _reading_file(info: ValidationInfo) -> bool:
    return isinstance(info.context, StageFile)


def _nullable(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _nullable(typing.get_args(annotation)[0])
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)


_NULLABLE_KEYS: dict[type, tuple[str, ...]] = {}


def _nullable_keys(section: type) -> tuple[str, ...]:
    if section not in _NULLABLE_KEYS:
        hints = typing.get_type_hints(section, include_extras=True)
        _NULLABLE_KEYS[section] = tuple(f.name for f in fields(section) if _nullable(hints[f.name]))
    return _NULLABLE_KEYS[section]


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Section:
    """A section of the context: unknown keys are refused; a nullable key may be absent.

    The CDK CLI drops ``null`` values from the ``cdk.json`` context before the app sees it, so
    an absent nullable key reads as ``null``.
    """

    @model_validator(mode="before")
    @classmethod
    def _absent_is_null(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        return {**dict.fromkeys(_nullable_keys(cls)), **data}


def _burst_covers_rate(rate: int, burst: int) -> None:
    if burst < rate:
        raise problem(".throttle_burst must be >= throttle_rate_per_second")


@dataclass(frozen=True)
class TrainingConfig(Section):
    """The SageMaker training job's compute."""

    instance_type: SageMakerInstance
    instance_count: Annotated[StrictInt, between(1, 64)]
    use_spot: StrictBool
    max_runtime_hours: Annotated[StrictInt, between(1, 120)]
    #: Quality gate: a model registers only with a test AUROC at least this (and above the
    #: logistic baseline's).
    min_test_auroc: Annotated[StrictFloat, between(0.5, 1.0)]
    #: Share of discharges the care team can follow up; the job's default threshold rule
    #: alerts on that top share (training/job_spec.py passes it as a hyperparameter).
    alert_budget: Annotated[StrictFloat, between(0.001, 1.0)]


@dataclass(frozen=True)
class EtlConfig(Section):
    """The Glue job: which source it reads and its compute."""

    source: Annotated[StrictStr, one_of(ETL_SOURCES)]
    # Glue 5.0 needs at least 2 workers (one driver, one executor).
    worker_count: Annotated[StrictInt, between(2, 299)]
    timeout_minutes: Annotated[StrictInt, between(10, 2_880)]


@dataclass(frozen=True)
class EndpointConfig(Section):
    """The real-time endpoint's compute and data capture."""

    instance_type: SageMakerInstance
    instance_count: Annotated[StrictInt, between(1, 32)]
    data_capture_sampling_percent: Annotated[StrictInt, between(1, 100)]


@dataclass(frozen=True)
class ShadowBoundsConfig(Section):
    """How close a shadow candidate must stay to the serving version to be promoted."""

    min_pearson: Annotated[StrictFloat, between(-1.0, 1.0)]
    min_spearman: Annotated[StrictFloat, between(-1.0, 1.0)]
    min_band_agreement: Share
    max_alert_rate_difference: Share
    max_latency_p95_ratio: Annotated[StrictFloat, between(1.0, 100.0)]
    max_error_rate: Share


@dataclass(frozen=True)
class ShadowConfig(Section):
    """The shadow stage before the canary (lambdas/deployer/comparison.py decides)."""

    enabled: StrictBool
    traffic_percent: Annotated[StrictInt, between(1, 100)]
    minimum_minutes: Annotated[StrictInt, between(0, 43_200)]
    minimum_pairs: Annotated[StrictInt, between(2, 10_000_000)]
    bounds: ShadowBoundsConfig


@dataclass(frozen=True)
class AutoscalingConfig(Section):
    """Target tracking of the production variant on invocations per instance per minute."""

    min_instances: Annotated[StrictInt, between(1, 100)]
    max_instances: Annotated[StrictInt, between(1, 100)]
    target_invocations_per_instance: Annotated[StrictInt, between(1, 1_000_000)]
    #: The variant at max_instances this long raises the sustained-max-capacity alarm (whole
    #: 15-minute deployer sweeps: it publishes the capacity metric).
    max_capacity_alarm_minutes: Annotated[StrictInt, between(15, 1_440)]

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalingConfig:
        if self.max_instances < self.min_instances:
            raise problem(".max_instances must be >= min_instances")
        return self


@dataclass(frozen=True)
class RolloutConfig(Section):
    """How a new version reaches production, and how the endpoint scales."""

    shadow: ShadowConfig
    autoscaling: AutoscalingConfig


@dataclass(frozen=True)
class AlarmThresholds(Section):
    """Thresholds of the CloudWatch alarms (PSI is unitless; counts are per 5 minutes)."""

    feature_psi: Annotated[StrictFloat, between(0.01, 10.0)]
    prediction_psi: Annotated[StrictFloat, between(0.01, 10.0)]
    latency_p95_ms: Annotated[StrictInt, between(1, 60_000)]
    endpoint_5xx_per_5min: Count
    endpoint_4xx_per_5min: Count
    lambda_errors_per_5min: Count


@dataclass(frozen=True)
class RetentionConfig(Section):
    """How long each kind of data is kept, in days, and whether data outlives the stack."""

    raw_days: Days
    capture_days: Days
    noncurrent_version_days: Days
    access_log_days: Days
    log_group_days: Annotated[StrictInt, between(1, 3_653)]
    #: CloudTrail log files expire after this many days (never before their Object Lock ends).
    audit_log_days: Days
    retain_data_on_delete: StrictBool


@dataclass(frozen=True)
class AuditConfig(Section):
    """The audit trail: the stage's own CloudTrail trail, or the organisation's existing one."""

    #: ``None``: the DataLake stack creates a trail; otherwise the ARN of the trail that
    #: already records this account (it must carry the data event selectors of
    #: docs/architecture.md, "Audit trail").
    existing_trail_arn: Annotated[StrictStr, matches(TRAIL_ARN_PATTERN)] | None
    #: S3 Object Lock default retention of the trail's log files: mode and days (S3 Object
    #: Lock accepts a default retention of at most 36,500 days).
    object_lock_mode: Annotated[StrictStr, one_of(OBJECT_LOCK_MODES)]
    object_lock_days: Days


@dataclass(frozen=True)
class ApiConfig(Section):
    """The prediction API's authentication, throttling, WAF and account logging role."""

    auth: Annotated[StrictStr, one_of(API_AUTH_MODES)]
    throttle_rate_per_second: Rate
    throttle_burst: Burst
    waf_enabled: StrictBool
    #: One of :data:`API_CLOUDWATCH_ROLE_MODES` (docs/deploy.md, "Account prerequisites").
    cloudwatch_role: Annotated[StrictStr, one_of(API_CLOUDWATCH_ROLE_MODES)]

    @model_validator(mode="after")
    def _burst(self) -> ApiConfig:
        _burst_covers_rate(self.throttle_rate_per_second, self.throttle_burst)
        return self

    @property
    def creates_cloudwatch_role(self) -> bool:
        """Whether the Api stack sets the account's API Gateway CloudWatch Logs role."""
        return self.cloudwatch_role == "create"


#: The keys each federation type needs; the other type's keys are refused.
FEDERATION_KEYS = {
    "saml": ("metadata_url",),
    "oidc": ("issuer_url", "client_id", "client_secret_name"),
}


@dataclass(frozen=True)
class FederationConfig(Section):
    """The hospital's identity provider the worklist's user pool trusts (SAML or OIDC)."""

    type: Annotated[StrictStr, one_of(WORKLIST_FEDERATION_TYPES)]
    name: Annotated[StrictStr, matches(IDP_NAME_PATTERN)]
    #: SAML: the IdP's metadata document URL.
    metadata_url: HttpsUrl | None = None
    #: OIDC: the issuer, the client id, and the Secrets Manager secret holding the client secret.
    issuer_url: HttpsUrl | None = None
    client_id: StrictStr | None = None
    client_secret_name: Annotated[StrictStr, matches(SECRET_NAME_PATTERN)] | None = None

    @model_validator(mode="after")
    def _keys_of_its_type(self) -> FederationConfig:
        for kind, keys in FEDERATION_KEYS.items():
            for key in keys:
                given = getattr(self, key) is not None
                if kind == self.type and not given:
                    raise problem(f".{key} is missing")
                if kind != self.type and given:
                    raise problem(f".{key} is not a key of {self.type} federation")
        return self


@dataclass(frozen=True)
class WorklistConfig(Section):
    """The care team's worklist page: its sign-in, hosting and data API limits."""

    access_group: Annotated[StrictStr, matches(COGNITO_GROUP_PATTERN)]
    cognito_domain_prefix: Annotated[StrictStr, matches(COGNITO_DOMAIN_PREFIX_PATTERN)]
    mfa: Annotated[StrictStr, one_of(WORKLIST_MFA_MODES)]
    threat_protection: Annotated[StrictStr, one_of(WORKLIST_THREAT_PROTECTION_MODES)]
    federation: FederationConfig | None
    #: A custom domain and its us-east-1 ACM certificate; ``None`` uses *.cloudfront.net.
    domain_name: Annotated[StrictStr, matches(DOMAIN_NAME_PATTERN)] | None
    certificate_arn: Annotated[StrictStr, matches(CLOUDFRONT_CERTIFICATE_ARN_PATTERN)] | None
    #: A CLOUDFRONT-scope web ACL made in us-east-1 (CloudFront takes no other), or ``None``.
    web_acl_arn: Annotated[StrictStr, matches(CLOUDFRONT_WEB_ACL_ARN_PATTERN)] | None
    throttle_rate_per_second: Rate
    throttle_burst: Burst
    #: Where the page is, for the CDS card's link, when it is neither the custom domain nor
    #: known before deployment (the default ``*.cloudfront.net`` name).
    page_url: HttpsUrl | None = None

    @model_validator(mode="after")
    def _consistent(self) -> WorklistConfig:
        if (self.domain_name is None) != (self.certificate_arn is None):
            raise problem(".domain_name and certificate_arn go together")
        _burst_covers_rate(self.throttle_rate_per_second, self.throttle_burst)
        return self


@dataclass(frozen=True)
class ImagesConfig(Section):
    """The derived images: how many tags ECR keeps and how long a build may take."""

    #: At least the image in service and the one being rolled out.
    keep_last: Annotated[StrictInt, between(2, 1_000)]
    #: CodeBuild's limits: 5 minutes to 36 hours.
    build_timeout_minutes: Annotated[StrictInt, between(5, 2_160)]


@dataclass(frozen=True)
class FairnessConfig(Section):
    """Fairness in production (docs/operations.md, "A fairness alarm"): the rolling window of
    scored days, the largest gap tolerated per metric, and who counts in a comparison."""

    window_days: Annotated[StrictInt, between(7, 365)]
    auroc_gap: Gap
    calibration_gap: Gap
    alert_rate_gap: Gap
    min_patients: Count
    min_outcomes: Count

    @model_validator(mode="after")
    def _minimums_resolve_the_gaps(self, info: ValidationInfo) -> FairnessConfig:
        """A stage's minimums too small for its bounds would page on noise
        (contracts/fairness.py); a demo may construct smaller ones on purpose."""
        if not _reading_file(info):
            return self
        needed_outcomes = minimum_outcomes(self.auroc_gap)
        if self.min_outcomes < needed_outcomes:
            raise problem(
                f".min_outcomes={self.min_outcomes} is below {needed_outcomes}, the fewest "
                f"readmissions per group that resolve auroc_gap={self.auroc_gap}"
            )
        needed_patients = max(
            minimum_patients(self.alert_rate_gap, PLANNING_ALERT_RATE),
            minimum_patients(self.calibration_gap, PLANNING_PREVALENCE),
        )
        if self.min_patients < needed_patients:
            raise problem(
                f".min_patients={self.min_patients} is below {needed_patients}, the fewest "
                f"patients per group that resolve alert_rate_gap={self.alert_rate_gap} and "
                f"calibration_gap={self.calibration_gap}"
            )
        return self


@dataclass(frozen=True)
class CdsIssuer(Section):
    """One EHR allowed to call the CDS Hooks service: its JWT ``iss`` and its JWKS URL."""

    iss: HttpsUrl
    jwks_url: HttpsUrl


@dataclass(frozen=True)
class CdsHooksConfig(Section):
    """The CDS Hooks service: trusted EHRs, the authorizer's cache TTL, the hook's throttling,
    and the worklist page a card links to (``worklist.page_url``, when the stage has one)."""

    issuers: tuple[CdsIssuer, ...]
    #: API Gateway caches authorizer results for at most 3600 s; a CDS client's JWT lives at
    #: most 300 s, so a longer TTL would only keep expired tokens' answers.
    authorizer_cache_ttl_s: Annotated[StrictInt, between(0, 300)]
    throttle_rate_per_second: Rate
    throttle_burst: Burst
    worklist_page_url: HttpsUrl | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CdsHooksConfig:
        if not self.issuers:
            raise problem(".issuers must be a non-empty list")
        if len({issuer.iss for issuer in self.issuers}) != len(self.issuers):
            raise problem(".issuers names an issuer twice")
        _burst_covers_rate(self.throttle_rate_per_second, self.throttle_burst)
        return self


@dataclass(frozen=True)
class BatchScoringConfig(Section):
    """Nightly batch scoring of the day's discharges into the care team's worklist."""

    enabled: StrictBool
    #: EventBridge schedule expression (UTC); each run scores the day before its time.
    schedule: Schedule
    #: Prefix of the curated bucket holding ``day=YYYY-MM-DD/`` folders of JSON-lines records.
    source_prefix: Annotated[StrictStr, matches(S3_PREFIX_PATTERN)]
    instance_type: Annotated[StrictStr, matches(BATCH_INSTANCE_SIZE)]
    #: Share of a day's discharges the care team can follow up (the worklist's budget line):
    #: the stage's ``training.alert_budget``, the one budget the model's threshold is chosen by.
    budget_share: Annotated[StrictFloat, between(0.001, 1.0)]
    #: Version of the AWS-managed "AWS SDK for pandas" layer (pyarrow) the writer uses.
    sdk_for_pandas_layer_version: Annotated[StrictInt, between(1, 10_000)]

    @model_validator(mode="after")
    def _encryptable_volume(self) -> BatchScoringConfig:
        if INSTANCE_STORAGE_FAMILY.match(self.instance_type):
            raise problem(
                f".instance_type={self.instance_type!r} has instance storage: SageMaker cannot "
                "encrypt its volume with the data key (VolumeKmsKeyId)"
            )
        return self


#: Keys of :class:`StageConfig` (and its sections) that a stage's section in ``cdk.json`` does
#: not hold, and where each comes from.
DERIVED_KEYS = {
    ("project",): "context.project",
    ("stage",): "the stage's name",
    ("registry_reader_accounts",): "the pipeline (context.pipeline.prod.account)",
    ("batch_scoring", "budget_share"): "training.alert_budget",
    ("cds_hooks", "worklist_page_url"): "worklist.page_url or worklist.domain_name",
}


def _refuse_derived(stage: Mapping[str, Any]) -> None:
    for path, origin in DERIVED_KEYS.items():
        section: Any = stage
        for key in path[:-1]:
            section = section.get(key) if isinstance(section, Mapping) else None
        if isinstance(section, Mapping) and path[-1] in section:
            raise problem(f".{'.'.join(path)} is not a setting of the file: it is {origin}")


def _with_derived(stage: Mapping[str, Any], file: StageFile) -> dict[str, Any]:
    """The stage's section with the values derived from elsewhere in the context."""
    derived = {**stage, "project": file.project, "stage": file.stage}
    training, batch = stage.get("training"), stage.get("batch_scoring")
    if isinstance(batch, Mapping) and isinstance(training, Mapping) and "alert_budget" in training:
        derived["batch_scoring"] = {**batch, "budget_share": training["alert_budget"]}
    cds, worklist = stage.get("cds_hooks"), stage.get("worklist")
    if isinstance(cds, Mapping):
        derived["cds_hooks"] = {**cds, "worklist_page_url": _worklist_link(worklist)}
    return derived


def _worklist_link(worklist: Any) -> str | None:
    """Where the CDS card links: ``worklist.page_url`` if set, else the page's custom domain;
    ``None`` (no link) on the default ``*.cloudfront.net`` name, which exists only once the
    worklist stack is deployed. Invalid values are reported at their own keys."""
    if not isinstance(worklist, Mapping):
        return None
    explicit, domain = worklist.get("page_url"), worklist.get("domain_name")
    if explicit is not None:
        return explicit if isinstance(explicit, str) else None
    return f"https://{domain}/" if isinstance(domain, str) and domain else None


@dataclass(frozen=True)
class StageConfig(Section):
    """Everything a stage configures; built once by :func:`load_stage_config`."""

    project: Annotated[StrictStr, matches(STAGE_NAME_PATTERN)]
    stage: Annotated[StrictStr, matches(STAGE_NAME_PATTERN)]
    training: TrainingConfig
    etl: EtlConfig
    endpoint: EndpointConfig
    alarms: AlarmThresholds
    retraining_schedule: Schedule
    notification_email: Annotated[StrictStr, matches(EMAIL_PATTERN)]
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
    registry_reader_accounts: tuple[Account, ...] = ()
    cds_hooks: CdsHooksConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_file(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(info.context, StageFile) or not isinstance(data, Mapping):
            return data
        _refuse_derived(data)
        return _with_derived(data, info.context)

    @model_validator(mode="after")
    def _audit_within_retention(self) -> StageConfig:
        if self.retention.audit_log_days < self.audit.object_lock_days:
            raise problem(
                f".audit.object_lock_days={self.audit.object_lock_days} exceeds "
                f"retention.audit_log_days={self.retention.audit_log_days}: a log file would "
                "be scheduled to expire while still locked"
            )
        return self

    @property
    def prefix(self) -> str:
        """Resource name prefix, e.g. ``readmission-dev``."""
        return f"{self.project}-{self.stage}"


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path} must be an object, got {type(value).__name__}")
    return value


def load_stage_config(context: Mapping[str, Any], stage: str) -> StageConfig:
    """Build the :class:`StageConfig` of ``stage`` from the ``cdk.json`` context.

    Raises :class:`ConfigError` naming the first missing, invalid or unknown key.
    """
    if not STAGE_NAME_PATTERN.match(stage):
        raise ConfigError(f"stage {stage!r} must match {STAGE_NAME_PATTERN.pattern}")
    root = _mapping(context, "context")
    for key in ("project", "stages"):
        if key not in root:
            raise ConfigError(f"context.{key} is missing")
    project: str = validated_value(
        Annotated[StrictStr, matches(STAGE_NAME_PATTERN)], root["project"], "context.project"
    )
    stages = _mapping(root["stages"], "context.stages")
    if stage not in stages:
        known = ", ".join(sorted(stages))
        raise ConfigError(f"context.stages.{stage} is missing (known stages: {known})")
    return validated(
        StageConfig, stages[stage], f"context.stages.{stage}", StageFile(project, stage)
    )


@dataclass(frozen=True)
class AccountTarget(Section):
    """Where a stage deploys: an account and a region."""

    account: Account
    region: Annotated[StrictStr, matches(REGION_PATTERN)]


@dataclass(frozen=True)
class PipelineConfig(Section):
    """The optional dev-to-prod CDK Pipeline (docs/deploy.md, "Dev to prod accounts")."""

    enabled: StrictBool
    #: A CodeConnections connection to the repository's host (GitHub, GitLab or Bitbucket).
    connection_arn: Annotated[StrictStr, matches(CONNECTION_ARN_PATTERN)]
    repository: Annotated[StrictStr, matches(REPOSITORY_PATTERN)]
    branch: Annotated[StrictStr, matches(BRANCH_PATTERN)]
    #: The pipeline lives in the dev account and deploys the ``dev`` stage there.
    dev: AccountTarget
    prod: AccountTarget

    @model_validator(mode="after")
    def _two_accounts(self) -> PipelineConfig:
        if self.dev.account == self.prod.account:
            raise problem(
                ".prod.account must differ from dev.account: the pipeline promotes from one "
                "account to another"
            )
        return self


def load_pipeline_config(context: Mapping[str, Any]) -> PipelineConfig | None:
    """The ``pipeline`` section, or ``None`` when it is absent or ``enabled`` is false.

    While the pipeline is off only ``enabled`` is read (the single-account path needs no
    accounts or connection), and the section's key names are still checked.
    """
    raw = _mapping(context, "context").get("pipeline")
    if raw is None:
        return None
    section = _mapping(raw, "context.pipeline")
    if "enabled" not in section:
        raise ConfigError("context.pipeline.enabled is missing")
    if not validated_value(StrictBool, section["enabled"], "context.pipeline.enabled"):
        known = known_keys(PipelineConfig, ())
        for key in section:
            if key not in known:
                raise ConfigError(
                    f"context.pipeline.{key} is not a known key (known: {', '.join(known)})"
                )
        return None
    return validated(PipelineConfig, section, "context.pipeline")
