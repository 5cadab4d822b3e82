"""The shadow stage and autoscaling, driven through the deployer's handler with scripted states.

The account is the scenario tests' (tests/lambdas/test_deployer_scenarios.py): a scripted
SageMaker endpoint, moto S3 for archives, baselines, decisions and the data capture, and a
CloudWatch whose AWS/SageMaker variant statistics each test sets. Captured traffic is written as
SageMaker writes it (``capture/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``,
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html); the
reconciler's clock is the test's.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.deployment import (
    AT_MAX_CAPACITY_METRIC,
    SHADOW_HELD_METRIC,
    SHADOW_VARIANT_NAME,
)
from lambdas.deployer import deployment
from lambdas.deployer.autoscaling import resource_id
from lambdas.deployer.shadow import decision_key
from tests.lambdas.deployer_sim import FakeAutoScaling
from tests.lambdas.test_deployer_scenarios import (
    CAPTURE_BUCKET,
    ENDPOINT,
    THRESHOLD,
    Account,
    account,  # noqa: F401  (the fixture, reached through request.getfixturevalue)
    serving,
)

START = datetime(2026, 3, 2, 9, 10, tzinfo=UTC)
MINIMUM_MINUTES = 30
MINIMUM_PAIRS = 40
SERVING = deployment.VARIANT_NAME


class Clock:
    def __init__(self) -> None:
        self.now = START

    def advance(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(deployment, "utc_now", lambda: clock.now)
    return clock


@pytest.fixture
def shadow_account(
    request: pytest.FixtureRequest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> Account:
    fake: Account = request.getfixturevalue("account")
    for name, value in {
        "SHADOW_ENABLED": "true",
        "SHADOW_TRAFFIC_PERCENT": "20",
        "SHADOW_MINIMUM_MINUTES": str(MINIMUM_MINUTES),
        "SHADOW_MINIMUM_PAIRS": str(MINIMUM_PAIRS),
    }.items():
        monkeypatch.setenv(name, value)
    return fake


_files = iter(range(1, 1_000_000))


def capture(a: Account, when: datetime, variant: str, answers: list[tuple[str, Any]]) -> None:
    """One capture file of ``variant``: one invocation per (encounter key, probability)."""
    lines = []
    for key, probability in answers:
        request = {"instances": [{"encounter_key": key, "patient_key": f"p-{key}"}]}
        response = {"predictions": [{"encounter_key": key, "probability": probability}]}
        lines.append(
            json.dumps(
                {
                    "captureData": {
                        "endpointInput": {"data": json.dumps(request), "encoding": "JSON"},
                        "endpointOutput": {"data": json.dumps(response), "encoding": "JSON"},
                    },
                    "eventMetadata": {
                        "eventId": f"e-{key}",
                        "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    },
                    "eventVersion": "0",
                }
            )
        )
    key = f"capture/{ENDPOINT}/{variant}/{when:%Y/%m/%d/%H}/{next(_files):06d}.jsonl"
    a.s3.put_object(Bucket=CAPTURE_BUCKET, Key=key, Body="\n".join(lines).encode())


def traffic(
    a: Account,
    when: datetime,
    pairs: int,
    candidate: Any = lambda p: p,
    seed: int = 7,
) -> None:
    """``pairs`` encounters scored by both variants (the candidate's score is ``candidate(p)``)."""
    rng = random.Random(seed)
    served = [(f"enc-{seed}-{i}", rng.random()) for i in range(pairs)]
    capture(a, when, SERVING, served)
    capture(a, when, SHADOW_VARIANT_NAME, [(k, candidate(p)) for k, p in served])


def load(a: Account, *, invocations: int, errors: int = 0, p95_us: float = 20_000) -> None:
    for variant in (SERVING, SHADOW_VARIANT_NAME):
        stats = a.cloudwatch.variant_statistics
        stats[(variant, "Invocations")] = invocations
        stats[(variant, "Invocation5XXErrors")] = 0
        stats[(variant, "ModelLatency")] = 18_000
    stats[(SHADOW_VARIANT_NAME, "Invocation5XXErrors")] = errors
    stats[(SHADOW_VARIANT_NAME, "ModelLatency")] = p95_us


def shadow_started(a: Account, version: int = 2) -> None:
    """v1 serves; ``version`` is approved and starts in shadow."""
    serving(a, 1)
    a.approve(version)
    a.run()
    assert a.sagemaker.serving_version() == 1
    assert a.sagemaker.shadow_version() == version


def later(a: Account, clock: Clock, minutes: int) -> None:
    clock.advance(minutes)
    a.sweep()
    a.run()


def test_a_new_version_first_runs_in_shadow_beside_the_serving_one(
    shadow_account: Account,
) -> None:
    a = shadow_account
    shadow_started(a)
    config = a.calls("CreateEndpointConfig")[-1]
    [production] = config["ProductionVariants"]
    [shadow] = config["ShadowProductionVariants"]
    assert production["VariantName"] == SERVING
    assert shadow["VariantName"] == SHADOW_VARIANT_NAME
    assert shadow["InitialVariantWeight"] == pytest.approx(0.2)  # 20 % of requests copied
    assert config["DataCaptureConfig"]["EnableCapture"] is True
    assert a.active_baseline() == 1  # the drift baseline stays the serving version's
    assert "candidate started in shadow" in a.sns.statuses


def test_too_few_pairs_waits_in_shadow(shadow_account: Account, clock: Clock) -> None:
    a = shadow_account
    shadow_started(a)
    traffic(a, clock.now, MINIMUM_PAIRS - 1)
    load(a, invocations=MINIMUM_PAIRS - 1)
    updates = len(a.calls("UpdateEndpoint"))

    later(a, clock, MINIMUM_MINUTES + 5)

    assert len(a.calls("UpdateEndpoint")) == updates
    assert a.sagemaker.shadow_version() == 2
    assert a.sagemaker.serving_version() == 1


def test_too_early_waits_even_with_enough_pairs(shadow_account: Account, clock: Clock) -> None:
    a = shadow_account
    shadow_started(a)
    traffic(a, clock.now, 5 * MINIMUM_PAIRS)
    load(a, invocations=5 * MINIMUM_PAIRS)
    updates = len(a.calls("UpdateEndpoint"))

    later(a, clock, MINIMUM_MINUTES - 10)

    assert len(a.calls("UpdateEndpoint")) == updates
    assert a.sagemaker.shadow_version() == 2


def test_a_good_candidate_is_promoted_through_the_canary(
    shadow_account: Account, clock: Clock
) -> None:
    a = shadow_account
    shadow_started(a)
    traffic(a, clock.now + timedelta(minutes=5), 3 * MINIMUM_PAIRS, lambda p: p * 0.98 + 0.01)
    load(a, invocations=3 * MINIMUM_PAIRS)

    later(a, clock, MINIMUM_MINUTES + 1)

    assert a.sagemaker.serving_version() == 2
    assert a.sagemaker.shadow_version() is None
    promotion = a.calls("UpdateEndpoint")[-1]
    routing = promotion["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "CANARY"
    assert "ShadowProductionVariants" not in a.sagemaker.configs[promotion["EndpointConfigName"]]
    assert a.cloudwatch.published(SHADOW_HELD_METRIC) == [0.0]
    [notice] = [m for m in a.sns.messages if m["status"].startswith("shadow comparison passed")]
    assert notice["comparison"]["pairs"] == 3 * MINIMUM_PAIRS
    assert notice["comparison"]["pearson"] > 0.99
    assert a.active_baseline() == 2


def _held(a: Account, clock: Clock) -> dict[str, Any]:
    shadow_started(a)
    # The candidate scores everyone higher: far more alerts at the same threshold.
    traffic(a, clock.now, 3 * MINIMUM_PAIRS, lambda p: min(1.0, p + THRESHOLD))
    load(a, invocations=3 * MINIMUM_PAIRS)
    later(a, clock, MINIMUM_MINUTES + 1)
    [notice] = [m for m in a.sns.messages if m["status"].startswith("shadow candidate held")]
    return notice


def test_a_bad_candidate_is_held_and_the_on_call_told(
    shadow_account: Account, clock: Clock
) -> None:
    a = shadow_account
    notice = _held(a, clock)

    assert a.sagemaker.serving_version() == 1
    assert a.sagemaker.shadow_version() is None  # the shadow is removed
    assert notice["candidate_version"] == 2
    assert notice["comparison"]["alert_rate_difference"] > 0.2
    assert any("alert-rate difference" in reason for reason in notice["reasons"])
    assert "enc-" not in json.dumps(a.sns.messages)  # no encounter key reaches the message
    assert a.cloudwatch.published(SHADOW_HELD_METRIC) == [1.0]
    # Held: later looks neither retry the shadow nor promote.
    updates = len(a.calls("UpdateEndpoint"))
    later(a, clock, 60)
    later(a, clock, 60)
    assert len(a.calls("UpdateEndpoint")) == updates
    assert a.sagemaker.serving_version() == 1


def test_a_held_candidate_is_tried_again_when_approved_again(
    shadow_account: Account, clock: Clock
) -> None:
    a = shadow_account
    _held(a, clock)

    a.reapprove(2)
    a.run()

    assert a.sagemaker.shadow_version() == 2  # a new approval: a new shadow period


def test_an_operator_promote_decision_sends_a_held_candidate_through_the_canary(
    shadow_account: Account, clock: Clock
) -> None:
    a = shadow_account
    _held(a, clock)
    [key] = [
        item["Key"]
        for item in a.s3.list_objects_v2(Bucket=CAPTURE_BUCKET, Prefix="baselines/")["Contents"]
        if "/shadow-decisions/" in item["Key"]
    ]
    assert key.startswith(decision_key(ENDPOINT, "", "").split("@")[0].rstrip("/"))
    a.s3.put_object(Bucket=CAPTURE_BUCKET, Key=key, Body=json.dumps({"decision": "promote"}))

    later(a, clock, 15)

    assert a.sagemaker.serving_version() == 2
    assert "promoting from shadow" in a.sns.statuses


def test_a_candidate_rejected_in_shadow_is_removed_and_never_serves(
    shadow_account: Account, clock: Clock
) -> None:
    a = shadow_account
    shadow_started(a)
    traffic(a, clock.now, 3 * MINIMUM_PAIRS)
    load(a, invocations=3 * MINIMUM_PAIRS)

    a.reject(2)
    a.run()
    later(a, clock, MINIMUM_MINUTES + 1)

    assert a.sagemaker.serving_version() == 1
    assert a.sagemaker.shadow_version() is None
    assert 2 not in a.served_versions
    assert "shadow candidate dropped, serving version kept" in a.sns.statuses
    assert a.cloudwatch.published(SHADOW_HELD_METRIC) == []  # never compared


def test_a_candidate_that_errs_in_shadow_is_held(shadow_account: Account, clock: Clock) -> None:
    a = shadow_account
    shadow_started(a)
    # Its failed answers make no pairs: errors hold it before it has enough pairs.
    traffic(a, clock.now, 5)
    load(a, invocations=100, errors=60)

    later(a, clock, MINIMUM_MINUTES + 1)

    assert a.sagemaker.serving_version() == 1
    [notice] = [m for m in a.sns.messages if m["status"].startswith("shadow candidate held")]
    assert notice["comparison"]["candidate_error_rate"] == pytest.approx(0.6)


def test_a_restarted_deployer_keeps_the_shadow_period(
    shadow_account: Account, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything the shadow stage knows lives on the endpoint and in S3, not in the process:
    fresh handler invocations (a cold start each) neither restart the shadow nor its clock."""
    a = shadow_account
    shadow_started(a)
    traffic(a, clock.now, 3 * MINIMUM_PAIRS)
    load(a, invocations=3 * MINIMUM_PAIRS)
    later(a, clock, MINIMUM_MINUTES // 2)
    a.sweep()
    a.duplicate_last()
    a.run()
    assert a.sagemaker.shadow_version() == 2
    shadow_updates = [
        update
        for update in a.calls("UpdateEndpoint")
        if "ShadowProductionVariants" in a.sagemaker.configs[update["EndpointConfigName"]]
    ]
    assert len(shadow_updates) == 1

    later(a, clock, MINIMUM_MINUTES // 2 + 1)  # the period, counted from the first look

    assert a.sagemaker.serving_version() == 2


def test_shadow_disabled_goes_straight_to_the_canary(request: pytest.FixtureRequest) -> None:
    a: Account = request.getfixturevalue("account")
    serving(a, 1)
    serving(a, 2)
    assert all("ShadowProductionVariants" not in c for c in a.calls("CreateEndpointConfig"))
    assert a.sagemaker.serving_version() == 2


# -- autoscaling ---------------------------------------------------------------------------


@pytest.fixture
def scaled(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[Account, FakeAutoScaling]:
    base: Account = request.getfixturevalue("account")
    fake = FakeAutoScaling()
    base.sagemaker.autoscaling = fake
    clients = base.clients

    def with_autoscaling() -> deployment.Clients:
        base = clients()
        return deployment.Clients(base.sagemaker, base.s3, base.sns, base.cloudwatch, fake)

    from lambdas.deployer import app

    monkeypatch.setattr(app, "clients", with_autoscaling)
    for name, value in {
        "AUTOSCALING_ENABLED": "true",
        "AUTOSCALING_MIN_INSTANCES": "2",
        "AUTOSCALING_MAX_INSTANCES": "6",
        "AUTOSCALING_TARGET_INVOCATIONS_PER_INSTANCE": "750",
    }.items():
        monkeypatch.setenv(name, value)
    return base, fake


def test_the_variant_is_registered_with_target_tracking_once_in_service(
    scaled: tuple[Account, FakeAutoScaling],
) -> None:
    a, fake = scaled
    serving(a, 1)
    target = fake.targets[resource_id(ENDPOINT, SERVING)]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 6)
    assert target["SuspendedState"]["DynamicScalingInSuspended"] is False
    policy = fake.policies[resource_id(ENDPOINT, SERVING)]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 750
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }


def test_scale_in_is_suspended_for_a_deployment_and_resumed_after(
    scaled: tuple[Account, FakeAutoScaling],
) -> None:
    a, fake = scaled
    serving(a, 1)
    fake.calls.clear()
    a.approve(2)
    a.deliver()  # the update starts
    [before] = [c for name, c in fake.calls if name == "RegisterScalableTarget"]
    assert before["SuspendedState"]["DynamicScalingInSuspended"] is True
    assert a.sagemaker.endpoint is not None
    assert a.sagemaker.endpoint.status == "Updating"
    a.run()
    assert a.sagemaker.serving_version() == 2
    last = fake.targets[resource_id(ENDPOINT, SERVING)]
    assert last["SuspendedState"]["DynamicScalingInSuspended"] is False


def test_an_instance_type_change_deregisters_before_the_update(
    scaled: tuple[Account, FakeAutoScaling], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake refuses, as SageMaker does, an update that changes a registered variant's
    instance type: the deployer must deregister first."""
    a, fake = scaled
    serving(a, 1)
    monkeypatch.setenv("INSTANCE_TYPE", "ml.c5.xlarge")
    serving(a, 2)
    names = [name for name, _ in fake.calls]
    assert "DeregisterScalableTarget" in names
    assert a.sagemaker.serving_version() == 2
    assert a.sagemaker.endpoint is not None
    config = a.sagemaker.configs[a.sagemaker.endpoint.config]
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.c5.xlarge"
    assert resource_id(ENDPOINT, SERVING) in fake.targets  # registered again once settled


def test_running_at_max_capacity_is_published(scaled: tuple[Account, FakeAutoScaling]) -> None:
    a, _ = scaled
    serving(a, 1)
    a.sagemaker.instance_count = 6
    a.sweep()
    a.run()
    assert a.cloudwatch.published(AT_MAX_CAPACITY_METRIC)[-1] == 1.0
    a.sagemaker.instance_count = 3
    a.sweep()
    a.run()
    assert a.cloudwatch.published(AT_MAX_CAPACITY_METRIC)[-1] == 0.0


def test_a_newer_approval_replaces_the_candidate_in_shadow(
    shadow_account: Account, clock: Clock
) -> None:
    a = shadow_account
    shadow_started(a)
    traffic(a, clock.now, 3 * MINIMUM_PAIRS)
    load(a, invocations=3 * MINIMUM_PAIRS)

    a.approve(3)
    a.run()
    assert a.sagemaker.shadow_version() == 3
    later(a, clock, MINIMUM_MINUTES + 1)  # v2's pairs are v3's too: same encounters
    later(a, clock, MINIMUM_MINUTES + 1)

    assert 2 not in a.served_versions
    assert a.sagemaker.serving_version() == 3
