"""Batch Transform's JSON-lines wire format: one answer line per record line, bad ones alone.

Batch Transform (SplitType=Line, BatchStrategy=MultiRecord, AssembleWith=Line) posts as many
input lines as fit its payload to ``/invocations`` and writes each answer into the output file,
so answers must stay aligned line for line and one bad record must not fail the mini-batch
(https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from contracts.serving import (
    CONTENT_TYPE_JSONLINES,
    ENCOUNTER_KEY,
    LINE_ERROR,
    MAX_BATCH_SIZE,
    PROBABILITY,
    TOP_FACTORS,
)
from inference.handler import input_fn, output_fn, predict_fn
from inference.local_endpoint import serve
from inference.predictor import ServingModel
from training.synthetic import synthetic_records

SECRET = "SECRET-VALUE-4411"


def records(n: int, seed: int = 5) -> list[dict[str, Any]]:
    rows = [dict(row) for row in synthetic_records(n, seed=seed, with_notes=True)[0]]
    for number, row in enumerate(rows):
        row[ENCOUNTER_KEY] = f"{number:064x}"
    return rows


def body_of(rows: list[Any]) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode() + b"\n"


def answer_lines(serving: ServingModel, body: bytes, content_type: str = CONTENT_TYPE_JSONLINES):
    text, answered_type = output_fn(
        predict_fn(input_fn(body, content_type), serving), CONTENT_TYPE_JSONLINES
    )
    assert answered_type == CONTENT_TYPE_JSONLINES
    assert not text.endswith("\n")  # AssembleWith=Line adds the newline
    return [json.loads(line) for line in text.split("\n")]


def test_each_line_gets_its_prediction_in_order(serving_model: ServingModel) -> None:
    rows = records(7)
    answers = answer_lines(serving_model, body_of(rows))
    assert [a[ENCOUNTER_KEY] for a in answers] == [r[ENCOUNTER_KEY] for r in rows]
    assert all(0.0 <= a[PROBABILITY] <= 1.0 and a[TOP_FACTORS] for a in answers)


def test_bad_lines_are_answered_alone_and_never_echoed(serving_model: ServingModel) -> None:
    rows: list[Any] = records(6)
    rows[1] = "{not json " + SECRET
    del rows[2]["age_years"]  # required
    rows[3]["diagnosis_codes"] = [SECRET, 7]  # the encoder refuses it
    rows[4] = ["a", "list", SECRET]
    answers = answer_lines(serving_model, body_of(rows))
    assert len(answers) == 6
    assert [LINE_ERROR in a for a in answers] == [False, True, True, True, True, False]
    assert "age_years" in answers[2]["message"]
    assert "diagnosis_codes" in answers[3]["message"]
    assert SECRET not in json.dumps(answers)
    assert answers[5][ENCOUNTER_KEY] == rows[5][ENCOUNTER_KEY]


def test_blank_lines_carry_no_record(serving_model: ServingModel) -> None:
    rows = records(2)
    body = b"\n\n" + json.dumps(rows[0]).encode() + b"\n  \n" + json.dumps(rows[1]).encode()
    answers = answer_lines(serving_model, body)
    assert [a[ENCOUNTER_KEY] for a in answers] == [r[ENCOUNTER_KEY] for r in rows]


def test_mini_batches_beyond_the_request_limit_are_scored_in_chunks(
    serving_model: ServingModel,
) -> None:
    rows = records(MAX_BATCH_SIZE + 17, seed=9)
    answers = answer_lines(serving_model, body_of(rows))
    assert [a[ENCOUNTER_KEY] for a in answers] == [r[ENCOUNTER_KEY] for r in rows]


def test_without_factors_the_probabilities_are_the_same(serving_model: ServingModel) -> None:
    rows = records(5)
    explained = answer_lines(serving_model, body_of(rows))
    plain = answer_lines(serving_model, body_of(rows), f"{CONTENT_TYPE_JSONLINES}; factors=none")
    assert all(not a[TOP_FACTORS] for a in plain)
    for a, b in zip(explained, plain, strict=True):
        assert abs(a[PROBABILITY] - b[PROBABILITY]) < 1e-6


def test_the_server_answers_json_lines_on_invocations(serving_model: ServingModel) -> None:
    rows = records(3)
    with serve(serving=serving_model) as endpoint:
        request = urllib.request.Request(
            f"{endpoint.url}/invocations",
            data=body_of(rows),
            headers={"Content-Type": CONTENT_TYPE_JSONLINES, "Accept": CONTENT_TYPE_JSONLINES},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            assert reply.headers["Content-Type"].startswith(CONTENT_TYPE_JSONLINES)
            lines = reply.read().decode().split("\n")
    assert [json.loads(line)[ENCOUNTER_KEY] for line in lines] == [r[ENCOUNTER_KEY] for r in rows]
