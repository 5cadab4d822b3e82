"""Physical names of the resources that other stacks, the Lambdas or an operator address by name.

The endpoint is created at run time by the deployer Lambda, the rollback alarms are named in the
deployer's environment, and the Monitoring stack alarms on functions, the state machine and the
Glue job of stacks that depend on it (it owns the alert topic they publish to). Deriving every
such name here, from the stage prefix alone, keeps producer and watcher in step without
cross-stack references that would form a cycle.

The same holds for the IAM roles that read or write patient data: the data lake's key policy,
bucket policies and the de-identification secret's policy name them, yet those resources
deploy before the stacks that create the roles. The policies therefore match the role ARNs
built from these names in an ``aws:PrincipalArn`` condition (a condition value, unlike a
``Principal``, need not exist yet), and each role is created with exactly this name. IAM role
names are global to an account: one stage prefix per account.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws

#: Lambda functions of the platform: folder under lambdas/ -> physical name suffix.
LAMBDA_FUNCTIONS = {
    "predict": "predict",
    "deployer": "deployer",
    "registrar": "registrar",
    "drift_monitor": "drift-monitor",
    "cds_authorizer": "cds-authorizer",
    "batch_writer": "batch-writer",
}

#: Roles that resource policies name before the role exists: purpose -> what runs as it.
#: A platform Lambda's role is named like the function (``ResourceNames.function``).
ROLE_PURPOSES: dict[str, str] = {
    "etl": "the ETL Glue job",
    "training": "SageMaker training jobs",
    "serving": "the SageMaker endpoint (model download, data capture)",
    "approver": "reviewers who approve or reject model versions",
    "ingest": "operators and feeds that deliver raw extracts and ground-truth labels",
    **{suffix: f"the {suffix} Lambda" for suffix in LAMBDA_FUNCTIONS.values()},
}


@dataclass(frozen=True)
class ResourceNames:
    """Names derived from a stage prefix such as ``readmission-dev``."""

    prefix: str

    @property
    def endpoint(self) -> str:
        """The real-time endpoint the deployer creates and updates."""
        return f"{self.prefix}-endpoint"

    @property
    def model_package_group(self) -> str:
        return f"{self.prefix}-models"

    @property
    def glue_job(self) -> str:
        return f"{self.prefix}-ehr-features"

    @property
    def glue_security_configuration(self) -> str:
        return f"{self.prefix}-glue-security"

    @property
    def state_machine(self) -> str:
        return f"{self.prefix}-training"

    @property
    def batch_scoring_state_machine(self) -> str:
        """The nightly batch-scoring workflow."""
        return f"{self.prefix}-batch-scoring"

    @property
    def batch_transform_job_prefix(self) -> str:
        """Prefix of the nightly transform jobs' names (``<prefix>-<YYYYMMDD>-<run>``)."""
        return f"{self.prefix}-scoring"

    @property
    def worklist_table(self) -> str:
        """The DynamoDB table of the care team's worklist (written nightly, read by the page)."""
        return f"{self.prefix}-worklist"

    @property
    def alert_topic(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def api(self) -> str:
        return f"{self.prefix}-prediction-api"

    @property
    def deid_secret(self) -> str:
        """Secrets Manager name of the HMAC de-identification key."""
        return f"{self.prefix}/deidentification-key"

    def image_repository(self, image: str) -> str:
        """ECR repository of a derived image (``training`` or ``serving``)."""
        return f"{self.prefix}-{image}"

    @property
    def image_build_project(self) -> str:
        """The CodeBuild project that builds the derived images."""
        return f"{self.prefix}-image-build"

    def function(self, folder: str) -> str:
        """Physical name of the Lambda in ``lambdas/<folder>``."""
        return f"{self.prefix}-{LAMBDA_FUNCTIONS[folder]}"

    def role(self, purpose: str) -> str:
        """IAM role name of one of :data:`ROLE_PURPOSES`, e.g. ``readmission-dev-etl``."""
        if purpose not in ROLE_PURPOSES:
            raise ValueError(f"unknown role purpose {purpose!r}; known: {sorted(ROLE_PURPOSES)}")
        return f"{self.prefix}-{purpose}"

    def role_arn(self, purpose: str) -> str:
        """ARN of :meth:`role` in the deploying account (roles live under path ``/``)."""
        return f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{self.role(purpose)}"

    @property
    def audit_trail(self) -> str:
        """The CloudTrail trail that records PHI bucket data events (when the stage creates one)."""
        return f"{self.prefix}-audit"

    def alarm(self, purpose: str) -> str:
        """CloudWatch alarm name, e.g. ``readmission-dev-endpoint-latency-p95-rollback``."""
        return f"{self.prefix}-{purpose}"

    @property
    def feature_drift_alarm(self) -> str:
        return self.alarm("feature-drift")

    @property
    def rollback_latency_alarm(self) -> str:
        return self.alarm("endpoint-latency-p95-rollback")

    @property
    def rollback_5xx_alarm(self) -> str:
        return self.alarm("endpoint-5xx-rollback")

    @property
    def rejected_rollout_alarm(self) -> str:
        """Stops (rolls back) a blue/green update whose version is no longer approved."""
        return self.alarm("endpoint-rejected-rollout")

    @property
    def deployment_queue(self) -> str:
        """The deployer's FIFO queue of triggers (SQS appends ``.fifo``)."""
        return f"{self.prefix}-deployments.fifo"


def rollback_alarm_names(names: ResourceNames) -> tuple[str, str, str]:
    """Every alarm a blue/green update lists in its AutoRollbackConfiguration: latency, 5xx, and
    the rejection alarm (read by SageMaker with the serving role)."""
    return (names.rollback_latency_alarm, names.rollback_5xx_alarm, names.rejected_rollout_alarm)
