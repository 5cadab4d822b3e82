"""Drift across a coding switch: same patients coded in ICD-10 do not alarm; a case-mix shift does.

Before contract 2.0 diagnoses were bucketed by their ICD-9 category (``code[:3]``): every
ICD-10 code fell outside the training buckets (``icd10cm:I509`` -> ``ICD``), so a switch alone
raised the diagnosis alarm. They are now bucketed by the clinical group both eras share.
"""

from __future__ import annotations

from typing import Any

import pytest

from contracts.drift import PSI_ALARM_THRESHOLD, PSI_WARNING_THRESHOLD, build_baseline
from local_platform.coding_switch import recode_forward, recoded, scenarios
from training.synthetic import synthetic_records


@pytest.fixture(scope="module")
def data() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    train = synthetic_records(1500, seed=3)[0]
    baseline = build_baseline(train, [0.1] * len(train))
    return baseline, synthetic_records(800, seed=4)[0]


def test_a_coding_switch_with_the_same_mix_stays_quiet_and_a_case_mix_shift_alarms(
    data: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    baseline, records = data
    result = scenarios(baseline, records, PSI_ALARM_THRESHOLD, count=600)
    assert result["icd9_as_coded"]["diagnosis_psi"] < PSI_WARNING_THRESHOLD
    assert result["icd10_recoded_same_mix"]["diagnosis_psi"] < PSI_WARNING_THRESHOLD
    assert not result["icd10_recoded_same_mix"]["alarm"]
    assert result["case_mix_shift"]["diagnosis_psi"] > PSI_ALARM_THRESHOLD
    assert result["case_mix_shift"]["alarm"]


def test_the_recoded_day_really_is_in_icd10(
    data: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    """No diagnosis string survives the recoding (E-codes the GEMs flag "no map" aside)."""
    _, records = data
    before = [v for r in records for v in r["diagnosis_codes"]]
    after = [v for r in records for v in recoded(r)["diagnosis_codes"]]
    unchanged = [a for a, b in zip(before, after, strict=True) if a == b]
    assert len(after) == len(before)
    assert all(v.startswith("icd10cm:") for v in after if v not in unchanged)
    assert len(unchanged) / len(before) < 0.1
    assert recode_forward("4280") == "icd10cm:I509"
    assert recode_forward("icd10cm:I509") == "icd10cm:I509"
