"""The prediction API under deployment conditions: each test owns its endpoint, moto account
and environment (key source, endpoint outages, timeouts, retries, health)."""

from __future__ import annotations

import boto3
import pytest

from contracts.deidentify import keyed_hash
from tests.lambdas.fake_endpoint import Mode
from tests.lambdas.predict_fixtures import (
    ENDPOINT_NAME,
    GATEWAY_REQUEST_ID,
    REGION,
    predict_api,
    valid_record,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def _error(code: str) -> dict[str, str]:
    return {"error": code, "request_id": GATEWAY_REQUEST_ID}


def test_key_from_secrets_manager_is_used_and_cached() -> None:
    with predict_api() as api:
        arn = api.use_secret_key("rotated-secret-key")
        assert api.predict(valid_record()).status == 200
        boto3.client("secretsmanager", region_name=REGION).delete_secret(
            SecretId=arn, ForceDeleteWithoutRecovery=True
        )
        assert api.predict(valid_record()).status == 200  # no second fetch
        assert [r["patient_key"] for r in api.fake.received_records()] == [
            keyed_hash("rotated-secret-key", "patient", "MRN-0042")
        ] * 2


def test_endpoint_down_is_503() -> None:
    with predict_api() as api:
        api.fake.stop()
        result = api.predict(valid_record())
    assert (result.status, result.body) == (503, _error("endpoint_unavailable"))
    assert result.headers["retry-after"] == "5"


def test_missing_endpoint_is_503() -> None:
    with predict_api(env={"ENDPOINT_NAME": "no-such-endpoint"}) as api:
        result = api.predict(valid_record())
    assert (result.status, result.body) == (503, _error("endpoint_unavailable"))


def test_endpoint_read_timeout_is_503() -> None:
    with predict_api(env={"ENDPOINT_READ_TIMEOUT_S": "0.3"}) as api:
        api.fake.mode = Mode.SLOW
        result = api.predict(valid_record())
    assert (result.status, result.body) == (503, _error("endpoint_unavailable"))


def test_throttling_is_retried_once_before_answering_429() -> None:
    with predict_api(env={"ENDPOINT_MAX_ATTEMPTS": "2"}) as api:
        api.fake.mode = Mode.THROTTLED
        result = api.predict(valid_record())
        assert result.status == 429
        assert api.fake.invocations == 2


def test_missing_key_fails_closed() -> None:
    with predict_api(env={"DEID_KEY": ""}) as api:
        result = api.predict(valid_record())
        assert (result.status, result.body) == (500, _error("service_misconfigured"))
        assert api.fake.invocations == 0


def test_missing_endpoint_name_is_misconfiguration() -> None:
    with predict_api(env={"ENDPOINT_NAME": ""}) as api:
        assert api.predict(valid_record()).body == _error("service_misconfigured")
        assert api.health().body == _error("service_misconfigured")


def test_health_without_endpoint_is_503_without_probing() -> None:
    with predict_api(with_endpoint=False) as api:
        result = api.health()
        assert api.fake.invocations == 0  # the control plane ruled it out: no probe sent
    del result.body["checked_at"]
    assert (result.status, result.body) == (
        503,
        {
            "status": "unavailable",
            "endpoint_status": "NotFound",
            "model_version": None,
            "probe": {"status": "not_run", "model_version": None, "latency_ms": None},
        },
    )
    assert result.headers["retry-after"] == "5"


def test_health_is_cached_within_its_ttl() -> None:
    with predict_api() as api:
        assert api.health().status == 200
        boto3.client("sagemaker", region_name=REGION).delete_endpoint(EndpointName=ENDPOINT_NAME)
        assert api.health().status == 200


def test_health_sees_changes_once_the_cache_expires() -> None:
    with predict_api(env={"HEALTH_CACHE_TTL_S": "0"}) as api:
        assert api.health().status == 200
        boto3.client("sagemaker", region_name=REGION).delete_endpoint(EndpointName=ENDPOINT_NAME)
        assert api.health().body["endpoint_status"] == "NotFound"
