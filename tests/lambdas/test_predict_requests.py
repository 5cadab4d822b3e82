"""Malformed and adversarial requests, class by class: every one gets the documented 4xx.

Encodings (the base64 flag, padding, non-UTF-8, lone surrogates, BOM, NUL), headers
(Content-Type parsed as a media type, missing, repeated, mixed-case, charsets; Content-Length
lies; Content-Encoding), JSON (duplicate keys, NaN and infinities, huge numbers, deep nesting,
huge strings, wrong top-level types) and routing (trailing slash, case, methods). Each case
asserts the status, the error code, the error body's shape (``ErrorResponse``) and that
nothing the caller sent comes back.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from contracts.serving import MAX_BODY_BYTES, MAX_NOTE_CHARS
from lambdas.predict.schema import ErrorResponse
from tests.lambdas.predict_fixtures import (
    GATEWAY_REQUEST_ID,
    ApiResult,
    PredictApi,
    api_gateway_event,
    predict_api,
    valid_record,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

#: Planted in what a test sends; never to be found in what comes back.
CANARY = "qxcanary7731"
RECORD = valid_record(patient_id=CANARY)
RECORD_JSON = json.dumps(RECORD)


@pytest.fixture(scope="module")
def shared_api() -> Iterator[PredictApi]:
    with predict_api() as harness:
        yield harness


@pytest.fixture
def api(shared_api: PredictApi) -> PredictApi:
    shared_api.reset()
    return shared_api


def post(api: PredictApi, **event: Any) -> ApiResult:
    return api.invoke(api_gateway_event("POST", "/predict", **event))


def raw_event(body: Any, *, base64_encoded: Any = False, **headers: str | None) -> dict[str, Any]:
    """A POST /predict event whose ``body`` and flag are set exactly as given."""
    event = api_gateway_event("POST", "/predict", raw_body="", headers=headers or None)
    event["body"] = body
    event["isBase64Encoded"] = base64_encoded
    return event


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def assert_error(
    api: PredictApi, result: ApiResult, status: int, code: str, reason: str | None = None
) -> None:
    """The documented error: status, code, body shape, no echo, and no endpoint call."""
    assert result.status == status, result.raw_body
    assert result.headers["content-type"] == "application/json"
    body = ErrorResponse.model_validate_json(result.raw_body)
    assert (body.error, body.request_id) == (code, GATEWAY_REQUEST_ID)
    if reason is not None:
        assert body.details is not None
        assert reason in {detail.reason for detail in body.details}, body.details
    assert CANARY not in result.raw_body + json.dumps(result.headers)
    assert api.fake.invocations == 0


# --- encodings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "!!not base64!!",
        b64(RECORD_JSON.encode())[:-1],  # padding cut
        b64(RECORD_JSON.encode()) + "=",  # padding where none belongs
        b64(RECORD_JSON.encode())[:40] + "\n" + b64(RECORD_JSON.encode())[40:],  # a line break
        base64.urlsafe_b64encode(b"\xfb\xff" * 20).decode(),  # the URL-safe alphabet
        "eyJhIjoxfQ==é",  # a character outside ASCII
        "=",
    ],
)
def test_invalid_base64_is_400(api: PredictApi, body: str) -> None:
    result = api.invoke(raw_event(body, base64_encoded=True))
    assert_error(api, result, 400, "invalid_request", "base64_invalid")
    assert result.body["fields"] == ["body"]


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe" + RECORD_JSON.encode("utf-16-le"),  # UTF-16 with its BOM
        RECORD_JSON.replace("ADM", "ADM\u00e9").encode("latin-1"),  # Latin-1 bytes
        RECORD_JSON.encode()[:-3] + b"\xc3",  # a truncated UTF-8 sequence
        RECORD_JSON.replace("ADM", "\ud800").encode("utf-8", "surrogatepass"),  # CESU surrogate
        b"\xc0\xaf" + RECORD_JSON.encode(),  # an overlong encoding
    ],
)
def test_base64_body_that_is_not_utf8_is_400(api: PredictApi, data: bytes) -> None:
    result = api.invoke(raw_event(b64(data), base64_encoded=True))
    assert_error(api, result, 400, "invalid_request", "unicode_invalid")


@pytest.mark.parametrize("surrogate", [chr(0xD800), chr(0xDFFF), chr(0xDC00) + chr(0xD800)])
def test_text_body_with_a_lone_surrogate_is_400(api: PredictApi, surrogate: str) -> None:
    # The Lambda runtime decodes the event's JSON, so a body "\ud800" arrives as a lone
    # surrogate in a str: it has no UTF-8 form.
    result = api.invoke(raw_event(RECORD_JSON.replace("ADM", surrogate)))
    assert_error(api, result, 400, "invalid_request", "unicode_invalid")


def test_escaped_lone_surrogate_in_json_is_400(api: PredictApi) -> None:
    result = api.invoke(raw_event(RECORD_JSON.replace("ADM", "\\ud800")))
    assert_error(api, result, 400, "invalid_request", "json_invalid")


@pytest.mark.parametrize("base64_encoded", [False, True])
def test_byte_order_mark_is_400(api: PredictApi, base64_encoded: bool) -> None:
    text = "\ufeff" + RECORD_JSON
    body = b64(text.encode()) if base64_encoded else text
    assert_error(
        api, api.invoke(raw_event(body, base64_encoded=base64_encoded)), 400, "invalid_request"
    )


def test_raw_nul_is_400_but_an_escaped_one_is_just_a_character(api: PredictApi) -> None:
    result = api.invoke(raw_event(RECORD_JSON.replace("ADM", "A\x00DM")))
    assert_error(api, result, 400, "invalid_request", "json_invalid")
    escaped = json.dumps(valid_record(note_text="before\u0000after"))
    assert api.invoke(raw_event(escaped)).status == 200


@pytest.mark.parametrize("flag", ["true", "TRUE", True])
def test_base64_flag_as_a_boolean_or_its_string(api: PredictApi, flag: Any) -> None:
    assert api.invoke(raw_event(b64(RECORD_JSON.encode()), base64_encoded=flag)).status == 200


@pytest.mark.parametrize("flag", [False, "false", None])
def test_base64_text_without_the_flag_is_read_as_json_and_refused(
    api: PredictApi, flag: Any
) -> None:
    result = api.invoke(raw_event(b64(RECORD_JSON.encode()), base64_encoded=flag))
    assert_error(api, result, 400, "invalid_request", "json_invalid")


@pytest.mark.parametrize("body", [None, "", {"patient_id": CANARY}, 42, [RECORD_JSON]])
def test_missing_empty_or_non_text_body_is_400(api: PredictApi, body: Any) -> None:
    assert_error(api, api.invoke(raw_event(body)), 400, "invalid_request")


def test_base64_body_over_the_limit_is_413_before_decoding(api: PredictApi) -> None:
    body = "A" * (MAX_BODY_BYTES // 3 * 4 + 8)
    assert_error(api, api.invoke(raw_event(body, base64_encoded=True)), 413, "payload_too_large")


def test_multibyte_text_over_the_limit_in_bytes_is_413(api: PredictApi) -> None:
    note = "\u00e9" * (MAX_BODY_BYTES // 2)  # under the limit in characters, over it in bytes
    result = api.invoke(raw_event(json.dumps(valid_record(note_text=note), ensure_ascii=False)))
    assert_error(api, result, 413, "payload_too_large")


# --- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/jsonp",
        "application/json-patch+json",
        "application/x-json",
        "text/json",
        "text/plain",
        "application/json, text/plain",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "application/json; charset",
        "application/json; charset=utf-8; charset=utf-8",
        "json",
        "",
        " ",
    ],
)
def test_anything_but_utf8_application_json_is_415(api: PredictApi, content_type: str) -> None:
    result = post(api, body=RECORD, headers={"Content-Type": content_type})
    assert_error(api, result, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("content-type", "application/json"),
        ("CONTENT-TYPE", "APPLICATION/JSON"),
        ("Content-type", 'application/json; charset="UTF-8"'),
        ("Content-Type", "application/json ;charset=utf-8; profile=x"),
    ],
)
def test_content_type_name_case_and_parameters(api: PredictApi, name: str, value: str) -> None:
    result = post(api, body=RECORD, headers={"Content-Type": None, name: value})
    assert result.status == 200, result.raw_body


def test_repeated_content_type_must_agree(api: PredictApi) -> None:
    same = {"Content-Type": ["application/json", "application/json; charset=utf-8"]}
    assert post(api, body=RECORD, multi_headers=same).status == 200
    api.fake.invocations = 0
    # API Gateway's single-value map holds the last value; the other must not be overlooked.
    for values in (["text/plain", "application/json"], ["application/json", "text/html"]):
        result = post(api, body=RECORD, multi_headers={"Content-Type": values})
        assert_error(api, result, 415, "unsupported_media_type")
    both_cases = {"Content-Type": ["application/json"], "content-type": ["text/plain"]}
    assert_error(
        api, post(api, body=RECORD, multi_headers=both_cases), 415, "unsupported_media_type"
    )


def test_headers_given_only_as_single_values_are_read(api: PredictApi) -> None:
    event = api_gateway_event("POST", "/predict", RECORD, headers={"Content-Type": "text/plain"})
    event["multiValueHeaders"] = None
    assert_error(api, api.invoke(event), 415, "unsupported_media_type")
    event["headers"] = {"content-type": "application/json"}
    assert api.invoke(event).status == 200
    api.fake.invocations = 0
    event["headers"] = None
    assert_error(api, api.invoke(event), 415, "unsupported_media_type")


@pytest.mark.parametrize("length", ["5", "0", "-1", "abc", "99999999999", "1, 2"])
def test_content_length_is_never_trusted(api: PredictApi, length: str) -> None:
    assert post(api, body=RECORD, headers={"Content-Length": length}).status == 200
    api.fake.invocations = 0
    big = json.dumps({"instances": [valid_record(note_text="n" * MAX_NOTE_CHARS)] * 6})
    result = post(api, raw_body=big, headers={"Content-Length": length})
    assert_error(api, result, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("coding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("GZIP", gzip.compress),
        ("deflate", zlib.compress),
        ("identity, gzip", gzip.compress),
    ],
)
def test_compressed_body_is_decompressed(api: PredictApi, coding: str, compress: Any) -> None:
    event = raw_event(
        b64(compress(RECORD_JSON.encode())), base64_encoded=True, **{"Content-Encoding": coding}
    )
    assert api.invoke(event).status == 200
    assert api.fake.received_records()[0]["age_years"] == RECORD["age_years"]


@pytest.mark.parametrize("coding", ["gzip", "deflate", "identity", ""])
def test_body_already_decompressed_by_the_gateway_is_read(api: PredictApi, coding: str) -> None:
    result = post(api, body=RECORD, headers={"Content-Encoding": coding})
    assert result.status == 200


@pytest.mark.parametrize("coding", ["br", "compress", "zstd", "gzip, gzip", "gzip, br", "g zip"])
def test_unknown_or_stacked_content_coding_is_415_naming_what_is_accepted(
    api: PredictApi, coding: str
) -> None:
    event = raw_event(
        b64(gzip.compress(RECORD_JSON.encode())),
        base64_encoded=True,
        **{"Content-Encoding": coding},
    )
    result = api.invoke(event)
    assert_error(api, result, 415, "unsupported_media_type")
    assert result.headers["accept-encoding"] == "gzip, deflate, identity"


@pytest.mark.parametrize(
    "data",
    [
        gzip.compress(RECORD_JSON.encode())[:-12],  # truncated
        gzip.compress(RECORD_JSON.encode()) + b"trailing bytes",
        b"\x1f\x8b" + b"\x00" * 30,  # a gzip magic, then garbage
    ],
)
def test_corrupt_gzip_is_415(api: PredictApi, data: bytes) -> None:
    event = raw_event(b64(data), base64_encoded=True, **{"Content-Encoding": "gzip"})
    assert_error(api, api.invoke(event), 415, "unsupported_media_type")


def test_decompression_bomb_is_413_without_inflating_it(api: PredictApi) -> None:
    bomb = gzip.compress(b" " * (50 * MAX_BODY_BYTES))  # 50 MB of spaces in ~50 KB
    event = raw_event(b64(bomb), base64_encoded=True, **{"Content-Encoding": "gzip"})
    assert_error(api, api.invoke(event), 413, "payload_too_large")


def test_gzip_without_its_header_is_not_json(api: PredictApi) -> None:
    event = raw_event(b64(gzip.compress(RECORD_JSON.encode())), base64_encoded=True)
    assert_error(api, api.invoke(event), 400, "invalid_request", "unicode_invalid")


# --- JSON ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (RECORD_JSON[:-1] + ', "age_years": 70}', "age_years"),
        (RECORD_JSON[:-1] + f', "patient_id": "{CANARY}"}}', "patient_id"),
        (
            '{"instances": [' + RECORD_JSON + "], " + '"instances": [' + RECORD_JSON + "]}",
            "instances",
        ),
        (
            '{"instances": [' + RECORD_JSON + ", " + RECORD_JSON[:-1] + ', "sex": "M"}]}',
            "instances.1.sex",
        ),
    ],
)
def test_duplicate_keys_are_400_naming_the_key(api: PredictApi, body: str, field: str) -> None:
    result = post(api, raw_body=body)
    assert_error(api, result, 400, "invalid_request", "duplicate_key")
    assert result.body["fields"] == [field]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_nan_and_infinities_are_400(api: PredictApi, constant: str) -> None:
    body = RECORD_JSON.replace('"length_of_stay_days": 4.5', f'"length_of_stay_days": {constant}')
    assert constant in body
    result = post(api, raw_body=body)
    assert_error(api, result, 400, "invalid_request")
    assert result.body["fields"] == ["length_of_stay_days"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("age_years", "9" * 40),
        ("age_years", "9" * 5000),
        ("patient_id", "9" * 129),
        ("patient_id", "1e200"),
        ("charlson_index", "-" + "9" * 400),
    ],
)
def test_huge_numbers_are_400(api: PredictApi, field: str, value: str) -> None:
    record = {**RECORD, field: 0}
    body = json.dumps(record).replace(f'"{field}": 0', f'"{field}": {value}')
    assert_error(api, post(api, raw_body=body), 400, "invalid_request")


def test_integral_numbers_are_integers(api: PredictApi) -> None:
    # JSON has one number type; JSON Schema's integer is a number without a fraction.
    body = RECORD_JSON.replace('"age_years": 67', '"age_years": 67.0')
    assert post(api, raw_body=body).status == 200
    assert api.fake.received_records()[0]["age_years"] == 67
    body = RECORD_JSON.replace('"age_years": 67', '"age_years": 67.5')
    assert post(api, raw_body=body).status == 400


@pytest.mark.parametrize("depth", [64, 1000, 100_000])
def test_deep_nesting_is_400(api: PredictApi, depth: int) -> None:
    for body in ("[" * depth + "]" * depth, '{"instances": ' + "[" * depth + "]" * depth + "}"):
        assert_error(api, post(api, raw_body=body), 400, "invalid_request")


def test_huge_strings_are_400_or_413(api: PredictApi) -> None:
    result = post(api, body=valid_record(note_text="n" * (MAX_NOTE_CHARS + 1)))
    assert_error(api, result, 400, "invalid_request")
    assert result.body["fields"] == ["note_text"]
    result = post(api, body=valid_record(patient_id=CANARY * 20))
    assert result.body["fields"] == ["patient_id"]
    result = post(api, raw_body='{"' + CANARY + "x" * MAX_BODY_BYTES + '": 1}')
    assert_error(api, result, 413, "payload_too_large")


@pytest.mark.parametrize(
    "body", ["[]", "[{}]", '"text"', "42", "4.2", "true", "null", "{}", '{"instances": {}}']
)
def test_wrong_top_level_types_are_400(api: PredictApi, body: str) -> None:
    assert_error(api, post(api, raw_body=body), 400, "invalid_request")


# --- paths and methods ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/predict/",
        "/predict//",
        "//predict",
        "/Predict",
        "/PREDICT",
        "/predict.json",
        "/health/",
        "/",
    ],
)
def test_only_exact_paths_are_resources(api: PredictApi, path: str) -> None:
    for method in ("POST", "GET"):
        result = api.invoke(api_gateway_event(method, path, RECORD))
        assert_error(api, result, 404, "not_found")


@pytest.mark.parametrize(
    ("path", "method", "allow"),
    [
        ("/predict", "post", "POST"),
        ("/predict", "Post", "POST"),
        ("/predict", "GET", "POST"),
        ("/predict", "HEAD", "POST"),
        ("/predict", "OPTIONS", "POST"),
        ("/predict", "PUT", "POST"),
        ("/predict", "PATCH", "POST"),
        ("/predict", "DELETE", "POST"),
        ("/predict", "QUERY", "POST"),
        ("/predict", "FOO", "POST"),
        ("/health", "get", "GET"),
        ("/health", "HEAD", "GET"),
        ("/health", "POST", "GET"),
        ("/health", "OPTIONS", "GET"),
    ],
)
def test_other_methods_on_a_resource_are_405_with_allow(
    api: PredictApi, path: str, method: str, allow: str
) -> None:
    result = api.invoke(api_gateway_event(method, path, RECORD))
    assert_error(api, result, 405, "method_not_allowed")
    assert result.headers["allow"] == allow
