"""FHIR input: the strict reader of ``fhir_mapping`` against the ``fhir.resources`` models.

Two costs decide which one the prediction Lambda uses to validate a FHIR Bundle:

- cold import, in a fresh interpreter (the Lambda's cold start pays it): ``fhir_mapping``
  against the ``fhir.resources`` R4B models of the resource types a Bundle carries (the
  package has no R4 models; R4B is the closest);
- per request: ``map_bundle`` alone, against ``Bundle.model_validate`` (the models' full
  validation of every element) followed by the same mapping, on a typical discharge Bundle
  (a stay with history, 40 diagnoses, 10 procedures, 30 medications, 120 lab results and a
  discharge summary).

Run: ``python benchmarks/fhir_parsing.py`` (writes benchmarks/results/fhir_parsing.json).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULT = ROOT / "benchmarks" / "results" / "fhir_parsing.json"
IMPORT_RUNS = 7
REQUESTS = 200
#: The cold-import budget of the prediction Lambda (benchmarks/api_cold_import.py).
COLD_IMPORT_TARGET_MS = 300.0
FHIR_MODELS = (
    "bundle",
    "patient",
    "encounter",
    "condition",
    "procedure",
    "medicationrequest",
    "observation",
    "documentreference",
)
_IMPORTS = {
    "fhir_mapping (strict reader)": "import fhir_mapping",
    "fhir.resources R4B models": "; ".join(f"import fhir.resources.R4B.{m}" for m in FHIR_MODELS),
}
_TIMED = (
    "import time, json, pydantic; t = time.perf_counter(); {statement}; "
    "print((time.perf_counter() - t) * 1000)"
)


def typical_bundle() -> dict[str, Any]:
    """A discharge Bundle of the size a real stay has."""
    from contracts import fhir
    from local_platform import ehr_bundle as b

    admitted = datetime(2025, 3, 1, 8, tzinfo=UTC)
    end = admitted + timedelta(days=6)
    resources = [
        b.patient("p", "1948-05-01", "female"),
        b.encounter("e", "p", admitted, end, service="medicine"),
        *(
            b.encounter(
                f"h{n}",
                "p",
                admitted - timedelta(days=40 * n + 30),
                admitted - timedelta(days=40 * n + 27),
            )
            for n in range(5)
        ),
        *(b.condition(f"c{n}", "p", "e", f"I{10 + n}", fhir.SYSTEM_ICD10CM) for n in range(40)),
        *(b.procedure(f"x{n}", "p", "e", "02HV33Z", fhir.SYSTEM_ICD10PCS) for n in range(10)),
        *(
            b.medication_request(f"m{n}", "p", "e", f"drug {n}", admitted + timedelta(hours=n))
            for n in range(30)
        ),
        *(
            b.observation(
                f"o{n}",
                "p",
                "e",
                name=f"lab {n % 25}",
                loinc="2345-7",
                value=90.0 + n,
                effective=admitted + timedelta(hours=n),
                abnormal=n % 4 == 0,
            )
            for n in range(120)
        ),
        b.discharge_summary("d", "p", "e", "Discharged home. " * 200, end),
    ]
    return b.bundle(resources)


def cold_import_ms(statement: str) -> dict[str, float]:
    """Median and max of ``statement``'s import time over fresh interpreters."""
    samples = []
    for _ in range(IMPORT_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", _TIMED.format(statement=statement)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        samples.append(float(out.stdout.strip()))
    return {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1)}


def per_request_ms(bundle: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Median and p95 per Bundle: mapping alone, and the models' validation then mapping."""
    from fhir.resources.R4B.bundle import Bundle

    from fhir_mapping import map_bundle

    text = json.dumps(bundle)

    def strict() -> None:
        map_bundle(json.loads(text))

    def with_models() -> None:
        Bundle.model_validate_json(text)
        map_bundle(json.loads(text))

    results = {}
    for name, work in (
        ("fhir_mapping (strict reader)", strict),
        ("fhir.resources R4B models + mapping", with_models),
    ):
        work()  # warm
        samples = []
        for _ in range(REQUESTS):
            start = time.perf_counter()
            work()
            samples.append((time.perf_counter() - start) * 1000)
        ordered = sorted(samples)
        results[name] = {
            "median_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        }
    return results


def main() -> None:
    bundle = typical_bundle()
    imports = {name: cold_import_ms(statement) for name, statement in _IMPORTS.items()}
    requests = per_request_ms(bundle)
    result = {
        "bundle": {"entries": len(bundle["entry"]), "bytes": len(json.dumps(bundle))},
        "cold_import": imports,
        "per_request": requests,
        "cold_import_target_ms": COLD_IMPORT_TARGET_MS,
        "choice": "fhir_mapping (strict reader)",
        "why": (
            "The models' import alone costs a large share of the Lambda's whole cold-import "
            "budget and their validation multiplies the per-request cost; the strict reader "
            "checks the elements the mapping reads (types, formats, references, code systems) "
            "and the mapped record is validated by the API's own request model."
        ),
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
