"""/health tells the truth: the control plane's status and whether the model answers a probe.

The control plane (moto here) keeps saying ``InService`` while the fake model server fails,
hangs or is gone: /health must say unavailable (503, Retry-After). The probe is one synthetic,
labelled record sent through the prediction path, at most once per cache TTL per container.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from contracts.serving import HEALTH_PROBE_INFERENCE_ID, HEALTH_PROBE_PATIENT_KEY
from lambdas.drift_monitor.capture import decode_capture_line
from lambdas.predict import app as predict_app
from lambdas.predict.health import EndpointHealth, HealthCache, check_health
from lambdas.predict.probe import NOT_RUN, ProbeResult, probe_record, run_probe
from lambdas.predict.schema import EncounterRequest, HealthResponse, Prediction
from tests.lambdas.fake_endpoint import Mode
from tests.lambdas.predict_fixtures import PredictApi, predict_api, valid_record

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

DEADLINE_S = 2.0
PREDICTION = Prediction(
    encounter_key=None, probability=0.1, risk_band="low", model_version="9", top_factors=[]
)


@pytest.fixture(scope="module")
def shared_api() -> Iterator[PredictApi]:
    with predict_api(env={"REQUEST_DEADLINE_S": str(DEADLINE_S)}) as harness:
        # Build the clients first (a cold one can take most of the deadline on a busy
        # machine), so that each test times only the calls it makes.
        settings = predict_app.current_settings()
        predict_app.clients.sagemaker()
        predict_app.clients.runtime(settings)
        yield harness


@pytest.fixture
def api(shared_api: PredictApi) -> PredictApi:
    shared_api.reset()
    return shared_api


def _unavailable(api: PredictApi) -> dict[str, Any]:
    result = api.health()
    assert result.status == 503, result.raw_body
    assert result.headers["retry-after"] == "5"
    HealthResponse.model_validate(result.body)
    assert result.body["status"] == "unavailable"
    return dict(result.body)


# --- the model down while the control plane says InService ---------------------------------------


@pytest.mark.parametrize(
    ("mode", "probe_status"),
    [
        (Mode.MODEL_ERROR_503, "failed"),
        (Mode.MODEL_ERROR_500, "failed"),
        (Mode.INTERNAL_FAILURE, "failed"),
        (Mode.MALFORMED, "failed"),
        (Mode.MODEL_NOT_READY, "failed"),
        (Mode.THROTTLED, "throttled"),
        (Mode.HANG, "timeout"),
        (Mode.TRICKLE, "timeout"),
    ],
)
def test_model_not_answering_is_503_though_the_control_plane_says_in_service(
    api: PredictApi, mode: Mode, probe_status: str
) -> None:
    api.fake.mode = mode
    body = _unavailable(api)
    assert body["endpoint_status"] == "InService"
    assert body["model_version"] == "3"
    assert body["probe"] == {"status": probe_status, "model_version": None, "latency_ms": None}


def test_model_server_gone_is_503() -> None:
    with predict_api() as api:
        api.fake.stop()
        body = _unavailable(api)
    assert (body["endpoint_status"], body["probe"]["status"]) == ("InService", "failed")


def test_a_hung_probe_answers_within_the_deadline(api: PredictApi) -> None:
    api.fake.mode = Mode.HANG
    started = time.monotonic()
    _unavailable(api)
    assert time.monotonic() - started < DEADLINE_S + 1.0


# --- the probe -----------------------------------------------------------------------------------


def test_probe_is_one_labelled_synthetic_record_through_the_prediction_path(
    api: PredictApi,
) -> None:
    result = api.health()
    assert result.status == 200
    assert result.body["probe"]["model_version"] == "fake-model-7"
    assert api.fake.inference_ids == [HEALTH_PROBE_INFERENCE_ID]
    (record,) = api.fake.received_records()
    assert record == probe_record()
    assert record["patient_key"] == HEALTH_PROBE_PATIENT_KEY
    assert record["encounter_key"] is None


def test_predictions_carry_no_probe_label(api: PredictApi) -> None:
    assert api.predict(valid_record()).status == 200
    assert api.fake.inference_ids == [None]


def test_probe_record_is_a_valid_encounter_of_the_contract() -> None:
    record = probe_record()
    request = {k: v for k, v in record.items() if k not in ("patient_key", "encounter_key")}
    EncounterRequest.model_validate({**request, "patient_id": "health-probe"})


def test_run_probe_turns_every_failure_into_a_result() -> None:
    assert run_probe(lambda records: [PREDICTION]).status == "ok"
    assert run_probe(lambda records: [PREDICTION]).model_version == "9"
    assert run_probe(lambda records: [PREDICTION, PREDICTION]).status == "failed"

    def broken(records: list[dict[str, Any]]) -> list[Prediction]:
        raise RuntimeError("bug")

    assert run_probe(broken) == ProbeResult("failed", failure="RuntimeError")


# --- what the control plane rules out, and when the probe still runs ----------------------------


def _probe_ok() -> ProbeResult:
    return ProbeResult("ok", "9", 3)


@pytest.mark.parametrize(
    ("status", "probed", "serving"),
    [
        ("InService", True, True),
        ("Updating", True, True),
        ("Unknown", True, True),  # DescribeEndpoint failed; the model may still answer
        ("Creating", False, False),
        ("Failed", False, False),
        ("NotFound", False, False),
        ("OutOfService", False, False),
    ],
)
def test_check_health_probes_unless_the_control_plane_rules_it_out(
    status: str, probed: bool, serving: bool
) -> None:
    calls: list[int] = []

    def probe() -> ProbeResult:
        calls.append(1)
        return _probe_ok()

    report = check_health(lambda: EndpointHealth(status, "9"), probe, clock=lambda: 1.0)
    assert (bool(calls), report.serving) == (probed, serving)
    assert report.probe == (_probe_ok() if probed else NOT_RUN)
    assert report.checked_at == 1.0


# --- cached, and so rate-limited -----------------------------------------------------------------


def test_health_probes_once_per_ttl_however_often_it_is_called(api: PredictApi) -> None:
    statuses = [api.health().status for _ in range(50)]
    assert statuses == [200] * 50
    assert api.fake.invocations == 1


def test_a_failure_is_cached_too_so_an_outage_is_not_hammered(api: PredictApi) -> None:
    api.fake.mode = Mode.MODEL_ERROR_503
    for _ in range(20):
        _unavailable(api)
    assert api.fake.invocations == 1
    api.fake.mode = Mode.OK
    assert api.health().status == 503  # still the cached answer, within the TTL
    predict_app.health_cache.clear()  # the TTL has passed
    assert api.health().status == 200


def test_health_probes_again_after_the_ttl() -> None:
    with predict_api(env={"HEALTH_CACHE_TTL_S": "0"}) as api:
        for _ in range(3):
            assert api.health().status == 200
        assert api.fake.invocations == 3


def test_concurrent_callers_share_one_check() -> None:
    cache: HealthCache[str] = HealthCache()
    computed: list[int] = []
    start = threading.Barrier(32)

    def compute() -> str:
        computed.append(1)
        time.sleep(0.2)
        return "report"

    answers: list[str] = []

    def call() -> None:
        start.wait()
        answers.append(cache.get(30, compute))

    threads = [threading.Thread(target=call) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert (len(computed), answers) == (1, ["report"] * 32)


def test_cache_ttl_runs_from_the_end_of_the_check() -> None:
    now = [0.0]
    cache: HealthCache[int] = HealthCache(clock=lambda: now[0])

    def slow_check() -> int:
        now[0] += 5.0  # the check itself took 5 s
        return int(now[0])

    assert cache.get(10, slow_check) == 5
    now[0] = 14.9
    assert cache.get(10, slow_check) == 5
    now[0] = 15.0
    assert cache.get(10, slow_check) == 20


# --- probe traffic never counts as patient traffic ------------------------------------------------


def _capture_line(records: list[dict[str, Any]], metadata: dict[str, Any]) -> str:
    predictions = [{"probability": 0.1, "encounter_key": None} for _ in records]
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {"data": json.dumps({"instances": records}), "encoding": "JSON"},
                "endpointOutput": {
                    "data": json.dumps({"predictions": predictions}),
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {"inferenceTime": "2024-05-01T09:30:00Z", **metadata},
        }
    )


def test_the_drift_monitor_skips_captured_probes() -> None:
    patient = {**probe_record(), "patient_key": "a" * 64, "encounter_key": "e1"}
    _, records = decode_capture_line(
        _capture_line([probe_record()], {"inferenceId": HEALTH_PROBE_INFERENCE_ID})
    )
    assert records == []
    _, records = decode_capture_line(_capture_line([probe_record()], {}))  # no InferenceId
    assert records == []
    _, records = decode_capture_line(_capture_line([patient, probe_record(), patient], {}))
    assert [r.encounter_key for r in records] == ["e1", "e1"]
