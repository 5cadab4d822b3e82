"""Reconcile the endpoint with the registry: serve the highest version a person approved.

The deployer is level-triggered. Whatever woke it (an approval or rejection, an endpoint state
change, the periodic sweep), it reads the registry and the endpoint and moves the endpoint one step
towards the desired state:

* desired: the highest version whose status is ``Approved`` by the approver role, that can be
  deployed and has not already failed to deploy for that approval (lambdas/deployer/failures.py);
  none when no version qualifies;
* an endpoint rolling out a version that is no longer approved (a rejection during a blue/green
  update) is made to roll back: the rejection metric is published and the rejection alarm, which
  every update lists in its AutoRollbackConfiguration, is set to ALARM;
* an endpoint that is changing (``Creating``, ``Updating``, ...) is left alone: the trigger is
  retried once the endpoint settles (the queue redelivers it; the state change event also wakes
  the deployer);
* a ``Failed`` endpoint is deleted (the only operation SageMaker allows on one); the next look
  creates it again with the desired version;
* an ``InService`` endpoint on another version is updated blue/green (all at once, when the served
  version is no longer approved); with no desired version it is deleted, so that nothing serves;
* the drift baseline follows the version that actually serves, so it switches when an update
  completes and stays put when one rolls back;
* with the shadow stage on (``SHADOW_ENABLED``), a new version first runs as a shadow variant
  beside the serving one (:meth:`Reconciler._start_shadow`); after ``SHADOW_MINIMUM_MINUTES`` and
  with ``SHADOW_MINIMUM_PAIRS`` captured pairs it is compared with the serving version
  (lambdas/deployer/comparison.py) and either promoted through the blue/green canary or held:
  the on-call is told, the shadow removed, and the held approval is not tried again
  (lambdas/deployer/shadow.py keeps the decision). A candidate no longer desired (rejected,
  held, superseded) loses its shadow; it never serves;
* with autoscaling on, the production variant is kept registered with Application Auto Scaling
  (lambdas/deployer/autoscaling.py).

An outcome is ``settled`` when the endpoint is where it should be; otherwise the caller looks again
later. Everything takes its boto3 clients as arguments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from contracts.deployment import (
    ENDPOINT_DIMENSION,
    METRIC_NAMESPACE,
    REJECTED_ROLLOUT_METRIC,
    SHADOW_COMPARISON_METRICS,
    SHADOW_HELD_METRIC,
    SHADOW_VARIANT_NAME,
    TAG_SHADOW_CANDIDATE_CONFIG,
    TAG_SHADOW_PACKAGE_ARN,
    VARIANT_NAME,
)
from contracts.serving import CONTENT_TYPE_JSON, TAG_MODEL_PACKAGE_ARN, TAG_MODEL_VERSION
from lambdas.deployer import autoscaling, comparison, failures, shadow
from lambdas.deployer.baseline import (
    BaselineArtifactError,
    activate_baseline,
    split_s3_uri,
    stage_baseline,
)
from lambdas.deployer.endpoint import (
    FAILED,
    IN_SERVICE,
    TAG_DEPLOY_ATTEMPT,
    TAG_REJECTED_ROLLOUT,
    TAG_SHADOW_SINCE,
    TRANSITIONAL,
    UPDATING,
    EndpointView,
    attempt_value,
    observe,
    split_attempt,
    tag,
)
from lambdas.deployer.events import APPROVED, Trigger
from lambdas.deployer.registry import (
    ModelPackage,
    ModelPackageError,
    approved_by_person,
    approved_versions,
    describe_package,
    error_code,
    is_not_found,
)
from lambdas.deployer.settings import DeployerSettings

logger = Logger(service="deployer", child=True)

MAX_RESOURCE_NAME = 63
DIGEST_CHARS = 8
SNS_SUBJECT_MAX = 100

# Outcomes. Settled: the endpoint is where it should be.
ALREADY_SERVING = "already_serving"
NOTHING_TO_SERVE = "nothing_to_serve"
IGNORED = "ignored"
# Not settled: something is under way; look again later.
CREATING = "creating"
DEPLOYING = "deploying"
ROLLING_BACK = "rolling_back"
STOPPING_REJECTED_ROLLOUT = "stopping_rejected_rollout"
WAITING = "waiting"
DELETING = "deleting"
DEPLOYMENT_FAILED = "deployment_failed"
# Shadow stage. Settled while the candidate shadows (the sweep looks again); not while the
# endpoint changes to start, promote or drop a shadow.
SHADOWING = "shadowing"
STARTING_SHADOW = "starting_shadow"
PROMOTING = "promoting"
HOLDING = "holding"
DROPPING_SHADOW = "dropping_shadow"


class DeploymentError(RuntimeError):
    """A step failed in a way worth retrying as it is (throttling, a service error)."""


@dataclass(frozen=True)
class Clients:
    """The boto3 clients the deployer uses."""

    sagemaker: Any
    s3: Any
    sns: Any
    cloudwatch: Any
    #: Application Auto Scaling; only used with AUTOSCALING_ENABLED.
    autoscaling: Any = None


@dataclass(frozen=True)
class Outcome:
    """What one reconciliation did; no identifiers beyond resource names and versions."""

    action: str
    reason: str
    settled: bool
    model_package_version: int | None = None
    endpoint_config_name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, logged by the handler."""
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """The SageMaker requests that deploy one approved version."""

    package: ModelPackage
    model: Mapping[str, Any]
    config: Mapping[str, Any]

    @property
    def config_name(self) -> str:
        return str(self.config["EndpointConfigName"])

    @property
    def attempt(self) -> str:
        return attempt_value(self.config_name, self.package.approval_stamp)


def resource_name(endpoint_name: str, version: int, spec: Mapping[str, Any]) -> str:
    """``<endpoint>-v<version>-<digest of spec>``, within SageMaker's 63-character limit."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    suffix = f"-v{version}-{digest[:DIGEST_CHARS]}"
    return endpoint_name[: MAX_RESOURCE_NAME - len(suffix)].rstrip("-") + suffix


def _tags(package: ModelPackage) -> list[dict[str, str]]:
    return [
        {"Key": TAG_MODEL_VERSION, "Value": str(package.version)},
        {"Key": TAG_MODEL_PACKAGE_ARN, "Value": package.arn},
    ]


def model_request(package: ModelPackage, settings: DeployerSettings) -> dict[str, Any]:
    """CreateModel arguments (name included) for a package version."""
    spec: dict[str, Any] = {
        "ExecutionRoleArn": settings.execution_role_arn,
        "PrimaryContainer": {
            "Image": package.image,
            "ModelDataUrl": package.model_data_url,
            "Environment": package.environment,
        },
        "EnableNetworkIsolation": settings.network_isolation,
    }
    if settings.vpc_subnet_ids:
        spec["VpcConfig"] = {
            "Subnets": list(settings.vpc_subnet_ids),
            "SecurityGroupIds": list(settings.vpc_security_group_ids),
        }
    name = resource_name(settings.endpoint_name, package.version, spec)
    return {"ModelName": name, **spec, "Tags": _tags(package)}


def _variant(
    name: str, model_name: str, settings: DeployerSettings, weight: float
) -> dict[str, Any]:
    return {
        "VariantName": name,
        "ModelName": model_name,
        "InstanceType": settings.instance_type,
        "InitialInstanceCount": settings.instance_count,
        "InitialVariantWeight": weight,
    }


def endpoint_config_request(
    package: ModelPackage, model_name: str, settings: DeployerSettings
) -> dict[str, Any]:
    """CreateEndpointConfig arguments (name included): capture on, KMS, the version tags."""
    spec: dict[str, Any] = {
        "ProductionVariants": [_variant(VARIANT_NAME, model_name, settings, 1.0)],
        "DataCaptureConfig": _capture(settings),
    }
    if settings.encrypt_volume_with_kms:
        spec["KmsKeyId"] = settings.kms_key_arn
    name = resource_name(settings.endpoint_name, package.version, spec)
    return {"EndpointConfigName": name, **spec, "Tags": _tags(package)}


def shadow_config_request(
    serving: Plan, candidate: Plan, settings: DeployerSettings
) -> dict[str, Any]:
    """CreateEndpointConfig arguments of the serving version with the candidate in shadow.

    "If you use this field, you can only specify one variant for ProductionVariants and one
    variant for ShadowProductionVariants" (API_CreateEndpointConfig). Traffic share: AWS's own
    example (https://docs.aws.amazon.com/sagemaker/latest/dg/model-shadow-deployment.html) gives
    both variants weight 1 for a full copy; the shadow test's "traffic sampling percentage"
    (shadow-tests-create.html) is the shadow's weight against the production variant's, so
    ``SHADOW_TRAFFIC_PERCENT`` / 100 against 1.0. The production variant keeps its name
    (``AllTraffic``): blue/green guardrails need "the same variant name as the old endpoint
    configuration" (deployment-guardrails-exclusions.html), so starting, promoting and dropping
    a shadow are all ordinary guarded updates. The endpoint's DataCaptureConfig captures both
    variants. The config carries the serving version's tags (it is what serves) and names the
    candidate and the config it would be promoted to.
    """
    spec: dict[str, Any] = {
        "ProductionVariants": [
            _variant(VARIANT_NAME, str(serving.model["ModelName"]), settings, 1.0)
        ],
        "ShadowProductionVariants": [
            _variant(
                SHADOW_VARIANT_NAME,
                str(candidate.model["ModelName"]),
                settings,
                settings.shadow_traffic_percent / 100,
            )
        ],
        "DataCaptureConfig": _capture(settings),
    }
    if settings.encrypt_volume_with_kms:
        spec["KmsKeyId"] = settings.kms_key_arn
    name = resource_name(settings.endpoint_name, candidate.package.version, {"shadow": spec})
    tags = [
        *_tags(serving.package),
        {"Key": TAG_SHADOW_PACKAGE_ARN, "Value": candidate.package.arn},
        {"Key": TAG_SHADOW_CANDIDATE_CONFIG, "Value": candidate.config_name},
    ]
    return {"EndpointConfigName": name, **spec, "Tags": tags}


def _capture(settings: DeployerSettings) -> dict[str, Any]:
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": settings.capture_sampling_percent,
        "DestinationS3Uri": settings.data_capture_s3_uri,
        "KmsKeyId": settings.kms_key_arn,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": [CONTENT_TYPE_JSON]},
    }


def deployment_config(settings: DeployerSettings, *, rollback: bool) -> dict[str, Any]:
    """Blue/green update policy.

    Every update lists the rejection alarm, so a version rejected while it rolls out is rolled
    back by SageMaker. A rollback (the served version is no longer approved) shifts all at once
    and without the latency and error alarms: they may be firing because of the version being
    replaced, and would undo the rollback.
    """
    routing: dict[str, Any] = {
        "Type": "ALL_AT_ONCE" if rollback else settings.traffic_routing,
        "WaitIntervalInSeconds": settings.traffic_wait_seconds,
    }
    step = {"Type": "CAPACITY_PERCENT", "Value": settings.traffic_step_percent}
    if routing["Type"] == "CANARY":
        routing["CanarySize"] = step
    elif routing["Type"] == "LINEAR":
        routing["LinearStepSize"] = step
    alarms = [settings.rejection_alarm_name]
    if not rollback:
        alarms.extend(settings.rollback_alarm_names)
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": settings.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": settings.max_execution_seconds,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarms]},
    }


def notify(sns: Any, settings: DeployerSettings, status: str, details: Mapping[str, Any]) -> None:
    """Publish a short JSON message: endpoint, status, version, error type; never raises."""
    subject = f"Readmission endpoint {settings.endpoint_name}: {status}"[:SNS_SUBJECT_MAX]
    message = {"endpoint": settings.endpoint_name, "status": status, **details}
    try:
        sns.publish(TopicArn=settings.sns_topic_arn, Subject=subject, Message=json.dumps(message))
    except ClientError as error:
        # The deployment's own outcome matters more than the notice: log, carry on.
        logger.warning("SNS notice not sent", extra={"error_code": error_code(error)})


class Reconciler:
    """One look at the registry and the endpoint, and the one step that follows."""

    def __init__(
        self,
        settings: DeployerSettings,
        clients: Clients,
        trigger: Trigger | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.trigger = trigger
        self.sagemaker = clients.sagemaker
        self.now = now

    # -- what should serve ------------------------------------------------------------------

    def approved(self, package: ModelPackage | None) -> bool:
        return package is not None and approved_by_person(package, self.settings.approver_role_arn)

    def plan(self, package: ModelPackage) -> Plan:
        """The requests for ``package`` (raises ModelPackageError if it cannot deploy)."""
        model = model_request(package, self.settings)
        config = endpoint_config_request(package, model["ModelName"], self.settings)
        return Plan(package, model, config)

    def desired(self) -> Plan | None:
        """The highest approved version that can deploy and has not failed for its approval."""
        for arn in approved_versions(self.sagemaker, self.settings.model_package_group_name):
            package = describe_package(self.sagemaker, arn)
            if package is None:
                continue
            if not self.approved(package):
                self._tell_about(package, "approval not made by the approver role; not deployed")
                continue
            try:
                plan = self.plan(package)
            except ModelPackageError:
                self._tell_about(package, "approved version cannot be deployed as registered")
                continue
            if self._failed_before(plan.config_name, package.approval_stamp):
                continue
            if self.settings.shadow_enabled and self._held(plan):
                continue
            return plan
        return None

    def _held(self, plan: Plan) -> bool:
        """Held in shadow for this approval (an operator's ``promote`` lifts it)."""
        decided = self._decision(plan)
        return decided is not None and decided.decision == comparison.HOLD

    def _tell_about(self, package: ModelPackage, status: str) -> None:
        """Notify once per approval event: only when this trigger is that version's change."""
        trigger = self.trigger
        if trigger is None or trigger.model_package_arn != package.arn:
            return
        if trigger.approval_status != APPROVED:
            return
        notify(self.clients.sns, self.settings, status, {"model_package_version": package.version})

    def _failed_before(self, config_name: str, stamp: str) -> bool:
        return failures.has_failed(
            self.clients.s3,
            self.settings.capture_bucket,
            self.settings.endpoint_name,
            config_name,
            stamp,
        )

    def _record_failure(self, config_name: str, stamp: str) -> None:
        failures.record_failure(
            self.clients.s3,
            self.settings.capture_bucket,
            self.settings.endpoint_name,
            config_name,
            stamp,
            self.settings.kms_key_arn,
        )

    # -- the step ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        """Move the endpoint one step towards serving the desired version."""
        endpoint = observe(self.sagemaker, self.settings.endpoint_name)
        if endpoint is not None and endpoint.status in TRANSITIONAL:
            return self._while_changing(endpoint)
        if endpoint is not None and endpoint.status == FAILED:
            return self._delete_failed(endpoint)
        served = (
            describe_package(self.sagemaker, endpoint.served_package_arn)
            if endpoint is not None and endpoint.served_package_arn
            else None
        )
        if endpoint is not None:
            self._note_unfinished_attempt(endpoint, served)
        served_ok = self.approved(served)
        if served is not None and served_ok:
            # The baseline follows what serves: switched once an update completes, left (or put
            # back) on the old version when one rolls back.
            self._activate(served)
        target = self.desired()
        shadowing = endpoint is not None and endpoint.shadow_package_arn is not None
        if target is None:
            if endpoint is None:
                return Outcome(NOTHING_TO_SERVE, "no version is approved", settled=True)
            if served_ok:
                return self._settled(
                    endpoint,
                    Outcome(ALREADY_SERVING, "the served version is the only one approved", True),
                )
            return self._retire(endpoint, served)
        if endpoint is not None and served is not None and served.arn == target.package.arn:
            if shadowing:
                # The candidate was rejected, held or superseded: it never serves.
                return self._deploy(
                    target,
                    endpoint,
                    rollback=False,
                    status="shadow candidate dropped, serving version kept",
                    action=DROPPING_SHADOW,
                )
            return self._settled(
                endpoint,
                Outcome(
                    ALREADY_SERVING,
                    "the endpoint serves the desired version",
                    settled=True,
                    model_package_version=served.version,
                    endpoint_config_name=endpoint.config_name,
                ),
            )
        if endpoint is None or served is None or not served_ok or not self.settings.shadow_enabled:
            return self._deploy(target, endpoint, rollback=endpoint is not None and not served_ok)
        decided = self._decision(target)
        if decided is not None and decided.decision == comparison.PROMOTE:
            return self._deploy(
                target, endpoint, rollback=False, status="promoting from shadow", action=PROMOTING
            )
        if endpoint.shadow_package_arn == target.package.arn:
            return self._evaluate_shadow(target, endpoint, served)
        return self._start_shadow(target, endpoint, served)

    def _settled(self, endpoint: EndpointView, outcome: Outcome) -> Outcome:
        """On a settled endpoint: keep the production variant registered for autoscaling."""
        if self.settings.autoscaling_enabled and self.clients.autoscaling is not None:
            try:
                autoscaling.keep_registered(self.clients.autoscaling, self.settings, VARIANT_NAME)
                autoscaling.report_capacity(
                    self.clients.cloudwatch, self.settings, endpoint.current_instance_count
                )
            except ClientError as error:
                # Serving does not depend on it; the next look tries again.
                logger.warning("autoscaling not kept", extra={"error_code": error_code(error)})
        return outcome

    # -- the shadow stage -------------------------------------------------------------------

    def _decision(self, plan: Plan) -> shadow.DecisionRecord | None:
        return shadow.read_decision(
            self.clients.s3,
            self.settings.capture_bucket,
            self.settings.endpoint_name,
            plan.config_name,
            plan.package.approval_stamp,
        )

    def _start_shadow(self, target: Plan, endpoint: EndpointView, served: ModelPackage) -> Outcome:
        """Run ``target`` as a shadow variant beside the served version (an endpoint update)."""
        serving_plan = self.plan(served)
        request = shadow_config_request(serving_plan, target, self.settings)
        return self._deploy(
            target,
            endpoint,
            rollback=False,
            status="candidate started in shadow",
            config=request,
            action=STARTING_SHADOW,
        )

    def _shadow_since(self, endpoint: EndpointView, target: Plan) -> datetime:
        """When this shadow of this approval was first seen InService (an endpoint tag).

        Keyed by config and approval stamp: a candidate approved again after a hold gets the
        same (deterministically named) shadow config, and a new period.
        """
        key = f"{endpoint.config_name}#{target.package.approval_stamp}"
        recorded = split_attempt(endpoint.tags.get(TAG_SHADOW_SINCE))
        if recorded is not None and recorded[0] == key:
            try:
                return datetime.fromtimestamp(int(recorded[1]), tz=UTC)
            except ValueError:
                pass
        now = self.now()
        tag(
            self.sagemaker,
            endpoint.arn,
            TAG_SHADOW_SINCE,
            attempt_value(key, str(int(now.timestamp()))),
        )
        return now

    def _evaluate_shadow(
        self, target: Plan, endpoint: EndpointView, served: ModelPackage
    ) -> Outcome:
        """Wait, promote or hold the candidate in shadow."""
        settings = self.settings
        since = self._shadow_since(endpoint, target)
        now = self.now()
        version = target.package.version
        if now - since < timedelta(minutes=settings.shadow_minimum_minutes):
            return self._settled(
                endpoint,
                Outcome(SHADOWING, "the candidate shadows: period not over", True, version),
            )
        try:
            result = self._compare(target, served, since, now)
        except (shadow.ShadowArtifactError, ValueError) as error:
            result = None
            logger.warning("shadow comparison failed", extra={"error_type": type(error).__name__})
        if result is None:
            found, verdict = (
                None,
                comparison.Decision(comparison.HOLD, ("decision threshold unreadable",)),
            )
        else:
            found, verdict = result
        if verdict.verdict == comparison.WAIT:
            return self._settled(
                endpoint,
                Outcome(SHADOWING, "the candidate shadows: too few captured pairs", True, version),
            )
        return self._act_on(verdict, found, target, endpoint, served)

    def _act_on(
        self,
        verdict: comparison.Decision,
        found: comparison.Comparison | None,
        target: Plan,
        endpoint: EndpointView,
        served: ModelPackage,
    ) -> Outcome:
        """Record and publish a promote or hold decision, then start what it calls for."""
        settings = self.settings
        summary = {} if found is None else found.as_dict()
        self._publish_comparison(found, held=verdict.verdict == comparison.HOLD)
        shadow.record_decision(
            self.clients.s3,
            settings.capture_bucket,
            settings.endpoint_name,
            target.config_name,
            target.package.approval_stamp,
            shadow.DecisionRecord(verdict.verdict, summary, verdict.reasons),
            settings.kms_key_arn,
        )
        if verdict.verdict == comparison.PROMOTE:
            return self._deploy(
                target,
                endpoint,
                rollback=False,
                status="shadow comparison passed, promoting through the canary",
                details={"comparison": summary},
                action=PROMOTING,
            )
        # Held: the shadow goes, the serving version stays, the on-call decides.
        return self._deploy(
            self.plan(served),
            endpoint,
            rollback=False,
            status="shadow candidate held, serving version kept",
            details={
                "candidate_version": target.package.version,
                "comparison": summary,
                "reasons": list(verdict.reasons),
            },
            action=HOLDING,
        )

    def _compare(
        self, target: Plan, served: ModelPackage, since: datetime, now: datetime
    ) -> tuple[comparison.Comparison, comparison.Decision]:
        settings, s3, cloudwatch = self.settings, self.clients.s3, self.clients.cloudwatch
        name = settings.endpoint_name
        serving_load = shadow.variant_load(cloudwatch, name, VARIANT_NAME, since, now)
        candidate_load = shadow.variant_load(cloudwatch, name, SHADOW_VARIANT_NAME, since, now)
        uri = settings.data_capture_s3_uri
        pairs = shadow.captured_pairs(
            shadow.variant_answers(s3, uri, name, VARIANT_NAME, since, now),
            shadow.variant_answers(s3, uri, name, SHADOW_VARIANT_NAME, since, now),
        )
        enough = len(pairs) >= settings.shadow_minimum_pairs
        found = comparison.compare(
            pairs,
            serving_load,
            candidate_load,
            serving_threshold=(
                shadow.decision_threshold(s3, served.model_data_url) if enough else None
            ),
            candidate_threshold=(
                shadow.decision_threshold(s3, target.package.model_data_url) if enough else None
            ),
        )
        return found, comparison.decide(
            found, settings.shadow_bounds, settings.shadow_minimum_pairs
        )

    def _publish_comparison(self, found: comparison.Comparison | None, *, held: bool) -> None:
        dimensions = [{"Name": ENDPOINT_DIMENSION, "Value": self.settings.endpoint_name}]
        data = [
            {
                "MetricName": SHADOW_HELD_METRIC,
                "Dimensions": dimensions,
                "Value": float(held),
                "Unit": "Count",
            }
        ]
        values = {} if found is None else found.as_dict()
        for key, metric in SHADOW_COMPARISON_METRICS.items():
            value = values.get(key)
            if isinstance(value, int | float):
                data.append(
                    {
                        "MetricName": metric,
                        "Dimensions": dimensions,
                        "Value": float(value),
                        "Unit": "None",
                    }
                )
        self.clients.cloudwatch.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=data)

    def _while_changing(self, endpoint: EndpointView) -> Outcome:
        """Leave a changing endpoint alone, unless what it rolls out is no longer approved."""
        incoming_arn = endpoint.incoming_package_arn
        if incoming_arn is not None:
            incoming = describe_package(self.sagemaker, incoming_arn)
            if not self.approved(incoming):
                return self._stop_rejected_rollout(endpoint, incoming)
        return Outcome(WAITING, f"the endpoint is {endpoint.status}", settled=False)

    def _stop_rejected_rollout(
        self, endpoint: EndpointView, incoming: ModelPackage | None
    ) -> Outcome:
        """Make SageMaker roll back an update whose version is no longer approved."""
        cloudwatch = self.clients.cloudwatch
        version = None if incoming is None else incoming.version
        cloudwatch.put_metric_data(
            Namespace=METRIC_NAMESPACE,
            MetricData=[
                {
                    "MetricName": REJECTED_ROLLOUT_METRIC,
                    "Dimensions": [{"Name": ENDPOINT_DIMENSION, "Value": endpoint.name}],
                    "Value": 1.0,
                    "Unit": "Count",
                }
            ],
        )
        rolling_out = endpoint.pending_config_name or endpoint.config_name
        if endpoint.status == UPDATING:
            # Immediate: the metric alone would wait for the alarm's next evaluation.
            cloudwatch.set_alarm_state(
                AlarmName=self.settings.rejection_alarm_name,
                StateValue="ALARM",
                StateReason="The version being rolled out is no longer approved",
            )
            status = "rejected version being rolled out, rollback started"
        else:
            # A first creation cannot be stopped. Its InService state change wakes the deployer,
            # whose next look replaces or deletes it (docs/operations.md states the window).
            status = "rejected version being created; replaced as soon as creation ends"
        if endpoint.tags.get(TAG_REJECTED_ROLLOUT) != rolling_out:
            tag(self.sagemaker, endpoint.arn, TAG_REJECTED_ROLLOUT, rolling_out)
            notify(self.clients.sns, self.settings, status, {"rejected_version": version})
        return Outcome(
            STOPPING_REJECTED_ROLLOUT,
            "the version being rolled out is no longer approved",
            settled=False,
            model_package_version=version,
            endpoint_config_name=rolling_out,
        )

    def _delete_failed(self, endpoint: EndpointView) -> Outcome:
        """A Failed endpoint accepts DeleteEndpoint only; delete it so deployments go on."""
        attempt = split_attempt(endpoint.attempt)
        if attempt is not None:
            self._record_failure(*attempt)
        self.sagemaker.delete_endpoint(EndpointName=endpoint.name)
        notify(
            self.clients.sns,
            self.settings,
            "endpoint failed and was deleted; the next approved version will be deployed",
            {"failed_endpoint_config": endpoint.config_name},
        )
        return Outcome(DELETING, "the endpoint had failed", settled=False)

    def _note_unfinished_attempt(self, endpoint: EndpointView, served: ModelPackage | None) -> None:
        """An endpoint back on another config than the one last deployed: that one rolled back."""
        attempt = split_attempt(endpoint.attempt)
        if attempt is None or attempt[0] in (
            endpoint.config_name,
            endpoint.shadow_candidate_config,
        ):
            return
        config_name, stamp = attempt
        if self._failed_before(config_name, stamp):
            return
        self._record_failure(config_name, stamp)
        notify(
            self.clients.sns,
            self.settings,
            "deployment rolled back, previous version still serving",
            {
                "rolled_back_endpoint_config": config_name,
                "serving_version": None if served is None else served.version,
            },
        )

    def _retire(self, endpoint: EndpointView, served: ModelPackage | None) -> Outcome:
        """No version may serve: delete the endpoint (the API answers 503 until one may)."""
        self.sagemaker.delete_endpoint(EndpointName=endpoint.name)
        notify(
            self.clients.sns,
            self.settings,
            "served version no longer approved and no approved version to roll back to; "
            "endpoint deleted",
            {"rejected_version": None if served is None else served.version},
        )
        return Outcome(DELETING, "no approved version may serve", settled=False)

    def _activate(self, package: ModelPackage) -> None:
        """Point the drift monitor at the served version's baseline (idempotent)."""
        settings = self.settings
        try:
            stage_baseline(
                self.clients.s3,
                settings.capture_bucket,
                settings.endpoint_name,
                package.version,
                package.model_data_url,
                settings.kms_key_arn,
            )
            switched = activate_baseline(
                self.clients.s3,
                settings.capture_bucket,
                settings.endpoint_name,
                package.version,
                settings.kms_key_arn,
            )
        except (ClientError, BaselineArtifactError, ModelPackageError, ValueError) as error:
            # The endpoint serves regardless; the next look tries again.
            logger.warning(
                "drift baseline not switched", extra={"error_type": type(error).__name__}
            )
            return
        if switched:
            notify(
                self.clients.sns,
                settings,
                "version now serving",
                {"model_package_version": package.version},
            )

    def _deploy(
        self,
        plan: Plan,
        endpoint: EndpointView | None,
        *,
        rollback: bool,
        status: str | None = None,
        config: Mapping[str, Any] | None = None,
        action: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Create the model and config if needed, then create or update the endpoint.

        ``config`` replaces the plan's own config (a shadow config: the plan's model beside the
        serving one); the attempt recorded is always the plan's, so a shadow that fails to start
        counts as this approval's failed deployment.
        """
        sagemaker = self.sagemaker
        package = plan.package
        config = plan.config if config is None else config
        config_name = str(config["EndpointConfigName"])
        try:
            self._ensure(sagemaker.describe_model, sagemaker.create_model, plan.model, "ModelName")
            self._ensure(
                sagemaker.describe_endpoint_config,
                sagemaker.create_endpoint_config,
                config,
                "EndpointConfigName",
            )
            # Read the artifact before any traffic moves: a missing or unreadable model archive
            # stops here, with the old version serving.
            stage_baseline(
                self.clients.s3,
                self.settings.capture_bucket,
                self.settings.endpoint_name,
                package.version,
                package.model_data_url,
                self.settings.kms_key_arn,
            )
        except (BaselineArtifactError, ValueError) as error:
            return self._cannot_deploy(plan, error)
        except ClientError as error:
            if _is_permanent(error):
                return self._cannot_deploy(plan, error)
            raise DeploymentError("preparing the deployment failed") from error
        try:
            if endpoint is None:
                sagemaker.create_endpoint(
                    EndpointName=self.settings.endpoint_name,
                    EndpointConfigName=config_name,
                    Tags=[{"Key": TAG_DEPLOY_ATTEMPT, "Value": plan.attempt}],
                )
                action = CREATING
            else:
                self._protect_capacity(endpoint)
                sagemaker.update_endpoint(
                    EndpointName=endpoint.name,
                    EndpointConfigName=config_name,
                    DeploymentConfig=deployment_config(self.settings, rollback=rollback),
                )
                tag(sagemaker, endpoint.arn, TAG_DEPLOY_ATTEMPT, plan.attempt)
                action = action or (ROLLING_BACK if rollback else DEPLOYING)
        except ClientError as error:
            if error_code(error) == "ValidationException":
                # Most often the endpoint started changing since we looked: look again later.
                return Outcome(WAITING, "the endpoint did not accept the change", settled=False)
            raise DeploymentError("starting the deployment failed") from error
        status = status or {
            CREATING: "deployment started",
            DEPLOYING: "deployment started",
            ROLLING_BACK: "served version no longer approved, rolling back",
        }.get(action, "deployment started")
        notify(
            self.clients.sns,
            self.settings,
            status,
            {
                "model_package_version": package.version,
                "endpoint_config": config_name,
                **(details or {}),
            },
        )
        return Outcome(
            action,
            status,
            settled=False,
            model_package_version=package.version,
            endpoint_config_name=config_name,
        )

    def _protect_capacity(self, endpoint: EndpointView) -> None:
        """Before an update: suspend scale-in, or deregister if the instance type changes."""
        if not self.settings.autoscaling_enabled or self.clients.autoscaling is None:
            return
        current = self.sagemaker.describe_endpoint_config(EndpointConfigName=endpoint.config_name)
        variants = current.get("ProductionVariants") or [{}]
        autoscaling.prepare_update(
            self.clients.autoscaling,
            self.settings,
            VARIANT_NAME,
            instance_type_changes=variants[0].get("InstanceType") != self.settings.instance_type,
        )

    @staticmethod
    def _ensure(describe: Any, create: Any, request: Mapping[str, Any], name_key: str) -> None:
        try:
            describe(**{name_key: request[name_key]})
        except ClientError as error:
            if not is_not_found(error):
                raise
            create(**request)

    def _cannot_deploy(self, plan: Plan, error: BaseException) -> Outcome:
        """This approval of the version cannot deploy: remember it, tell, and move on."""
        package = plan.package
        self._record_failure(plan.config_name, package.approval_stamp)
        notify(
            self.clients.sns,
            self.settings,
            "approved version cannot be deployed, previous version still serving",
            {
                "model_package_version": package.version,
                "error_type": type(error).__name__,
                "error_code": error_code(error) if isinstance(error, ClientError) else "",
            },
        )
        return Outcome(
            DEPLOYMENT_FAILED,
            "the approved version cannot be deployed",
            settled=False,
            model_package_version=package.version,
            endpoint_config_name=plan.config_name,
        )


#: Errors that will not go away by retrying the same requests.
_PERMANENT_CODES = ("ValidationException", "NoSuchKey", "NoSuchBucket", "AccessDenied", "404")


def _is_permanent(error: ClientError) -> bool:
    return error_code(error) in _PERMANENT_CODES


def utc_now() -> datetime:
    """The reconciler's clock (the shadow period is measured with it)."""
    return datetime.now(UTC)


def reconcile(
    settings: DeployerSettings, clients: Clients, trigger: Trigger | None = None
) -> Outcome:
    """One reconciliation step (see the module docstring)."""
    return Reconciler(settings, clients, trigger, now=lambda: utc_now()).run()


__all__ = [
    "ALREADY_SERVING",
    "CREATING",
    "DELETING",
    "DEPLOYING",
    "DEPLOYMENT_FAILED",
    "DROPPING_SHADOW",
    "HOLDING",
    "IGNORED",
    "IN_SERVICE",
    "NOTHING_TO_SERVE",
    "PROMOTING",
    "ROLLING_BACK",
    "SHADOWING",
    "STARTING_SHADOW",
    "STOPPING_REJECTED_ROLLOUT",
    "VARIANT_NAME",
    "WAITING",
    "Clients",
    "DeploymentError",
    "Outcome",
    "deployment_config",
    "endpoint_config_request",
    "model_request",
    "notify",
    "reconcile",
    "resource_name",
    "split_s3_uri",
]
