"""The batch writer Lambda against moto S3 and DynamoDB: plan a day, write its worklist."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from contracts.worklist import STATUS_FAILED, STATUS_SCORED
from lambdas.batch_writer import app, writer
from lambdas.batch_writer.settings import WriterSettings
from lambdas.environment import SettingsError
from tests.worklist.test_stores import create_table
from worklist.dynamodb import DynamoDbWorklistStore
from worklist.scores_table import scores_key

BUCKET = "curated-test"
TABLE = "worklist-test"
DAY = "2026-12-02"
NOW = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC)
ENV = {
    "CURATED_BUCKET": BUCKET,
    "SOURCE_PREFIX": "discharges",
    "OUTPUT_PREFIX": "batch-scoring/output",
    "SCORES_PREFIX": "worklist-scores",
    "WORKLIST_TABLE": TABLE,
    "JOB_NAME_PREFIX": "readmission-dev-scoring",
    "BUDGET_SHARE": "0.15",
}
SETTINGS = WriterSettings.from_env(ENV)


def record(n: int) -> dict[str, Any]:
    return {
        "encounter_key": f"e{n:03d}",
        "patient_key": f"p{n:03d}",
        "admitting_service": "medicine",
    }


def answer(n: int, version: str = "5") -> dict[str, Any]:
    return {
        "encounter_key": f"e{n:03d}",
        "probability": n / 100,
        "risk_band": "low",
        "model_version": version,
        "top_factors": [
            {"feature": "age = 80", "direction": "increases_risk", "contribution": 0.3}
        ],
    }


def put_lines(s3: Any, key: str, rows: list[Any]) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body="\n".join(json.dumps(r) for r in rows) + "\n")


@pytest.fixture
def aws(mocked_aws: None) -> tuple[Any, DynamoDbWorklistStore]:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    create_table(dynamodb, TABLE)
    return s3, DynamoDbWorklistStore(dynamodb, TABLE)


def test_plan_takes_the_day_before_the_schedule_and_sees_no_discharges(aws: Any) -> None:
    s3, _ = aws
    result = writer.plan({"scheduled_time": "2026-12-03T02:00:00Z"}, SETTINGS, s3, NOW)
    assert result["day"] == DAY
    assert result["has_records"] is False
    assert result["input_uri"] == f"s3://{BUCKET}/discharges/day={DAY}/"
    assert result["output_uri"].startswith(f"s3://{BUCKET}/batch-scoring/output/day={DAY}/")
    assert len(result["job_name"]) <= 63
    assert result["job_name"].startswith("readmission-dev-scoring-20261202-")


def test_plan_of_a_named_day_with_discharges(aws: Any) -> None:
    s3, _ = aws
    put_lines(s3, f"discharges/day={DAY}/part-0.jsonl", [record(1)])
    one = writer.plan({"day": DAY}, SETTINGS, s3, NOW)
    two = writer.plan({"day": DAY}, SETTINGS, s3, NOW)
    assert one["has_records"] is True
    assert one["output_prefix"] != two["output_prefix"]
    assert one["job_name"] != two["job_name"]


@pytest.mark.parametrize(
    "event", [{"day": "2026-13-01"}, {"day": "yesterday"}, {"scheduled_time": "soon"}]
)
def test_plan_refuses_a_bad_day(aws: Any, event: dict[str, Any]) -> None:
    with pytest.raises(writer.PlanError):
        writer.plan(event, SETTINGS, aws[0], NOW)


def _parquet(s3: Any, day: str = DAY) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=BUCKET, Key=scores_key("worklist-scores", day))["Body"].read()
    return pq.read_table(io.BytesIO(body)).to_pylist()


def test_write_lists_scored_and_failed_records_in_store_and_parquet(aws: Any) -> None:
    s3, store = aws
    put_lines(s3, f"discharges/day={DAY}/part-0.jsonl", [record(1), record(2), record(3)])
    put_lines(s3, f"discharges/day={DAY}/part-1.jsonl", [record(4), record(5)])
    out = "batch-scoring/output/day=2026-12-02/run1/"
    error = {"error": "invalid_request", "message": "field 'instances.1.age_years': is required"}
    put_lines(s3, f"{out}part-0.jsonl.out", [answer(1, "5"), error, answer(3, "6")])
    # part-1's output is missing: its records are listed as failed, not dropped
    event = {"day": DAY, "has_records": True, "output_prefix": out}
    result = writer.write(event, SETTINGS, s3, store, NOW)
    assert result == {
        "day": DAY,
        "input_files": 2,
        "scored": 2,
        "failed": 3,
        "model_versions": ["5", "6"],
        "scores_key": "worklist-scores/day=2026-12-02/scores.parquet",
    }
    summary, entries = store.read_day(DAY)
    assert summary is not None
    assert summary.model_versions == ("5", "6")
    assert summary.budget_share == 0.15
    by_key = {e.encounter_key: e for e in entries}
    assert by_key["e002"].status == STATUS_FAILED
    assert "age_years" in str(by_key["e002"].failure_reason)
    assert by_key["e004"].failure_reason == "no prediction in the batch output"
    rows = _parquet(s3)
    assert [r["encounter_key"] for r in rows] == ["e001", "e002", "e003", "e004", "e005"]
    assert rows[0]["factors"][0]["label"] == "age = 80 (raises the risk)"
    assert "day" not in rows[0]  # the partition, not a column


def test_rewriting_a_day_replaces_store_and_parquet(aws: Any) -> None:
    s3, store = aws
    key = f"discharges/day={DAY}/part-0.jsonl"
    put_lines(s3, key, [record(1), record(2)])
    put_lines(s3, "o/1/part-0.jsonl.out", [answer(1), answer(2)])
    writer.write({"day": DAY, "output_prefix": "o/1/"}, SETTINGS, s3, store, NOW)
    put_lines(s3, key, [record(2)])
    put_lines(s3, "o/2/part-0.jsonl.out", [answer(2, "6")])
    writer.write({"day": DAY, "output_prefix": "o/2/"}, SETTINGS, s3, store, NOW)
    writer.write({"day": DAY, "output_prefix": "o/2/"}, SETTINGS, s3, store, NOW)
    summary, entries = store.read_day(DAY)
    assert [e.encounter_key for e in entries] == ["e002"]
    assert entries[0].status == STATUS_SCORED
    assert summary is not None
    assert summary.model_versions == ("6",)
    assert [r["encounter_key"] for r in _parquet(s3)] == ["e002"]


def test_an_empty_day_gets_a_summary_and_an_empty_partition(aws: Any) -> None:
    s3, store = aws
    result = writer.write({"day": DAY, "has_records": False}, SETTINGS, s3, store, NOW)
    assert (result["scored"], result["failed"], result["input_files"]) == (0, 0, 0)
    summary, entries = store.read_day(DAY)
    assert summary is not None
    assert entries == []
    assert _parquet(s3) == []


def test_handler_runs_both_steps(
    aws: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    s3, store = aws
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    put_lines(s3, f"discharges/day={DAY}/a.jsonl", [record(7)])
    planned = app.lambda_handler({"step": "plan", "day": DAY}, lambda_context)
    put_lines(s3, f"{planned['output_prefix']}a.jsonl.out", [answer(7)])
    written = app.lambda_handler({**planned, "step": "write"}, lambda_context)
    assert (written["scored"], written["failed"]) == (1, 0)
    entry = store.read_entry(DAY, "e007")
    assert entry is not None
    assert entry.probability == 0.07
    with pytest.raises(app.UnknownStepError):
        app.lambda_handler({"step": "delete"}, lambda_context)


@pytest.mark.parametrize(
    "change", [{"CURATED_BUCKET": ""}, {"BUDGET_SHARE": "0"}, {"JOB_NAME_PREFIX": "x" * 50}]
)
def test_settings_refuse_what_cannot_work(change: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        WriterSettings.from_env({**ENV, **change})
