"""The endpoint's wire format: what a request may look like and how errors name the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.serving import MAX_BATCH_SIZE
from inference.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedAcceptError,
    UnsupportedContentTypeError,
)
from inference.payload import REQUIRED_FIELDS, parse_request, response_body
from training.synthetic import synthetic_records

SECRET = "DISTINCTIVE-VALUE-7731"


def record(**overrides: Any) -> dict[str, Any]:
    base = dict(synthetic_records(1, seed=1)[0][0])
    base.update(overrides)
    return base


def test_single_object_list_and_instances_are_all_accepted() -> None:
    one = record()
    single = parse_request(json.dumps(one), "application/json")
    assert single.records == [one]
    assert not single.batched
    listed = parse_request(json.dumps([one, one]).encode(), "application/json; charset=utf-8")
    assert listed.records == [one, one]
    assert listed.batched
    wrapped = parse_request(json.dumps({"instances": [one]}).encode(), "Application/JSON")
    assert wrapped.records == [one]
    assert wrapped.batched


@pytest.mark.parametrize("content_type", ["text/csv", "", "application/x-npy", "text/json"])
def test_other_content_types_are_415(content_type: str) -> None:
    with pytest.raises(UnsupportedContentTypeError) as caught:
        parse_request(json.dumps(record()), content_type)
    assert caught.value.status_code == 415


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"\xff\xfe{}", "body"),
        (b"{not json", "body"),
        (b'{"age_years": NaN}', "body"),
        (b'"just a string"', "body"),
        (b'{"instances": {"a": 1}}', "instances"),
        (b'{"instances": []}', "instances"),
        (b"[]", "instances"),
        (b"[1]", "instances.0"),
    ],
)
def test_malformed_bodies_are_400_naming_the_part(body: bytes, field: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(body, "application/json")
    assert caught.value.field == field
    assert caught.value.status_code == 400


def test_a_missing_required_field_is_named_with_its_record() -> None:
    batch = [record(), {k: v for k, v in record().items() if k != "sex"}]
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(json.dumps({"instances": batch}), "application/json")
    assert caught.value.field == "instances.1.sex"
    assert str(caught.value) == "field 'instances.1.sex': is required"


def test_every_non_nullable_model_input_is_required() -> None:
    assert set(REQUIRED_FIELDS) == {
        "age_years", "sex", "admission_type", "admission_source", "discharge_disposition",
        "length_of_stay_days", "prior_admissions_12m", "prior_ed_visits_12m", "num_diagnoses",
        "num_procedures", "num_medications", "num_lab_tests", "num_abnormal_labs",
        "hba1c_result", "max_glucose_result", "charlson_index", "diagnosis_codes",
        "procedure_codes", "medications", "abnormal_labs",
    }  # fmt: skip
    for name in REQUIRED_FIELDS:
        with pytest.raises(InvalidRequestError) as caught:
            parse_request(json.dumps(record(**{name: None})), "application/json")
        assert caught.value.field == name


def test_raw_identifiers_are_refused_without_echoing_them() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(json.dumps([record(patient_id=SECRET)]), "application/json")
    assert caught.value.field == "instances.0.patient_id"
    assert SECRET not in str(caught.value)


def test_encounter_key_must_be_text() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(json.dumps(record(encounter_key=12)), "application/json")
    assert caught.value.field == "encounter_key"


def test_batch_over_the_limit_is_413() -> None:
    parse_request(json.dumps([record()] * MAX_BATCH_SIZE), "application/json")
    with pytest.raises(PayloadTooLargeError) as caught:
        parse_request(json.dumps([record()] * (MAX_BATCH_SIZE + 1)), "application/json")
    assert caught.value.status_code == 413


def test_response_is_compact_json_under_predictions() -> None:
    body, content_type = response_body([{"probability": 0.25}], "application/json")
    assert content_type == "application/json"
    assert body == '{"predictions":[{"probability":0.25}]}'
    for accept in ("", "*/*", "text/html, application/json;q=0.9", "application/*"):
        assert response_body([], accept) == ('{"predictions":[]}', "application/json")


def test_non_json_accept_is_406() -> None:
    with pytest.raises(UnsupportedAcceptError) as caught:
        response_body([], "text/csv")
    assert caught.value.status_code == 406
