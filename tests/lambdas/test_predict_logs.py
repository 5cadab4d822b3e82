"""Everything the function logs or prints, across every outcome, scanned for patient data."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from contracts.deidentify import keyed_hash
from lambdas.predict import app as predict_app
from tests.lambdas.fake_endpoint import Mode
from tests.lambdas.predict_fixtures import TEST_KEY, api_gateway_event, predict_api, valid_record

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

RAW_PATIENT = "MRN-LOGSCAN-58213"
RAW_ENCOUNTER = "ADM-LOGSCAN-90417"
RECORD = valid_record(
    patient_id=RAW_PATIENT,
    encounter_id=RAW_ENCOUNTER,
    admitting_service="zzlogscan-oncology",
    note_text="logscan discharge note 7731",
    medications=["logscanmedication"],
    diagnosis_codes=["V7331"],
    abnormal_labs=["logscanlab"],
    length_of_stay_days=13.37,
    days_since_last_discharge=271.25,
)
SENSITIVE = (
    RAW_PATIENT,
    RAW_ENCOUNTER,
    "zzlogscan",
    "7731",
    "logscanmedication",
    "V7331",
    "logscanlab",
    "13.37",
    "271.25",
    keyed_hash(TEST_KEY, "patient", RAW_PATIENT),
    keyed_hash(TEST_KEY, "encounter", RAW_ENCOUNTER),
)


def test_no_identifier_or_clinical_value_reaches_any_log(
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Everything at DEBUG, as a function deployed with LOG_LEVEL=DEBUG would run.
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(predict_app.logger._logger, "level", logging.DEBUG)
    stream = io.StringIO()
    monkeypatch.setattr(predict_app.logger.registered_handler, "stream", stream)
    statuses = []
    with predict_api(env={"REQUEST_DEADLINE_S": "2"}) as api:
        statuses.append(api.predict(RECORD).status)
        statuses.append(api.predict({"instances": [RECORD, RECORD]}).status)
        statuses.append(api.predict({**RECORD, "age_years": 131, RAW_PATIENT: 1}).status)
        raw = json.dumps(RECORD)[:-20]
        statuses.append(api.invoke(api_gateway_event("POST", "/predict", raw_body=raw)).status)
        for mode in (Mode.THROTTLED, Mode.MODEL_ERROR_500, Mode.MODEL_ERROR_503, Mode.MALFORMED):
            api.fake.mode = mode
            statuses.append(api.predict(RECORD).status)
        api.fake.mode = Mode.HANG  # past the deadline: 503
        statuses.append(api.predict(RECORD).status)
        api.fake.mode = Mode.MODEL_ERROR_503  # /health: the probe fails
        statuses.append(api.health().status)
        api.fake.mode = Mode.OK
        text = {"Content-Type": "text/plain"}
        statuses.append(
            api.invoke(api_gateway_event("POST", "/predict", RECORD, headers=text)).status
        )
        statuses.append(api.invoke(api_gateway_event("GET", "/predict", RECORD)).status)
        bad = api_gateway_event("POST", "/predict", raw_body=json.dumps(RECORD) + "!")
        bad["isBase64Encoded"] = True
        statuses.append(api.invoke(bad).status)
        surrogate = api_gateway_event("POST", "/predict", raw_body=json.dumps(RECORD) + "\ud800")
        statuses.append(api.invoke(surrogate).status)
        with monkeypatch.context() as patched:
            patched.setattr(predict_app, "score", _crash_quoting_the_record)
            statuses.append(api.predict(RECORD).status)
        api.fake.stop()
        statuses.append(api.predict(RECORD).status)
    assert statuses == [
        200, 200, 400, 400, 429, 500, 503, 500, 503, 503, 415, 405, 400, 400, 500, 503
    ]  # fmt: skip

    captured = capsys.readouterr()
    logged = "\n".join(
        [stream.getvalue(), captured.out, captured.err]
        + [f"{r.getMessage()} {r.__dict__}" for r in caplog.records]
    )
    assert "predictions served" in logged  # the capture did see the function's own log lines
    assert "request failed" in logged
    assert "ValueError" in logged  # the bug is logged by type...
    leaked = [value for value in SENSITIVE if value in logged]
    assert leaked == []  # ...but no identifier, hash or clinical value, in any outcome


def _crash_quoting_the_record(*args: Any) -> Any:
    raise ValueError(f"bug while scoring {RECORD}")
