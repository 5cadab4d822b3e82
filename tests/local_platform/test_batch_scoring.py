"""The demo's nightly batch scoring: the day through a real endpoint server's /invocations as
Batch Transform posts it, into the local worklist store and a Parquet file."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import torch

from contracts.worklist import STATUS_FAILED, STATUS_SCORED
from inference.handler import model_fn
from inference.local_endpoint import LocalEndpoint, serve
from local_platform import batch_scoring
from tests.inference.artifacts import tiny_model_dir
from training.synthetic import synthetic_records
from worklist.local import LocalWorklistStore
from worklist.scores_table import scores_key

DAY = "2026-12-02"
NOW = dt.datetime(2026, 12, 3, 6, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpoint]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    serving = model_fn(str(tiny_model_dir(tmp_path_factory)))
    with serve(serving=serving) as running:
        yield running
    torch.set_num_threads(threads)


def day(n: int, seed: int = 3) -> list[dict[str, Any]]:
    rows = [dict(r) for r in synthetic_records(n, seed=seed, with_notes=True)[0]]
    for number, row in enumerate(rows):
        row["encounter_key"] = f"{number:064x}"
        row["patient_key"] = f"{number + 1000:064x}"
    return rows


def run_day(
    endpoint: LocalEndpoint, root: Path, records: list[dict[str, Any]], **options: Any
) -> tuple[batch_scoring.TransformStats, Any, LocalWorklistStore]:
    input_dir = root / "discharges" / f"day={DAY}"
    output_dir = root / "out"
    batch_scoring.write_day_inputs(records, input_dir, files=options.pop("files", 2))
    stats = batch_scoring.transform(endpoint.url, input_dir, output_dir, **options)
    store = LocalWorklistStore(root / "worklist.json")
    summary = batch_scoring.write_worklist(
        DAY, input_dir, output_dir, store, root, budget_share=0.1, now=NOW
    )
    return stats, summary, store


def test_every_record_is_scored_or_listed_failed(endpoint: LocalEndpoint, tmp_path: Path) -> None:
    records = day(40)
    del records[5]["age_years"]  # required: this record is answered with an error line
    records[9]["diagnosis_codes"] = [7]  # the encoder refuses it
    stats, summary, store = run_day(endpoint, tmp_path, records, max_payload_bytes=20_000)
    assert stats.records == 40
    assert stats.requests > 2  # several mini-batches per file
    assert (summary.scored, summary.failed) == (38, 2)
    assert summary.model_versions  # the served model's version
    read_summary, entries = store.read_day(DAY)
    assert read_summary == summary
    by_key = {e.encounter_key: e for e in entries}
    failed = [by_key[records[i]["encounter_key"]] for i in (5, 9)]
    assert all(e.status == STATUS_FAILED for e in failed)
    assert "age_years" in str(failed[0].failure_reason)
    assert "diagnosis_codes" in str(failed[1].failure_reason)
    scored = by_key[records[0]["encounter_key"]]
    assert scored.status == STATUS_SCORED
    assert scored.factors
    assert all(
        "(raises the risk)" in f.label or "(lowers the risk)" in f.label for f in scored.factors
    )
    rows = pq.read_table(tmp_path / scores_key("worklist-scores", DAY)).to_pylist()
    assert len(rows) == 40


def test_output_lines_match_input_lines_in_order(endpoint: LocalEndpoint, tmp_path: Path) -> None:
    records = day(30, seed=8)
    run_day(endpoint, tmp_path, records, max_payload_bytes=8_000, concurrency=3, files=1)
    out = (tmp_path / "out" / "part-0.jsonl.out").read_text().splitlines()
    assert [json.loads(line)["encounter_key"] for line in out] == [
        r["encounter_key"] for r in records
    ]


def test_the_same_requests_score_as_the_real_time_path(
    endpoint: LocalEndpoint, tmp_path: Path
) -> None:
    import urllib.request

    records = day(3, seed=11)
    _, _, store = run_day(endpoint, tmp_path, records, files=1)
    request = urllib.request.Request(
        f"{endpoint.url}/invocations",
        data=json.dumps({"instances": records}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        predictions = json.loads(reply.read())["predictions"]
    _, entries = store.read_day(DAY)
    by_key = {e.encounter_key: e for e in entries}
    for prediction in predictions:
        entry = by_key[prediction["encounter_key"]]
        assert entry.probability == pytest.approx(prediction["probability"], abs=1e-6)


def test_rerunning_a_day_replaces_it(endpoint: LocalEndpoint, tmp_path: Path) -> None:
    run_day(endpoint, tmp_path / "a", day(12))
    (tmp_path / "a" / "discharges").rename(tmp_path / "old")
    _, summary, store = run_day(endpoint, tmp_path / "a", day(5, seed=4))
    assert summary.scored + summary.failed == 5
    assert len(store.read_day(DAY)[1]) == 5


def test_an_empty_day_gets_its_summary(endpoint: LocalEndpoint, tmp_path: Path) -> None:
    stats, summary, store = run_day(endpoint, tmp_path, [])
    assert (stats.records, stats.requests) == (0, 0)
    assert store.read_day(DAY) == (summary, [])


def test_a_refused_mini_batch_fails_the_transform_like_batch_transform(
    endpoint: LocalEndpoint, tmp_path: Path
) -> None:
    input_dir = tmp_path / "in"
    batch_scoring.write_day_inputs(day(2), input_dir, files=1)
    with pytest.raises(batch_scoring.TransformError, match="415"):
        batch_scoring.transform(endpoint.url, input_dir, tmp_path / "out", content_type="text/csv")


def test_mini_batches_hold_whole_lines_within_the_payload() -> None:
    lines = [b"a" * 10 + b"\n", b"\n", b"b" * 10 + b"\n", b"c" * 30 + b"\n", b"d\n"]
    batches = list(batch_scoring.mini_batches(lines, max_bytes=25))
    assert batches == [b"a" * 10 + b"\n" + b"b" * 10, b"c" * 30, b"d"]
    assert (
        b"".join(b.replace(b"\n", b"") for b in batches) == b"a" * 10 + b"b" * 10 + b"c" * 30 + b"d"
    )
