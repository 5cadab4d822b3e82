"""The deployer's configuration, read once from its environment into a frozen dataclass."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from contracts.deployment import RETRY_SECONDS
from lambdas.deployer.comparison import ShadowBounds
from lambdas.environment import EnvironmentNames, SettingsError, flag, integer, names, number

ENDPOINT_NAME_ENV = "ENDPOINT_NAME"
EXECUTION_ROLE_ARN_ENV = "EXECUTION_ROLE_ARN"
INSTANCE_TYPE_ENV = "INSTANCE_TYPE"
INSTANCE_COUNT_ENV = "INSTANCE_COUNT"
DATA_CAPTURE_S3_URI_ENV = "DATA_CAPTURE_S3_URI"
KMS_KEY_ARN_ENV = "KMS_KEY_ARN"
CAPTURE_SAMPLING_PERCENT_ENV = "CAPTURE_SAMPLING_PERCENT"
ROLLBACK_ALARM_NAMES_ENV = "ROLLBACK_ALARM_NAMES"
SNS_TOPIC_ARN_ENV = "SNS_TOPIC_ARN"
MODEL_PACKAGE_GROUP_NAME_ENV = "MODEL_PACKAGE_GROUP_NAME"
VPC_SUBNET_IDS_ENV = "VPC_SUBNET_IDS"
VPC_SECURITY_GROUP_IDS_ENV = "VPC_SECURITY_GROUP_IDS"
TRAFFIC_ROUTING_ENV = "TRAFFIC_ROUTING"
TRAFFIC_STEP_PERCENT_ENV = "TRAFFIC_STEP_PERCENT"
TRAFFIC_WAIT_SECONDS_ENV = "TRAFFIC_WAIT_SECONDS"
TERMINATION_WAIT_SECONDS_ENV = "TERMINATION_WAIT_SECONDS"
MAX_EXECUTION_SECONDS_ENV = "MAX_EXECUTION_SECONDS"
NETWORK_ISOLATION_ENV = "NETWORK_ISOLATION"
ENCRYPT_VOLUME_ENV = "ENCRYPT_VOLUME_WITH_KMS"
REJECTION_ALARM_NAME_ENV = "REJECTION_ALARM_NAME"
APPROVER_ROLE_ARN_ENV = "APPROVER_ROLE_ARN"
QUEUE_URL_ENV = "QUEUE_URL"
RETRY_SECONDS_ENV = "RETRY_SECONDS"
SHADOW_ENABLED_ENV = "SHADOW_ENABLED"
SHADOW_TRAFFIC_PERCENT_ENV = "SHADOW_TRAFFIC_PERCENT"
SHADOW_MINIMUM_MINUTES_ENV = "SHADOW_MINIMUM_MINUTES"
SHADOW_MINIMUM_PAIRS_ENV = "SHADOW_MINIMUM_PAIRS"
#: Bounds, one variable each: SHADOW_MIN_PEARSON, ..., named after ShadowBounds' fields.
SHADOW_BOUND_ENV_PREFIX = "SHADOW_"
AUTOSCALING_ENABLED_ENV = "AUTOSCALING_ENABLED"
AUTOSCALING_MIN_ENV = "AUTOSCALING_MIN_INSTANCES"
AUTOSCALING_MAX_ENV = "AUTOSCALING_MAX_INSTANCES"
AUTOSCALING_TARGET_ENV = "AUTOSCALING_TARGET_INVOCATIONS_PER_INSTANCE"
AUTOSCALING_SCALE_IN_COOLDOWN_ENV = "AUTOSCALING_SCALE_IN_COOLDOWN_SECONDS"
AUTOSCALING_SCALE_OUT_COOLDOWN_ENV = "AUTOSCALING_SCALE_OUT_COOLDOWN_SECONDS"

TRAFFIC_ROUTING_TYPES = ("CANARY", "LINEAR", "ALL_AT_ONCE")
DEFAULT_TRAFFIC_ROUTING = "CANARY"
#: Canary: 10 % of capacity first; linear: 10 % more per step.
DEFAULT_TRAFFIC_STEP_PERCENT = 10
#: Bake time per step during which the rollback alarms can stop the shift (API limit 3600).
DEFAULT_TRAFFIC_WAIT_SECONDS = 600
DEFAULT_TERMINATION_WAIT_SECONDS = 300
DEFAULT_MAX_EXECUTION_SECONDS = 3600
_MAX_WAIT_SECONDS = 3600
_MAX_EXECUTION_RANGE = (600, 28_800)
_MAX_STEP_PERCENT = 50
#: SQS ChangeMessageVisibility accepts 0 to 43,200 seconds.
_RETRY_RANGE = (1, 43_200)
_MAX_ALARMS = 10

#: Bounds a candidate must meet in shadow unless the stage says otherwise.
DEFAULT_SHADOW_BOUNDS = ShadowBounds(
    min_pearson=0.9,
    min_spearman=0.9,
    min_band_agreement=0.9,
    max_alert_rate_difference=0.05,
    max_latency_p95_ratio=1.5,
    max_error_rate=0.01,
)
DEFAULT_SHADOW_TRAFFIC_PERCENT = 100
DEFAULT_SHADOW_MINIMUM_MINUTES = 60
DEFAULT_SHADOW_MINIMUM_PAIRS = 500
#: Target tracking's default cooldowns for SageMaker variants (seconds).
DEFAULT_SCALE_IN_COOLDOWN = 300
DEFAULT_SCALE_OUT_COOLDOWN = 60


def shadow_bound_env(field_name: str) -> str:
    """``min_pearson`` -> ``SHADOW_MIN_PEARSON``."""
    return f"{SHADOW_BOUND_ENV_PREFIX}{field_name.upper()}"


#: What the stack sets (stacks/components/endpoint_deployment.py); the traffic shift, the
#: container's network settings and the cooldowns keep their defaults there.
ENVIRONMENT = EnvironmentNames.of(
    required=(
        ENDPOINT_NAME_ENV,
        EXECUTION_ROLE_ARN_ENV,
        APPROVER_ROLE_ARN_ENV,
        INSTANCE_TYPE_ENV,
        INSTANCE_COUNT_ENV,
        DATA_CAPTURE_S3_URI_ENV,
        KMS_KEY_ARN_ENV,
        CAPTURE_SAMPLING_PERCENT_ENV,
        ROLLBACK_ALARM_NAMES_ENV,
        REJECTION_ALARM_NAME_ENV,
        SNS_TOPIC_ARN_ENV,
        MODEL_PACKAGE_GROUP_NAME_ENV,
        VPC_SUBNET_IDS_ENV,
        VPC_SECURITY_GROUP_IDS_ENV,
        QUEUE_URL_ENV,
        RETRY_SECONDS_ENV,
        SHADOW_ENABLED_ENV,
        SHADOW_TRAFFIC_PERCENT_ENV,
        SHADOW_MINIMUM_MINUTES_ENV,
        SHADOW_MINIMUM_PAIRS_ENV,
        *(shadow_bound_env(name) for name in ShadowBounds.__dataclass_fields__),
        AUTOSCALING_ENABLED_ENV,
        AUTOSCALING_MIN_ENV,
        AUTOSCALING_MAX_ENV,
        AUTOSCALING_TARGET_ENV,
    ),
    optional=(
        TRAFFIC_ROUTING_ENV,
        TRAFFIC_STEP_PERCENT_ENV,
        TRAFFIC_WAIT_SECONDS_ENV,
        TERMINATION_WAIT_SECONDS_ENV,
        MAX_EXECUTION_SECONDS_ENV,
        NETWORK_ISOLATION_ENV,
        ENCRYPT_VOLUME_ENV,
        AUTOSCALING_SCALE_IN_COOLDOWN_ENV,
        AUTOSCALING_SCALE_OUT_COOLDOWN_ENV,
    ),
)


def _bounds(env: Mapping[str, str]) -> ShadowBounds:
    defaults = DEFAULT_SHADOW_BOUNDS
    return ShadowBounds(
        **{
            name: number(env, shadow_bound_env(name), getattr(defaults, name))
            for name in ShadowBounds.__dataclass_fields__
        }
    )


@dataclass(frozen=True)
class DeployerSettings:
    """Where and how the endpoint is deployed."""

    endpoint_name: str
    execution_role_arn: str
    instance_type: str
    instance_count: int
    data_capture_s3_uri: str
    kms_key_arn: str
    sns_topic_arn: str
    model_package_group_name: str
    rejection_alarm_name: str
    capture_sampling_percent: int = 100
    rollback_alarm_names: tuple[str, ...] = ()
    vpc_subnet_ids: tuple[str, ...] = ()
    vpc_security_group_ids: tuple[str, ...] = ()
    traffic_routing: str = DEFAULT_TRAFFIC_ROUTING
    traffic_step_percent: int = DEFAULT_TRAFFIC_STEP_PERCENT
    traffic_wait_seconds: int = DEFAULT_TRAFFIC_WAIT_SECONDS
    termination_wait_seconds: int = DEFAULT_TERMINATION_WAIT_SECONDS
    max_execution_seconds: int = DEFAULT_MAX_EXECUTION_SECONDS
    network_isolation: bool = True
    encrypt_volume_with_kms: bool = True
    #: The one role whose approvals count; empty: any approval counts (tests, local demo only).
    approver_role_arn: str = ""
    #: The queue the triggers arrive on; a trigger that must wait is made visible again later.
    queue_url: str = ""
    retry_seconds: int = RETRY_SECONDS
    #: Shadow stage: a new version first runs as a shadow variant beside the serving one.
    shadow_enabled: bool = False
    shadow_traffic_percent: int = DEFAULT_SHADOW_TRAFFIC_PERCENT
    shadow_minimum_minutes: int = DEFAULT_SHADOW_MINIMUM_MINUTES
    shadow_minimum_pairs: int = DEFAULT_SHADOW_MINIMUM_PAIRS
    shadow_bounds: ShadowBounds = DEFAULT_SHADOW_BOUNDS
    #: Application Auto Scaling of the production variant (registered by the deployer).
    autoscaling_enabled: bool = False
    autoscaling_min_instances: int = 1
    autoscaling_max_instances: int = 1
    autoscaling_target_invocations: float = 100.0
    scale_in_cooldown_seconds: int = DEFAULT_SCALE_IN_COOLDOWN
    scale_out_cooldown_seconds: int = DEFAULT_SCALE_OUT_COOLDOWN

    def __post_init__(self) -> None:
        required = {
            ENDPOINT_NAME_ENV: self.endpoint_name,
            EXECUTION_ROLE_ARN_ENV: self.execution_role_arn,
            INSTANCE_TYPE_ENV: self.instance_type,
            DATA_CAPTURE_S3_URI_ENV: self.data_capture_s3_uri,
            KMS_KEY_ARN_ENV: self.kms_key_arn,
            SNS_TOPIC_ARN_ENV: self.sns_topic_arn,
            MODEL_PACKAGE_GROUP_NAME_ENV: self.model_package_group_name,
            REJECTION_ALARM_NAME_ENV: self.rejection_alarm_name,
        }
        for name, value in required.items():
            if not value:
                raise SettingsError(f"{name} is not set")
        if self.instance_count < 1:
            raise SettingsError(f"{INSTANCE_COUNT_ENV} must be at least 1")
        if not self.data_capture_s3_uri.startswith("s3://") or not self.capture_bucket:
            raise SettingsError(f"{DATA_CAPTURE_S3_URI_ENV} must be an s3:// URI")
        if not 0 <= self.capture_sampling_percent <= 100:
            raise SettingsError(f"{CAPTURE_SAMPLING_PERCENT_ENV} must lie in [0, 100]")
        if bool(self.vpc_subnet_ids) != bool(self.vpc_security_group_ids):
            raise SettingsError(
                f"{VPC_SUBNET_IDS_ENV} and {VPC_SECURITY_GROUP_IDS_ENV} go together"
            )
        if self.traffic_routing not in TRAFFIC_ROUTING_TYPES:
            raise SettingsError(f"{TRAFFIC_ROUTING_ENV} must be one of {TRAFFIC_ROUTING_TYPES}")
        if not 1 <= self.traffic_step_percent <= _MAX_STEP_PERCENT:
            raise SettingsError(f"{TRAFFIC_STEP_PERCENT_ENV} must lie in [1, {_MAX_STEP_PERCENT}]")
        for name, seconds in (
            (TRAFFIC_WAIT_SECONDS_ENV, self.traffic_wait_seconds),
            (TERMINATION_WAIT_SECONDS_ENV, self.termination_wait_seconds),
        ):
            if not 0 <= seconds <= _MAX_WAIT_SECONDS:
                raise SettingsError(f"{name} must lie in [0, {_MAX_WAIT_SECONDS}]")
        if not _RETRY_RANGE[0] <= self.retry_seconds <= _RETRY_RANGE[1]:
            raise SettingsError(f"{RETRY_SECONDS_ENV} must lie in {list(_RETRY_RANGE)}")
        if len(self.rollback_alarm_names) > _MAX_ALARMS - 1:
            # AutoRollbackConfiguration takes at most 10 alarms; the rejection alarm is one.
            raise SettingsError(f"{ROLLBACK_ALARM_NAMES_ENV} names more than {_MAX_ALARMS - 1}")
        low, high = _MAX_EXECUTION_RANGE
        if not low <= self.max_execution_seconds <= high:
            raise SettingsError(f"{MAX_EXECUTION_SECONDS_ENV} must lie in [{low}, {high}]")
        self._check_shadow()
        self._check_autoscaling()

    def _check_shadow(self) -> None:
        if not 1 <= self.shadow_traffic_percent <= 100:
            raise SettingsError(f"{SHADOW_TRAFFIC_PERCENT_ENV} must lie in [1, 100]")
        if self.shadow_minimum_minutes < 0:
            raise SettingsError(f"{SHADOW_MINIMUM_MINUTES_ENV} must be at least 0")
        if self.shadow_minimum_pairs < 2:
            # Correlations need two pairs at the very least.
            raise SettingsError(f"{SHADOW_MINIMUM_PAIRS_ENV} must be at least 2")
        for name in ShadowBounds.__dataclass_fields__:
            value = getattr(self.shadow_bounds, name)
            if name == "max_latency_p95_ratio":
                valid = value >= 1.0
            elif name.startswith("min_"):
                valid = -1.0 <= value <= 1.0
            else:
                valid = 0.0 <= value <= 1.0
            if not valid:
                raise SettingsError(f"{shadow_bound_env(name)} is out of range")

    def _check_autoscaling(self) -> None:
        if not 1 <= self.autoscaling_min_instances <= self.autoscaling_max_instances:
            raise SettingsError(
                f"{AUTOSCALING_MIN_ENV} must be at least 1 and at most {AUTOSCALING_MAX_ENV}"
            )
        if self.autoscaling_target_invocations <= 0:
            raise SettingsError(f"{AUTOSCALING_TARGET_ENV} must be positive")
        for name, seconds in (
            (AUTOSCALING_SCALE_IN_COOLDOWN_ENV, self.scale_in_cooldown_seconds),
            (AUTOSCALING_SCALE_OUT_COOLDOWN_ENV, self.scale_out_cooldown_seconds),
        ):
            if seconds < 0:
                raise SettingsError(f"{name} must be at least 0")

    @property
    def capture_bucket(self) -> str:
        """The bucket of ``DATA_CAPTURE_S3_URI``; the drift baseline is kept there too."""
        return self.data_capture_s3_uri.removeprefix("s3://").split("/", 1)[0]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DeployerSettings:
        """Read the settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        return cls(
            endpoint_name=env.get(ENDPOINT_NAME_ENV, ""),
            execution_role_arn=env.get(EXECUTION_ROLE_ARN_ENV, ""),
            instance_type=env.get(INSTANCE_TYPE_ENV, ""),
            instance_count=integer(env, INSTANCE_COUNT_ENV, 1),
            data_capture_s3_uri=env.get(DATA_CAPTURE_S3_URI_ENV, "").rstrip("/"),
            kms_key_arn=env.get(KMS_KEY_ARN_ENV, ""),
            sns_topic_arn=env.get(SNS_TOPIC_ARN_ENV, ""),
            model_package_group_name=env.get(MODEL_PACKAGE_GROUP_NAME_ENV, ""),
            rejection_alarm_name=env.get(REJECTION_ALARM_NAME_ENV, ""),
            capture_sampling_percent=integer(env, CAPTURE_SAMPLING_PERCENT_ENV, 100),
            rollback_alarm_names=names(env, ROLLBACK_ALARM_NAMES_ENV),
            vpc_subnet_ids=names(env, VPC_SUBNET_IDS_ENV),
            vpc_security_group_ids=names(env, VPC_SECURITY_GROUP_IDS_ENV),
            traffic_routing=env.get(TRAFFIC_ROUTING_ENV, DEFAULT_TRAFFIC_ROUTING).upper(),
            traffic_step_percent=integer(
                env, TRAFFIC_STEP_PERCENT_ENV, DEFAULT_TRAFFIC_STEP_PERCENT
            ),
            traffic_wait_seconds=integer(
                env, TRAFFIC_WAIT_SECONDS_ENV, DEFAULT_TRAFFIC_WAIT_SECONDS
            ),
            termination_wait_seconds=integer(
                env, TERMINATION_WAIT_SECONDS_ENV, DEFAULT_TERMINATION_WAIT_SECONDS
            ),
            max_execution_seconds=integer(
                env, MAX_EXECUTION_SECONDS_ENV, DEFAULT_MAX_EXECUTION_SECONDS
            ),
            network_isolation=flag(env, NETWORK_ISOLATION_ENV, default=True),
            encrypt_volume_with_kms=flag(env, ENCRYPT_VOLUME_ENV, default=True),
            approver_role_arn=env.get(APPROVER_ROLE_ARN_ENV, ""),
            queue_url=env.get(QUEUE_URL_ENV, ""),
            retry_seconds=integer(env, RETRY_SECONDS_ENV, RETRY_SECONDS),
            shadow_enabled=flag(env, SHADOW_ENABLED_ENV, default=False),
            shadow_traffic_percent=integer(
                env, SHADOW_TRAFFIC_PERCENT_ENV, DEFAULT_SHADOW_TRAFFIC_PERCENT
            ),
            shadow_minimum_minutes=integer(
                env, SHADOW_MINIMUM_MINUTES_ENV, DEFAULT_SHADOW_MINIMUM_MINUTES
            ),
            shadow_minimum_pairs=integer(
                env, SHADOW_MINIMUM_PAIRS_ENV, DEFAULT_SHADOW_MINIMUM_PAIRS
            ),
            shadow_bounds=_bounds(env),
            autoscaling_enabled=flag(env, AUTOSCALING_ENABLED_ENV, default=False),
            autoscaling_min_instances=integer(env, AUTOSCALING_MIN_ENV, 1),
            autoscaling_max_instances=integer(env, AUTOSCALING_MAX_ENV, 1),
            autoscaling_target_invocations=number(env, AUTOSCALING_TARGET_ENV, 100.0),
            scale_in_cooldown_seconds=integer(
                env, AUTOSCALING_SCALE_IN_COOLDOWN_ENV, DEFAULT_SCALE_IN_COOLDOWN
            ),
            scale_out_cooldown_seconds=integer(
                env, AUTOSCALING_SCALE_OUT_COOLDOWN_ENV, DEFAULT_SCALE_OUT_COOLDOWN
            ),
        )
