"""System-tagged codes: parsing, legacy (untagged) codes, and refusals that name no code."""

from __future__ import annotations

import pytest

from contracts import fhir
from contracts.codes import (
    FIELD_SYSTEMS,
    Code,
    CodeError,
    CodeSystem,
    is_well_formed,
    parse,
    tag,
)
from contracts.encounter import DISCHARGE_DISPOSITION_CATEGORIES, UNKNOWN


@pytest.mark.parametrize(
    ("field_name", "value", "expected"),
    [
        ("diagnosis_codes", "icd10cm:I50.9", Code(CodeSystem.ICD10CM, "I509")),
        ("diagnosis_codes", "ICD10CM: e11.65", Code(CodeSystem.ICD10CM, "E1165")),
        ("diagnosis_codes", "428.0", Code(CodeSystem.ICD9CM, "4280")),
        ("diagnosis_codes", "V45.81", Code(CodeSystem.ICD9CM, "V4581")),
        ("diagnosis_codes", "E8889", Code(CodeSystem.ICD9CM, "E8889")),
        ("procedure_codes", "38.93", Code(CodeSystem.ICD9PCS, "3893")),
        ("procedure_codes", "icd10pcs:02HV33Z", Code(CodeSystem.ICD10PCS, "02HV33Z")),
        ("medication_codes", "rxnorm:197361", Code(CodeSystem.RXNORM, "197361")),
        ("medication_codes", "ndc:00093-0058-01", Code(CodeSystem.NDC, "00093005801")),
    ],
)
def test_parse_reads_tagged_and_legacy_codes(field_name: str, value: str, expected: Code) -> None:
    assert parse(field_name, value) == expected
    assert parse(field_name, expected.tagged) == expected


@pytest.mark.parametrize(
    ("field_name", "value", "reason"),
    [
        ("diagnosis_codes", "snomed:38341003", "unknown code system"),
        ("diagnosis_codes", "icd10pcs:02HV33Z", "not allowed here"),
        ("procedure_codes", "icd10cm:I509", "not allowed here"),
        ("diagnosis_codes", "icd10cm:9999", "not a well-formed"),
        ("procedure_codes", "icd10pcs:02HV33I", "not a well-formed"),
        ("medication_codes", "197361", "must name its system"),
        ("medications", "metformin", "does not hold coded values"),
    ],
)
def test_parse_refuses_without_echoing_the_code(field_name: str, value: str, reason: str) -> None:
    with pytest.raises(CodeError, match=reason) as raised:
        parse(field_name, value)
    assert value.partition(":")[2] not in str(raised.value) or ":" not in value


def test_lenient_parse_keeps_an_odd_shaped_code_of_a_known_system() -> None:
    assert parse("diagnosis_codes", "icd10cm:XYZ", strict=False) == Code(CodeSystem.ICD10CM, "XYZ")
    assert not is_well_formed(Code(CodeSystem.ICD10CM, "XYZ"))


def test_tag_normalises() -> None:
    assert tag(CodeSystem.ICD10CM, "i50.9 ") == "icd10cm:I509"


def test_fhir_tables_map_into_the_contract_vocabularies() -> None:
    assert set(fhir.DISCHARGE_DISPOSITION.values()) <= set(DISCHARGE_DISPOSITION_CATEGORIES)
    assert UNKNOWN not in fhir.DISCHARGE_DISPOSITION.values()
    for systems, field_name in (
        (fhir.CONDITION_SYSTEMS, "diagnosis_codes"),
        (fhir.PROCEDURE_SYSTEMS, "procedure_codes"),
        (fhir.MEDICATION_SYSTEMS, "medication_codes"),
    ):
        assert set(systems.values()) <= set(FIELD_SYSTEMS[field_name])
