"""Property tests of the API with malformed requests: never a 5xx, never an echo.

The first drives POST /predict with malformed bodies; the second, any request at all: any
method and path, repeated and mixed-case headers, bodies well or badly encoded (base64 flag
set or not, non-UTF-8 bytes, lone surrogates, gzip), each answered with a documented status
and error body.

Every string the generator plants is a "canary" (``qx`` + letters and digits) and every planted
number is too large to appear by chance, so finding one in the response proves an echo.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.encounter import model_input_fields
from lambdas.predict.schema import ErrorResponse, HealthResponse
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


# --- arbitrary requests: any method, path, headers, body encoding --------------------------------

#: Planted in methods, paths, header names and values, and bodies; never to come back.
ECHO_CANARY = "qxechocanary"
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON;charset=UTF-8",
            "application/jsonp",
            "application/json, text/plain",
            "application/json; charset=latin-1",
            "text/plain",
            "",
        ]
    ),
    ANY_TEXT.map(lambda text: f"{text}{ECHO_CANARY}"),
)
header_values = st.one_of(content_types, ANY_TEXT, st.just(ECHO_CANARY))
headers = st.dictionaries(
    st.sampled_from(
        [
            "Content-Type",
            "content-type",
            "CONTENT-TYPE",
            "Content-Encoding",
            "Content-Length",
            "Accept",
            f"X-{ECHO_CANARY}",
        ]
    ),
    st.lists(header_values, min_size=1, max_size=3),
    max_size=4,
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[Any, Any]:
    """A body and its ``isBase64Encoded`` flag, well or badly encoded."""
    record = valid_record(patient_id=ECHO_CANARY, note_text=draw(ANY_TEXT) + ECHO_CANARY)
    text = draw(st.sampled_from([json.dumps(record), json.dumps(record, ensure_ascii=False)]))
    kind = draw(
        st.sampled_from(["json", "text", "bytes", "gzip", "bad_base64", "mutated", "other"])
    )
    if kind == "json":
        return text, False
    if kind == "text":
        return draw(ANY_TEXT) + ECHO_CANARY, draw(st.booleans())
    if kind == "bytes":
        data = draw(st.binary(max_size=64)) + ECHO_CANARY.encode()
        return base64.b64encode(data).decode("ascii"), True
    if kind == "gzip":
        return base64.b64encode(gzip.compress(text.encode("utf-8", "surrogatepass"))).decode(), True
    if kind == "bad_base64":
        return draw(ANY_TEXT) + ECHO_CANARY + draw(st.sampled_from(["", "=", "==", "!"])), True
    if kind == "mutated":
        return json.dumps(draw(mutated_records())), draw(st.booleans())
    return draw(st.one_of(st.none(), st.integers(), st.just({"patient_id": ECHO_CANARY}))), False


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    method = draw(
        st.one_of(
            st.sampled_from(["POST", "GET", "post", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"]),
            st.just(ECHO_CANARY.upper()),
        )
    )
    path = draw(
        st.sampled_from(
            ["/predict", "/health", "/predict/", "/PREDICT", "//predict", f"/{ECHO_CANARY}"]
        )
    )
    multi = draw(headers)
    event = api_gateway_event(method, path, raw_body="", headers={"Content-Type": None})
    event["multiValueHeaders"] = multi or draw(st.sampled_from([None, {}]))
    event["headers"] = {name: values[-1] for name, values in multi.items()} or None
    event["body"], event["isBase64Encoded"] = draw(bodies())
    return event


DOCUMENTED = {200, 400, 404, 405, 413, 415, 503}


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(event=requests())
def test_any_request_gets_a_documented_answer_without_echo(
    fuzz_api: PredictApi, event: dict[str, Any]
) -> None:
    result = fuzz_api.invoke(event)
    assert result.status in DOCUMENTED, (result.status, result.raw_body)
    answer = result.raw_body + json.dumps(result.headers)
    assert ECHO_CANARY not in answer
    assert ECHO_CANARY.upper() not in answer
    if result.status == 200:
        assert (event["httpMethod"], event["path"]) in {("POST", "/predict"), ("GET", "/health")}
        return
    assert result.headers["content-type"] == "application/json"
    if event["path"] == "/health" and event["httpMethod"] == "GET":
        HealthResponse.model_validate_json(result.raw_body)
        return
    error = ErrorResponse.model_validate_json(result.raw_body)
    assert error.error in ERROR_CODES[result.status]
    if result.status == 405:
        assert result.headers["allow"] in {"POST", "GET"}


ERROR_CODES = {
    400: {"invalid_request"},
    404: {"not_found"},
    405: {"method_not_allowed"},
    413: {"payload_too_large"},
    415: {"unsupported_media_type"},
    503: {"endpoint_unavailable", "deadline_exceeded", "service_unavailable"},
}
