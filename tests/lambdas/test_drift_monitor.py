"""The drift monitor against moto: PSI on captured traffic, counts, realised performance."""

from __future__ import annotations

import base64
import io
import json
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from contracts.deployment import VARIANT_NAME
from contracts.drift import (
    DEFAULT_METRIC_NAMESPACE,
    PSI_ALARM_THRESHOLD,
    baseline_s3_key,
    build_baseline,
    drift_fields,
)
from contracts.model_artifact import DRIFT_BASELINE_FILE
from lambdas.drift_monitor import app, capture
from lambdas.drift_monitor.capture import CaptureDecodeError, decode_capture_line
from lambdas.drift_monitor.ground_truth import expected_calibration_error, rank_auroc
from lambdas.drift_monitor.monitor import BaselineMissingError, check
from lambdas.drift_monitor.settings import MonitorSettings, SettingsError
from lambdas.drift_monitor.window import TimeWindow, latest_complete_window, requested_window
from tests.lambdas.conftest import FakeLambdaContext

BUCKET = "capture-bucket"
PREFIX = "datacapture"
ENDPOINT = "readmission-test"
VARIANT = VARIANT_NAME
# A scheduled run at 10:07 analyses 09:00-10:00 (5 minutes are left for capture to land).
RUN_TIME = datetime(2024, 5, 1, 10, 7, tzinfo=UTC)
WINDOW_START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
SCHEDULED_EVENT = {"source": "aws.events", "time": "2024-05-01T10:07:00Z"}

TRAINING_DIAGNOSES = ["4280", "4019", "25000", "41401", "5849", "486", "2724", "42731", "V5861"]
NEW_DIAGNOSIS = "0799"  # group 079: never seen in training


def encounter(rng: random.Random, index: int, *, shifted: bool = False) -> dict[str, Any]:
    """A synthetic encounter; ``shifted`` makes patients older, with more prior admissions,
    and gives every other one a code of a group training never saw (nothing else changes)."""
    diagnoses = rng.sample(TRAINING_DIAGNOSES, 3)
    if shifted and index % 2:
        diagnoses[0] = NEW_DIAGNOSIS
    return {
        "patient_key": f"{index:064x}",
        "encounter_key": f"{index:064x}"[::-1],
        "age_years": rng.randint(55, 90) if shifted else rng.randint(20, 90),
        "sex": rng.choice(["F", "M"]),
        "admission_type": rng.choice(["emergency", "urgent", "elective"]),
        "admission_source": rng.choice(["emergency_department", "physician_referral"]),
        "discharge_disposition": rng.choice(["home", "home_health", "skilled_nursing"]),
        "admitting_service": rng.choice(["medicine", "cardiology", "surgery"]),
        "length_of_stay_days": round(rng.uniform(0.5, 12.0), 2),
        "prior_admissions_12m": (
            rng.choices([0, 1, 2, 3, 4, 5], [20, 25, 25, 15, 10, 5])[0]
            if shifted
            else rng.choices([0, 1, 2, 3], [55, 25, 12, 8])[0]
        ),
        "prior_ed_visits_12m": rng.randint(0, 3),
        "prior_outpatient_visits_12m": rng.choice([None, 0, 1, 2, 5]),
        "days_since_last_discharge": rng.choice([None, rng.uniform(1, 400)]),
        "num_diagnoses": rng.randint(1, 9),
        "num_procedures": rng.randint(0, 4),
        "num_medications": rng.randint(1, 30),
        "num_lab_tests": rng.randint(5, 80),
        "num_abnormal_labs": rng.randint(0, 10),
        "hba1c_result": rng.choice(["not_measured", "normal", "above_7"]),
        "max_glucose_result": rng.choice(["not_measured", "normal"]),
        "charlson_index": rng.randint(0, 6),
        "diagnosis_codes": diagnoses,
        "procedure_codes": rng.sample(["3615", "8856", "3893", "9904"], 2),
        "medications": rng.sample(["insulin", "metformin", "furosemide", "aspirin"], 2),
        "abnormal_labs": rng.sample(["glucose", "creatinine", "potassium"], 1),
        "note_text": "Discharged home in stable condition.",
    }


def scores(rng: random.Random, count: int) -> list[float]:
    return [round(rng.betavariate(2, 5), 4) for _ in range(count)]


def capture_line(
    records: Sequence[dict[str, Any]],
    probabilities: Sequence[float],
    moment: datetime,
    *,
    base64_encoded: bool = False,
) -> str:
    """One SageMaker data-capture line for a request of ``records``."""
    request = json.dumps({"instances": list(records)})
    response = json.dumps(
        {
            "predictions": [
                {
                    "probability": p,
                    "risk_band": "low",
                    "model_version": "3",
                    "encounter_key": r["encounter_key"],
                    "top_factors": [],
                }
                for r, p in zip(records, probabilities, strict=True)
            ]
        }
    )

    def part(data: str) -> dict[str, str]:
        if base64_encoded:
            encoded = base64.b64encode(data.encode()).decode()
            return {
                "observedContentType": "application/json",
                "mode": "INPUT",
                "data": encoded,
                "encoding": "BASE64",
            }
        return {
            "observedContentType": "application/json",
            "mode": "INPUT",
            "data": data,
            "encoding": "JSON",
        }

    return json.dumps(
        {
            "captureData": {"endpointInput": part(request), "endpointOutput": part(response)},
            "eventMetadata": {
                "eventId": "0c5d6b1e-7f1a-4f5e-9c6a-6a6f3d1b2c3d",
                "inferenceTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "eventVersion": "0",
        }
    )


def capture_lines(
    records: Sequence[dict[str, Any]], probabilities: Sequence[float], start: datetime
) -> Iterator[str]:
    """Capture lines spread over the hour after ``start``: single requests and batches of 5,
    alternating JSON and BASE64 encodings."""
    position = 0
    line_number = 0
    while position < len(records):
        size = 1 if line_number % 3 else 5
        moment = start + timedelta(seconds=(position * 3599) // max(len(records), 1))
        yield capture_line(
            records[position : position + size],
            probabilities[position : position + size],
            moment,
            base64_encoded=line_number % 2 == 1,
        )
        position += size
        line_number += 1


def put_capture(s3: Any, hour: datetime, name: str, lines: Sequence[str]) -> None:
    key = f"{PREFIX}/{ENDPOINT}/{VARIANT}/{hour:%Y/%m/%d/%H}/{name}.jsonl"
    s3.put_object(Bucket=BUCKET, Key=key, Body=("\n".join(lines) + "\n").encode())


@pytest.fixture
def settings() -> MonitorSettings:
    return MonitorSettings(endpoint_name=ENDPOINT, capture_bucket=BUCKET, capture_prefix=PREFIX)


@pytest.fixture
def baseline() -> dict[str, Any]:
    rng = random.Random(1)
    training = [encounter(rng, i) for i in range(2000)]
    return build_baseline(training, scores(rng, 2000))


@pytest.fixture
def s3(mocked_aws: None, baseline: dict[str, Any]) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_object(
        Bucket=BUCKET, Key=baseline_s3_key(ENDPOINT), Body=json.dumps(baseline).encode()
    )
    return client


@pytest.fixture
def monitor_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT)
    monkeypatch.setenv("CAPTURE_BUCKET", BUCKET)
    monkeypatch.setenv("CAPTURE_PREFIX", PREFIX)
    monkeypatch.setenv("WINDOW_MINUTES", "60")


def metric_value(name: str, feature: str | None = None) -> float | None:
    """The single value published under ``name`` around the run time, or ``None``."""
    dimensions = [{"Name": "EndpointName", "Value": ENDPOINT}]
    if feature is not None:
        dimensions.append({"Name": "Feature", "Value": feature})
    points = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=DEFAULT_METRIC_NAMESPACE,
        MetricName=name,
        Dimensions=dimensions,
        StartTime=RUN_TIME - timedelta(hours=1),
        EndTime=RUN_TIME + timedelta(hours=1),
        Period=60,
        Statistics=["Maximum", "SampleCount"],
    )["Datapoints"]
    if not points:
        return None
    assert len(points) == 1
    assert points[0]["SampleCount"] == 1
    return float(points[0]["Maximum"])


def window_capture(shifted: bool, count: int = 1000, seed: int = 2) -> list[str]:
    rng = random.Random(seed)
    records = [encounter(rng, 10_000 + i, shifted=shifted) for i in range(count)]
    return list(capture_lines(records, scores(rng, count), WINDOW_START))


def test_training_distribution_stays_under_threshold(
    s3: Any, monitor_env: None, lambda_context: FakeLambdaContext
) -> None:
    lines = window_capture(shifted=False)
    put_capture(s3, WINDOW_START, "00-00-000-a", lines[: len(lines) // 2])
    put_capture(s3, WINDOW_START, "30-00-000-b", lines[len(lines) // 2 :])

    summary = app.lambda_handler(SCHEDULED_EVENT, lambda_context)

    assert summary["window"] == {"start": "2024-05-01T09:00:00Z", "end": "2024-05-01T10:00:00Z"}
    assert summary["files"] == 2
    assert summary["records_analysed"] == 1000
    assert summary["corrupt_records"] == 0
    assert summary["drifted_features"] == []
    assert 0 < summary["max_feature_psi"] < PSI_ALARM_THRESHOLD
    assert summary["prediction_psi"] < PSI_ALARM_THRESHOLD
    assert metric_value("RecordsAnalysed") == 1000
    assert metric_value("MaxFeaturePSI") == pytest.approx(summary["max_feature_psi"])
    assert metric_value("PredictionPSI") == pytest.approx(summary["prediction_psi"])
    assert metric_value("DriftedFeatures") == 0
    for spec in drift_fields():
        value = metric_value("FeaturePSI", spec.name)
        assert value is not None, spec.name
        assert value < PSI_ALARM_THRESHOLD, spec.name


def test_shifted_distribution_crosses_threshold_for_exactly_the_shifted_features(
    s3: Any, settings: MonitorSettings
) -> None:
    put_capture(s3, WINDOW_START, "00-00-000-a", window_capture(shifted=True))

    report = check(
        SCHEDULED_EVENT, settings, s3=s3, cloudwatch=boto3.client("cloudwatch"), now=RUN_TIME
    )

    assert set(report.drifted_features) == {
        "age_years",
        "prior_admissions_12m",
        "diagnosis_codes",
    }
    assert report.prediction_psi is not None
    assert report.prediction_psi < PSI_ALARM_THRESHOLD
    assert metric_value("DriftedFeatures") == 3
    assert metric_value("FeaturePSI", "age_years") == pytest.approx(report.feature_psi["age_years"])
    assert report.feature_psi["age_years"] > PSI_ALARM_THRESHOLD
    assert metric_value("FeaturePSI", "sex") == pytest.approx(report.feature_psi["sex"])
    assert report.feature_psi["sex"] < PSI_ALARM_THRESHOLD
    assert metric_value("MaxFeaturePSI") == pytest.approx(max(report.feature_psi.values()))


def test_empty_window_is_reported_not_raised(
    s3: Any, monitor_env: None, lambda_context: FakeLambdaContext
) -> None:
    # Capture exists, but only for the hour after the window.
    put_capture(s3, WINDOW_START + timedelta(hours=1), "00-00-000-a", window_capture(False, 10))

    summary = app.lambda_handler(SCHEDULED_EVENT, lambda_context)

    assert summary["empty_window"] is True
    assert summary["records_analysed"] == 0
    assert summary["max_feature_psi"] is None
    assert metric_value("EmptyWindow") == 1
    assert metric_value("RecordsAnalysed") == 0
    assert metric_value("MaxFeaturePSI") is None
    assert metric_value("FeaturePSI", "age_years") is None


def test_corrupt_lines_and_invalid_records_are_counted(s3: Any, settings: MonitorSettings) -> None:
    good = window_capture(shifted=False, count=50)
    rng = random.Random(3)
    bad_record = encounter(rng, 1)
    bad_record["age_years"] = "seventy"
    moment = WINDOW_START + timedelta(minutes=5)
    mismatched = json.loads(capture_line([encounter(rng, 2)], [0.2], moment))
    mismatched["captureData"]["endpointOutput"]["data"] = json.dumps({"predictions": []})
    no_time = json.loads(capture_line([encounter(rng, 3)], [0.2], moment))
    del no_time["eventMetadata"]["inferenceTime"]
    bad_base64 = json.loads(capture_line([encounter(rng, 4)], [0.2], moment, base64_encoded=True))
    bad_base64["captureData"]["endpointInput"]["data"] = "***"
    corrupt = [
        "{not json",
        json.dumps(mismatched),
        json.dumps(no_time),
        json.dumps(bad_base64),
        json.dumps([1, 2]),
    ]
    invalid = capture_line([bad_record, encounter(rng, 5)], [0.3, 0.4], moment)
    put_capture(s3, WINDOW_START, "00-00-000-a", [*good[:10], *corrupt, invalid, *good[10:]])
    not_utf8_key = f"{PREFIX}/{ENDPOINT}/{VARIANT}/{WINDOW_START:%Y/%m/%d/%H}/10-00-000-b.jsonl"
    s3.put_object(Bucket=BUCKET, Key=not_utf8_key, Body=b"\xff\xfe{}\n")

    report = check(
        SCHEDULED_EVENT, settings, s3=s3, cloudwatch=boto3.client("cloudwatch"), now=RUN_TIME
    )

    assert report.capture.corrupt_lines == 6
    assert report.invalid_records == 1
    assert report.records_analysed == 51  # 50 good + the valid half of the mixed request
    assert report.corrupt_records == 7
    assert metric_value("CorruptRecords") == 7
    assert metric_value("RecordsAnalysed") == 51


def test_records_outside_the_window_are_skipped(s3: Any, settings: MonitorSettings) -> None:
    rng = random.Random(4)
    inside = capture_line([encounter(rng, 1)], [0.1], WINDOW_START + timedelta(minutes=59))
    before = capture_line([encounter(rng, 2)], [0.1], WINDOW_START - timedelta(seconds=1))
    after = capture_line([encounter(rng, 3)], [0.1], WINDOW_START + timedelta(hours=1))
    # A file of the previous hour that ran past the boundary still counts.
    put_capture(s3, WINDOW_START - timedelta(hours=1), "59-58-000-a", [before, inside])
    put_capture(s3, WINDOW_START, "59-59-000-b", [after])

    report = check(
        SCHEDULED_EVENT, settings, s3=s3, cloudwatch=boto3.client("cloudwatch"), now=RUN_TIME
    )

    assert report.records_analysed == 1
    assert report.capture.out_of_window_lines == 2
    assert report.capture.files == 2


def test_realised_auroc_and_calibration_from_ground_truth(
    s3: Any, baseline: dict[str, Any]
) -> None:
    settings = MonitorSettings(
        endpoint_name=ENDPOINT,
        capture_bucket=BUCKET,
        capture_prefix=PREFIX,
        ground_truth_prefix="ground-truth",
        ground_truth_delay_days=31,
    )
    label_hour = WINDOW_START - timedelta(days=31)
    rng = random.Random(5)
    records = [encounter(rng, i) for i in range(5)]
    probabilities = [0.1, 0.4, 0.35, 0.8, 0.9]
    put_capture(
        s3, label_hour, "00-00-000-a", list(capture_lines(records, probabilities, label_hour))
    )
    labels = [
        {"encounter_key": records[0]["encounter_key"], "readmitted_30d": 0},
        {"encounter_key": records[1]["encounter_key"], "readmitted_30d": 0},
        {"encounter_key": records[2]["encounter_key"], "readmitted_30d": 1},
        {"encounter_key": records[3]["encounter_key"], "readmitted_30d": 1},
        {"encounter_key": "f" * 64, "readmitted_30d": 1},  # scored in another window
        {"encounter_key": records[4]["encounter_key"], "readmitted_30d": "yes"},  # corrupt
    ]
    s3.put_object(
        Bucket=BUCKET,
        Key=f"ground-truth/{label_hour:%Y/%m/%d}/labels.jsonl",
        Body="\n".join(json.dumps(label) for label in labels).encode(),
    )

    report = check(
        SCHEDULED_EVENT, settings, s3=s3, cloudwatch=boto3.client("cloudwatch"), now=RUN_TIME
    )

    assert report.empty  # nothing captured in the current window
    assert report.labels is not None
    assert report.labels.corrupt_lines == 1
    assert report.performance is not None
    # positives 0.35, 0.8 against negatives 0.1, 0.4: 3 of 4 pairs ordered right
    assert report.performance.labelled == 4
    assert report.performance.auroc == pytest.approx(0.75)
    # one record per bin: (0.1 + 0.4 + 0.65 + 0.2) / 4
    assert report.performance.expected_calibration_error == pytest.approx(0.3375)
    assert metric_value("RealisedAUROC") == pytest.approx(0.75)
    assert metric_value("ExpectedCalibrationError") == pytest.approx(0.3375)
    assert metric_value("MeanPredictedRisk") == pytest.approx(0.4125)
    assert metric_value("ObservedReadmissionRate") == pytest.approx(0.5)
    assert metric_value("LabelledRecords") == 4


def test_missing_baseline_fails_clearly(mocked_aws: None, settings: MonitorSettings) -> None:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    with pytest.raises(BaselineMissingError, match="baseline"):
        check(SCHEDULED_EVENT, settings, s3=client, cloudwatch=None, now=RUN_TIME)


def test_decode_accepts_single_records_bare_lists_and_input_only_capture() -> None:
    moment = "2024-05-01T09:30:00Z"
    request = {"data": json.dumps({"encounter_key": "k1", "age_years": 70}), "encoding": "JSON"}
    single: dict[str, Any] = {
        "captureData": {
            "endpointInput": request,
            "endpointOutput": {"data": json.dumps([0.25]), "encoding": "JSON"},
        },
        "eventMetadata": {"inferenceTime": moment},
    }
    when, records = decode_capture_line(json.dumps(single).encode())
    assert when == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert [(r.record["age_years"], r.probability, r.encounter_key) for r in records] == [
        (70, 0.25, "k1")
    ]
    input_only = {
        "captureData": {"endpointInput": request},
        "eventMetadata": {"inferenceTime": moment},
    }
    _, records = decode_capture_line(json.dumps(input_only))
    assert records[0].probability is None
    unsupported = json.loads(json.dumps(single))
    unsupported["captureData"]["endpointInput"]["encoding"] = "CSV"
    with pytest.raises(CaptureDecodeError, match="encoding") as caught:
        decode_capture_line(json.dumps(unsupported))
    assert "70" not in str(caught.value)


def test_rank_auroc_averages_ties_and_needs_both_classes() -> None:
    # positive 0.5 ties a negative (half credit), positive 0.9 beats both: (1.5 + 2) / 4
    assert rank_auroc([0.5, 0.5, 0.9, 0.1], [1, 0, 1, 0]) == pytest.approx(0.875)
    assert rank_auroc([0.2, 0.3], [1, 1]) is None
    assert expected_calibration_error([0.05, 0.05, 0.95, 0.95], [0, 0, 1, 1]) == pytest.approx(0.05)


def test_windows_are_aligned_and_settled() -> None:
    assert latest_complete_window(RUN_TIME, 60, 5) == TimeWindow(
        WINDOW_START, WINDOW_START + timedelta(hours=1)
    )
    # at 10:03 the 09:00-10:00 capture may still be landing: take 08:00-09:00
    early = datetime(2024, 5, 1, 10, 3, tzinfo=UTC)
    assert latest_complete_window(early, 60, 5).start == WINDOW_START - timedelta(hours=1)
    day = latest_complete_window(RUN_TIME, 1440, 5)
    assert (day.start, day.end) == (
        datetime(2024, 4, 30, tzinfo=UTC),
        datetime(2024, 5, 1, tzinfo=UTC),
    )
    backfill = requested_window({"window_end": "2024-04-02T00:00:00Z"}, RUN_TIME, 60, 5)
    assert backfill.start == datetime(2024, 4, 1, 23, tzinfo=UTC)
    assert [h.hour for h in backfill.hours()] == [23]


def test_settings_name_the_bad_variable() -> None:
    with pytest.raises(SettingsError, match="CAPTURE_BUCKET"):
        MonitorSettings.from_env({"ENDPOINT_NAME": ENDPOINT})
    with pytest.raises(SettingsError, match="WINDOW_MINUTES"):
        MonitorSettings.from_env(
            {"ENDPOINT_NAME": ENDPOINT, "CAPTURE_BUCKET": BUCKET, "WINDOW_MINUTES": "7"}
        )
    settings = MonitorSettings.from_env(
        {"ENDPOINT_NAME": ENDPOINT, "CAPTURE_BUCKET": BUCKET, "CAPTURE_PREFIX": "/cap/"}
    )
    assert settings.capture_prefix == "cap"
    assert settings.resolved_baseline_key == f"baselines/{ENDPOINT}/{DRIFT_BASELINE_FILE}"
    assert settings.window_minutes == 60
    assert settings.ground_truth_prefix is None


def test_a_run_out_of_time_publishes_what_it_read(s3: Any, settings: MonitorSettings) -> None:
    rng = random.Random(6)
    lines = [
        capture_line([encounter(rng, i)], [0.2], WINDOW_START + timedelta(seconds=i))
        for i in range(600)
    ]
    put_capture(s3, WINDOW_START, "00-00-000-a", lines)

    # A deadline already passed: the first look at the clock (line 256) stops the reading.
    report = check(
        SCHEDULED_EVENT,
        settings,
        s3=s3,
        cloudwatch=boto3.client("cloudwatch"),
        now=RUN_TIME,
        deadline=0.0,
    )

    assert report.capture.truncated is True
    assert report.records_analysed == 255
    assert report.summary()["truncated"] is True
    assert metric_value("TruncatedWindow") == 1
    assert metric_value("RecordsAnalysed") == 255
    assert metric_value("MaxFeaturePSI") is not None


class _Body:
    """A stream that hands out its content in small reads, then optionally fails."""

    def __init__(self, content: bytes, fail: bool = False) -> None:
        self.stream = io.BytesIO(content)
        self.fail = fail
        self.closed = False

    def read(self, size: int) -> bytes:
        chunk = self.stream.read(size)
        if not chunk and self.fail:
            raise OSError("connection reset")
        return chunk

    def close(self) -> None:
        self.closed = True


class _OneObject:
    def __init__(self, body: _Body) -> None:
        self.body = body

    def get_object(self, **_: Any) -> dict[str, Any]:
        return {"Body": self.body}


def test_lines_are_rebuilt_across_read_ahead_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "STREAM_CHUNK_BYTES", 4)
    body = _Body(b'{"a": 1}\n\n{"bb": 22}\nlast line without newline')

    lines = list(capture.object_lines(_OneObject(body), BUCKET, "key"))

    assert lines == [b'{"a": 1}', b"", b'{"bb": 22}', b"last line without newline"]
    assert body.closed


def test_read_errors_reach_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "STREAM_CHUNK_BYTES", 4)
    body = _Body(b"line one\nline two\n", fail=True)

    with pytest.raises(OSError, match="connection reset"):
        list(capture.object_lines(_OneObject(body), BUCKET, "key"))
    assert body.closed
