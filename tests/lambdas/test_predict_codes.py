"""The API takes system-tagged codes (contract 2.0) and untagged ones (read as ICD-9).

Property tests over mixed-era code lists: every well-formed code of a field's systems is
accepted, tagged or not, with any case and dots, and forwarded normalised (ICD-9 untagged, the
form a contract-1.x model also reads; every other system tagged); an unknown or disallowed
system, or a code without its system's shape, is a 400 naming the entry, never the code.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

import pytest
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from contracts import codes
from contracts.codes import CodeSystem
from lambdas.predict.errors import field_errors
from lambdas.predict.schema import (
    CODE_MALFORMED,
    CODE_SYSTEM_INVALID,
    PredictRequest,
    code_pattern,
    endpoint_code,
)
from lambdas.predict.validation import parse_body
from tests.lambdas.predict_fixtures import predict_api, valid_record

LIMIT = 1_000_000

_SHAPES = {
    CodeSystem.ICD9CM: r"(?:[0-9]{3,5}|V[0-9]{2,4}|E[0-9]{3,4})",
    CodeSystem.ICD9PCS: r"[0-9]{2,4}",
    CodeSystem.ICD10CM: r"[A-Z][0-9][0-9A-Z]{1,5}",
    CodeSystem.ICD10PCS: r"[0-9A-HJ-NP-Z]{7}",
}


@st.composite
def written_code(draw: st.DrawFn, field_name: str) -> tuple[str, codes.Code]:
    """A code of one of the field's ICD systems as a client might write it, and its meaning."""
    system = draw(st.sampled_from(codes.FIELD_SYSTEMS[field_name]))
    value = draw(st.from_regex(f"^{_SHAPES[system]}$", fullmatch=True).map(str.strip))
    shown = value
    if len(value) > 3 and draw(st.booleans()):
        shown = f"{value[:3]}.{value[3:]}"  # dotted, as printed code books write it
    if draw(st.booleans()):
        shown = shown.lower()
    legacy = codes.LEGACY_SYSTEM[field_name] is system
    if not legacy or draw(st.booleans()):
        tag = draw(st.sampled_from([system.value, system.value.upper()]))
        shown = f"{tag}:{shown}"
    return shown, codes.Code(system, value.upper())


def _parsed(record: dict[str, Any]) -> dict[str, Any]:
    request = cast(Any, parse_body(json.dumps(record), PredictRequest, LIMIT))
    return cast(dict[str, Any], request.root.model_dump())


def _errors(record: dict[str, Any]) -> tuple[list[tuple[str, str]], str]:
    with pytest.raises(RequestValidationError) as caught:
        parse_body(json.dumps(record), PredictRequest, LIMIT)
    return field_errors(caught.value.errors()), repr(caught.value.errors())


def _expected(field_name: str, code: codes.Code) -> str:
    return code.code if codes.LEGACY_SYSTEM[field_name] is code.system else code.tagged


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    diagnoses=st.lists(written_code("diagnosis_codes"), max_size=12),
    procedures=st.lists(written_code("procedure_codes"), max_size=6),
)
def test_mixed_era_code_lists_are_accepted_and_forwarded_normalised(
    diagnoses: list[tuple[str, codes.Code]], procedures: list[tuple[str, codes.Code]]
) -> None:
    record = valid_record(
        diagnosis_codes=[shown for shown, _ in diagnoses],
        procedure_codes=[shown for shown, _ in procedures],
    )
    parsed = _parsed(record)
    assert parsed["diagnosis_codes"] == [_expected("diagnosis_codes", c) for _, c in diagnoses]
    assert parsed["procedure_codes"] == [_expected("procedure_codes", c) for _, c in procedures]
    # What is forwarded parses back to the same codes (tagged or, for ICD-9, untagged).
    again = [codes.parse("diagnosis_codes", v) for v in parsed["diagnosis_codes"]]
    assert again == [c for _, c in diagnoses]


_UNKNOWN_TAG = st.from_regex(r"^[a-z][a-z0-9]{1,9}$", fullmatch=True).filter(
    lambda t: t not in {s.value for s in CodeSystem}
)


@settings(max_examples=40, deadline=None)
@given(
    good=st.lists(written_code("diagnosis_codes"), max_size=5),
    position=st.integers(min_value=0, max_value=5),
    bad=st.one_of(
        st.tuples(_UNKNOWN_TAG, st.just(CODE_SYSTEM_INVALID)),
        # A system of another field: a procedure or drug code in the diagnoses.
        st.sampled_from(["icd10pcs", "icd9pcs", "ndc", "rxnorm"]).map(
            lambda t: (t, CODE_SYSTEM_INVALID)
        ),
        st.sampled_from(["icd10cm", "icd9cm"]).map(lambda t: (t, CODE_MALFORMED)),
    ),
)
def test_an_unknown_system_or_malformed_code_is_400_naming_the_entry_not_the_code(
    good: list[tuple[str, codes.Code]], position: int, bad: tuple[str, str]
) -> None:
    tag, reason = bad
    secret = "QZ7731SECRET" if reason == CODE_MALFORMED else "99871"
    entries = [shown for shown, _ in good]
    position = min(position, len(entries))
    entries.insert(position, f"{tag}:{secret}")
    errors, text = _errors(valid_record(diagnosis_codes=entries))
    assert errors == [(f"diagnosis_codes.{position}", reason)]
    assert secret not in text
    assert f"{tag}:" not in text


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("4280x", CODE_MALFORMED),  # untagged: read as ICD-9, which it is not
        ("icd10cm:", CODE_MALFORMED),
        ("snomed:84114007", CODE_SYSTEM_INVALID),
        (":4280", CODE_SYSTEM_INVALID),
    ],
)
def test_examples_of_refused_codes(value: str, reason: str) -> None:
    errors, text = _errors(valid_record(diagnosis_codes=["4280", value]))
    assert errors == [("diagnosis_codes.1", reason)]
    assert value not in text or value == ""


def test_names_of_medications_and_labs_stay_free_text() -> None:
    parsed = _parsed(valid_record(medications=["Insulin glargine"], abnormal_labs=["eGFR"]))
    assert parsed["medications"] == ["Insulin glargine"]
    assert parsed["abnormal_labs"] == ["eGFR"]


def test_the_lambda_answers_400_for_a_bad_code_and_forwards_tagged_icd10() -> None:
    """Through the handler: the 400 names the entry and echoes nothing; an accepted mixed-era
    record reaches the endpoint with ICD-9 untagged and ICD-10 tagged, normalised."""
    with predict_api() as api:
        refused = api.predict(valid_record(diagnosis_codes=["4280", "loinc:SECRET-1"]))
        assert refused.status == 400
        assert refused.body["details"] == [
            {"field": "diagnosis_codes.1", "reason": CODE_SYSTEM_INVALID}
        ]
        assert "SECRET" not in refused.raw_body
        assert "loinc" not in refused.raw_body
        record = valid_record(
            diagnosis_codes=["icd9cm:428.0", "icd10cm:e11.9"],
            procedure_codes=["39.95", "ICD10PCS:02hv33z"],
        )
        assert api.predict(record).status == 200
        (received,) = api.fake.received_records()
        assert received["diagnosis_codes"] == ["4280", "icd10cm:E119"]
        assert received["procedure_codes"] == ["3995", "icd10pcs:02HV33Z"]


def _accepted(field_name: str, value: str) -> bool:
    try:
        endpoint_code(field_name, value)
    except PydanticCustomError:
        return False
    return True


_PIECES = st.sampled_from(
    ["icd9cm", "ICD10CM", "icd10pcs", "icd9pcs", "ndc", ":", " ", ".", "\t", "V", "e", "I",
     "O", "z", "0", "4", "28", "50", "9", "\u0131", "\u0664", "02HV33Z"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    field_name=st.sampled_from(["diagnosis_codes", "procedure_codes"]),
    value=st.lists(_PIECES, min_size=1, max_size=6).map("".join),
)
def test_the_documented_pattern_accepts_exactly_what_the_api_accepts(
    field_name: str, value: str
) -> None:
    """The OpenAPI ``pattern`` (what generated clients and schemathesis read) and the Python
    check agree on near-miss strings built from the codes' own pieces."""
    pattern = re.compile(code_pattern(field_name))
    assert bool(pattern.fullmatch(value)) == _accepted(field_name, value)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), field_name=st.sampled_from(["diagnosis_codes", "procedure_codes"]))
def test_every_string_of_the_pattern_is_accepted(data: st.DataObject, field_name: str) -> None:
    value = data.draw(st.from_regex(code_pattern(field_name), fullmatch=True))
    assert _accepted(field_name, value)
