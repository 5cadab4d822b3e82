"""A realistic training output for the registrar tests: the report training.evaluation builds."""

from __future__ import annotations

import io
import json
import tarfile
from functools import cache
from typing import Any

import numpy as np

from contracts.drift import build_baseline
from training import evaluation as training_evaluation
from training.metrics import summary

THRESHOLD = 0.3
#: Per-group sizes: ``X`` is below the evaluation's 30-patient floor.
SEX_GROUPS = {"F": 300, "M": 280, "X": 12}


@cache
def _report() -> str:
    rng = np.random.default_rng(7)
    n = sum(SEX_GROUPS.values())
    labels = (rng.random(n) < 0.2).astype(np.float64)
    probabilities = np.clip(0.15 + 0.4 * labels + rng.normal(0, 0.15, n), 0.01, 0.99)
    baseline = np.clip(0.18 + 0.2 * labels + rng.normal(0, 0.2, n), 0.01, 0.99)
    sex = [group for group, size in SEX_GROUPS.items() for _ in range(size)]
    ages = ["<40", "40-64", "65-79", "80+"]
    report = training_evaluation.build_evaluation(
        labels=labels,
        probabilities=probabilities,
        threshold=THRESHOLD,
        validation=summary(labels, probabilities, THRESHOLD),
        subgroups={"sex": sex, "age_band": [ages[i % 4] for i in range(n)]},
        baseline_probabilities=baseline,
        seed=0,
        alert_budget=0.1,
        bootstrap_resamples=40,
    )
    factors = [
        [
            {"feature": f"age = {40 + i % 50}", "direction": "increases", "contribution": 0.2},
            {
                "feature": "diagnosis 4280 (Heart failure)",
                "direction": "increases",
                "contribution": 0.1,
            },
        ]
        for i in range(200)
    ]
    report["explainability"] = training_evaluation.global_factor_importance(factors)
    return json.dumps(report)


def full_evaluation() -> dict[str, Any]:
    """A fresh copy of a complete evaluation.json (tests may mutate it)."""
    return json.loads(_report())


def metadata() -> dict[str, Any]:
    return {
        "model_version": "readmission-multimodal-20260101000000",
        "schema_version": "3.0",
        "architecture": "BERT code-sequence encoder (2 layers, hidden 64)",
        "hyperparameters": {"epochs": 3, "learning_rate": 0.0003, "hidden_size": 64},
        "training": {
            "epochs_run": 3,
            "best_epoch": 2,
            "train_seconds": 41.5,
            "world_size": 2,
            "device": "cpu",
        },
        "training_data": {"rows": {"train": 4000, "validation": 600, "test": 592}},
    }


def drift_baseline() -> dict[str, Any]:
    records = [
        {
            "age_years": 50 + i % 30,
            "sex": "F" if i % 2 else "M",
            "length_of_stay_days": 1 + i % 9,
            "diagnosis_codes": ["icd9cm:4280"],
        }
        for i in range(100)
    ]
    return build_baseline(records, [0.1 + (i % 8) / 10 for i in range(100)])


def manifest() -> dict[str, Any]:
    return {
        "source": "mimic3",
        "rows_in": 5400,
        "rows_out": 5192,
        "rows_excluded": 150,
        "rows_quarantined": 58,
        "reconciled": True,
    }


def archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def model_files(
    report: dict[str, Any] | None, *, prefix: str = "./", without: tuple[str, ...] = ()
) -> dict[str, bytes]:
    """The members of a model.tar.gz; ``without`` leaves documents out."""
    documents: dict[str, Any] = {
        "metadata.json": metadata(),
        "drift_baseline.json": drift_baseline(),
    }
    if report is not None:
        documents["evaluation.json"] = report
    files = {f"{prefix}{name}": json.dumps(body).encode() for name, body in documents.items()}
    files[f"{prefix}model_card.html"] = b"<html><body>card</body></html>"
    files[f"{prefix}model.safetensors"] = b"\x00" * 64
    files[f"{prefix}code/serving_entry.py"] = b"pass\n"
    return {k: v for k, v in files.items() if k.removeprefix(prefix) not in without}
