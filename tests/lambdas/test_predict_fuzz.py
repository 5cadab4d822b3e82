"""Property test of POST /predict with malformed bodies: never a 5xx, never an echo.

Every string the generator plants is a "canary" (``qx`` + letters and digits) and every planted
number is too large to appear by chance, so finding one in the response proves an echo.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.encounter import model_input_fields
from tests.lambdas.predict_fixtures import PredictApi, api_gateway_event, predict_api, valid_record

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

CANARY_PREFIX = "qx"
BIG = 10_000_000
FIELDS = ["patient_id", "encounter_id", *(spec.name for spec in model_input_fields())]

canaries = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=4, max_size=10).map(
    lambda s: CANARY_PREFIX + s
)
big_numbers = st.one_of(
    st.integers(BIG, 10**15),
    st.integers(-(10**15), -BIG),
    st.floats(min_value=float(BIG), max_value=1e300, allow_nan=False, allow_infinity=False),
)
bad_values = st.one_of(
    canaries,
    big_numbers,
    st.none(),
    st.booleans(),
    st.lists(st.one_of(canaries, big_numbers), max_size=3),
    st.dictionaries(canaries, st.one_of(canaries, big_numbers), max_size=2),
)
json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), canaries, big_numbers),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(canaries, children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mutated_records(draw: st.DrawFn) -> dict[str, Any]:
    """A valid record with one to three fields replaced, dropped, or unknown ones added."""
    record = valid_record()
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            record[draw(st.sampled_from(FIELDS))] = draw(bad_values)
        elif action == "drop":
            record.pop(draw(st.sampled_from(FIELDS)), None)
        else:
            record[draw(canaries)] = draw(bad_values)
    return record


@st.composite
def malformed_bodies(draw: st.DrawFn) -> str:
    """The raw text of a request body that is wrong in some way."""
    kind = draw(st.sampled_from(["record", "batch", "instances", "json", "truncated"]))
    if kind == "record":
        return json.dumps(draw(mutated_records()))
    if kind == "batch":
        records = draw(
            st.lists(st.one_of(mutated_records(), st.just(valid_record())), min_size=1, max_size=3)
        )
        return json.dumps({"instances": records})
    if kind == "instances":
        return json.dumps({"instances": draw(bad_values)})
    if kind == "json":
        return json.dumps(draw(json_like))
    text = json.dumps(draw(mutated_records()))
    return text[: draw(st.integers(1, len(text) - 1))] + draw(canaries)


def planted(body: str) -> set[str]:
    """The canaries and big numbers in a body's text, as they would appear if echoed."""
    found: set[str] = set()
    for token in body.replace('"', " ").replace(",", " ").replace(":", " ").split():
        token = token.strip("[]{}")
        if token.startswith(CANARY_PREFIX):
            found.add(token)
        else:
            try:
                if abs(float(token)) >= BIG:
                    found.add(token)
            except ValueError:
                continue
    return found


@pytest.fixture(scope="module")
def fuzz_api() -> Iterator[PredictApi]:
    with predict_api() as harness:
        yield harness


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(body=malformed_bodies())
def test_malformed_bodies_never_5xx_and_never_echo(fuzz_api: PredictApi, body: str) -> None:
    result = fuzz_api.invoke(api_gateway_event("POST", "/predict", raw_body=body))
    assert result.status < 500, result.raw_body
    answer = result.raw_body + json.dumps(result.headers)
    leaked = {value for value in planted(body) if value in answer}
    assert not leaked


def test_planted_values_are_found_in_a_body() -> None:
    body = json.dumps({"qxabc1": [12345678901, "qxzz99"], "age_years": 12})
    assert planted(body) == {"qxabc1", "12345678901", "qxzz99"}
