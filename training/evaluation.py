"""Test-split evaluation: headline metrics, subgroups, the logistic baseline, evaluation.json.

``evaluation.json`` follows the SageMaker Model Registry's model-quality format
(``binary_classification_metrics`` with ``value``/``standard_deviation`` per metric, see
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-metrics.html) and
adds the project's own sections beside it: calibration, subgroups, baseline, the alert budget
(``training.alert_budget``), bootstrap intervals (``training.bootstrap``) and the decision
curve (``training.decision_curve``). New sections are only ever added, never reshaped: the
registrar reads this document.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from contracts.encounter import ENCOUNTER_KEY
from inference.encoding import CLS_ID, PAD_ID, EncodedBatch, FeatureEncoder
from training import alert_budget as ab
from training import bootstrap
from training import metrics as m
from training.decision_curve import decision_curve

#: Points kept on the ROC and PR curves written to evaluation.json.
CURVE_POINTS = 101
#: Registry metrics at the alert budget, by ``alert_budget.at_alerts`` figure.
BUDGET_REGISTRY_METRICS = {
    "alert_rate_at_alert_budget": "alert_rate",
    "ppv_at_alert_budget": "ppv",
    "sensitivity_at_alert_budget": "sensitivity",
    "number_needed_to_contact_at_alert_budget": "number_needed_to_contact",
}


def baseline_design(encoder: FeatureEncoder, batch: EncodedBatch) -> Any:
    """Sparse design matrix of the baseline: numerics, one-hot categoricals, bag of codes."""
    from scipy import sparse

    n = len(batch)
    blocks = [sparse.csr_matrix(batch.numeric.astype(np.float64))]
    for j, cardinality in enumerate(encoder.category_cardinalities):
        rows = np.arange(n)
        blocks.append(
            sparse.csr_matrix((np.ones(n), (rows, batch.categorical[:, j])), shape=(n, cardinality))
        )
    ids = batch.code_ids
    keep = (batch.code_mask == 1) & (ids != CLS_ID) & (ids != PAD_ID)
    rows, cols = np.nonzero(keep)
    codes = sparse.csr_matrix(
        (np.ones(len(rows)), (rows, ids[rows, cols])), shape=(n, len(encoder.code_vocab))
    )
    codes.data = np.minimum(codes.data, 1.0)  # presence, not repeat count
    blocks.append(codes)
    return sparse.hstack(blocks, format="csr")


def fit_baseline(
    encoder: FeatureEncoder, train: EncodedBatch, y_train: np.ndarray, seed: int
) -> Any:
    """L2 logistic regression on the same encoded training split, classes balanced."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000, random_state=seed)
    model.fit(baseline_design(encoder, train), y_train)
    return model


def baseline_scores(model: Any, encoder: FeatureEncoder, batch: EncodedBatch) -> np.ndarray:
    return np.asarray(model.predict_proba(baseline_design(encoder, batch))[:, 1], dtype=np.float64)


def subgroup_columns(
    records: Sequence[Mapping[str, Any]], race_by_encounter: Mapping[str, str]
) -> dict[str, list[str]]:
    """Sex, age band and (when the protected dataset is there) race of each test record."""
    groups: dict[str, list[str]] = {
        "sex": [str(r.get("sex") or "unknown") for r in records],
        "age_band": [m.age_band(r.get("age_years")) for r in records],
    }
    if race_by_encounter:
        groups["race"] = [
            race_by_encounter.get(str(r.get(ENCOUNTER_KEY)), "unknown") for r in records
        ]
    return groups


def _curve(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    if len(x) <= CURVE_POINTS:
        return x.tolist(), y.tolist()
    keep = np.unique(np.linspace(0, len(x) - 1, CURVE_POINTS).round().astype(int))
    return x[keep].tolist(), y[keep].tolist()


def curves(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Down-sampled ROC and precision-recall curves."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    if len(np.unique(labels)) < 2:
        return {}
    fpr, tpr, _ = roc_curve(labels, probabilities)
    precision, recall, _ = precision_recall_curve(labels, probabilities)
    fpr_l, tpr_l = _curve(fpr, tpr)
    recall_l, precision_l = _curve(recall[::-1], precision[::-1])
    return {
        "roc": {"false_positive_rates": fpr_l, "true_positive_rates": tpr_l},
        "pr": {"recalls": recall_l, "precisions": precision_l},
    }


def _value(value: float, std: float = math.nan) -> dict[str, float | None]:
    """One registry metric; NaN (undefined) is written as null so the JSON stays valid."""
    return {
        "value": None if math.isnan(value) else float(value),
        "standard_deviation": None if math.isnan(std) else float(std),
    }


def registry_metrics(
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    intervals: Mapping[str, Mapping[str, Any]],
    budget: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``binary_classification_metrics`` block of the Model Registry's quality format.

    ``intervals`` (``bootstrap.intervals``) gives AUROC, AUPRC and calibration their
    bootstrap standard deviations; ``budget`` is the ``alert_budget`` section's overall figures.
    """
    at = m.at_threshold(labels, probabilities, threshold)
    alert = probabilities >= threshold
    positive = labels == 1
    tp, fp = int(np.sum(alert & positive)), int(np.sum(alert & ~positive))
    fn, tn = int(np.sum(~alert & positive)), int(np.sum(~alert & ~positive))
    drawn = curves(labels, probabilities)
    bootstrapped = {
        "auc": "auroc",
        "pr_auc": "auprc",
        "calibration_slope": "calibration_slope",
        "calibration_intercept": "calibration_intercept",
    }
    return {
        **{
            name: _value(intervals[key]["value"], intervals[key]["standard_deviation"])
            for name, key in bootstrapped.items()
        },
        "brier_score": _value(m.brier(labels, probabilities)),
        "expected_calibration_error": _value(m.expected_calibration_error(labels, probabilities)),
        "precision": _value(at["precision"]),
        "recall": _value(at["recall"]),
        "f1": _value(at["f1"]),
        "true_positive_rate": _value(at["recall"]),
        "true_negative_rate": _value(at["specificity"]),
        "false_positive_rate": _value(1.0 - at["specificity"] if tn + fp else math.nan),
        "false_negative_rate": _value(1.0 - at["recall"] if tp + fn else math.nan),
        "accuracy": _value(float(np.mean(alert == positive)) if len(labels) else math.nan),
        "alert_rate": _value(at["alert_rate"]),
        **{
            name: _value(_finite_or_nan(budget[key]))
            for name, key in BUDGET_REGISTRY_METRICS.items()
        },
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
        "receiver_operating_characteristic_curve": drawn.get("roc", {}),
        "precision_recall_curve": drawn.get("pr", {}),
    }


def _finite_or_nan(value: float) -> float:
    return value if math.isfinite(value) else math.nan


def subgroup_intervals(
    labels: np.ndarray,
    probabilities: np.ndarray,
    groups: Mapping[str, Sequence[str]],
    resamples: int,
    seed: int,
    min_size: int = m.MIN_SUBGROUP_PATIENTS,
) -> dict[str, dict[str, Any]]:
    """Bootstrap intervals per value of each grouping; too-small groups get a note instead."""
    out: dict[str, dict[str, Any]] = {}
    for attribute, values in groups.items():
        array = np.asarray(values)
        per_group: dict[str, Any] = {}
        for value in sorted(set(array.tolist())):
            mask = array == value
            size = int(mask.sum())
            if size < min_size:
                per_group[value] = {"n": size, "scored": False, "note": ab.TOO_FEW}
                continue
            per_group[value] = {
                "n": size,
                "scored": True,
                "metrics": bootstrap.intervals(
                    labels[mask], probabilities[mask], resamples=resamples, seed=seed
                ),
            }
        out[attribute] = per_group
    return out


def build_evaluation(
    *,
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    validation: Mapping[str, Any],
    subgroups: Mapping[str, Sequence[str]],
    baseline_probabilities: np.ndarray | None,
    seed: int,
    alert_budget: float,
    bootstrap_resamples: int = bootstrap.DEFAULT_RESAMPLES,
) -> dict[str, Any]:
    """The whole ``evaluation.json`` document for the test split."""
    groups = dict(subgroups)
    overall = bootstrap.intervals(labels, probabilities, resamples=bootstrap_resamples, seed=seed)
    budget = ab.budget_report(labels, probabilities, alert_budget, groups)
    report: dict[str, Any] = {
        "binary_classification_metrics": registry_metrics(
            labels, probabilities, threshold, overall, budget["overall"]
        ),
        "test": m.summary(labels, probabilities, threshold),
        "validation": dict(validation),
        "threshold": threshold,
        "reliability_curve": m.reliability_curve(labels, probabilities),
        "subgroups": m.subgroup_metrics(labels, probabilities, threshold, groups),
        "alert_budget": budget,
        "intervals": {
            **bootstrap.settings(bootstrap_resamples, seed),
            "min_subgroup_size": m.MIN_SUBGROUP_PATIENTS,
            "overall": overall,
            "subgroups": subgroup_intervals(
                labels, probabilities, groups, bootstrap_resamples, seed
            ),
        },
        "decision_curve": decision_curve(labels, probabilities),
    }
    if baseline_probabilities is not None:
        baseline_threshold = float(
            np.quantile(baseline_probabilities, 1 - report["test"]["alert_rate"])
        )
        report["baseline"] = {
            "model": "logistic_regression",
            "note": "alerts at the same test alert rate as the model",
            **m.summary(labels, baseline_probabilities, baseline_threshold),
        }
        report["model_minus_baseline_auroc"] = report["test"]["auroc"] - report["baseline"]["auroc"]
    return json_safe(report)


def json_safe(value: Any) -> Any:
    """Replace NaN and infinities (undefined metrics) by None so the JSON is standard."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


#: Validation records explained for the global factor importance (a seeded sample beyond it).
MAX_EXPLAINED_RECORDS = 2000
#: Records per explanation call.
EXPLAIN_BATCH = 100
#: Factors listed in the global importance.
GLOBAL_FACTORS = 20
EXPLAINABILITY_SECTION = "explainability"
EXPLAINABILITY_METHOD = (
    "occlusion against a typical training patient (inference.attribution), the serving "
    "explanation itself: each record's top factors in calibrated log-odds, aggregated over "
    "the explained validation records"
)


def factor_field(name: str) -> str:
    """The field a factor's name describes: ``age = 87`` and ``age not recorded`` -> ``age``.

    Tabular factors carry the patient's value in their name; the global view groups them by
    field so that no single patient's value is listed. Codes and the note keep their names.
    """
    from contracts.encounter import FieldKind, model_input_fields

    for spec in model_input_fields():
        if spec.kind in (FieldKind.NUMERIC, FieldKind.CATEGORICAL) and (
            name.startswith(f"{spec.readable_name} = ")
            or name == f"{spec.readable_name} not recorded"
        ):
            return spec.readable_name
    return name


def global_factor_importance(
    factors: Sequence[Sequence[Mapping[str, Any]]],
    top: int = GLOBAL_FACTORS,
    min_records: int = m.MIN_SUBGROUP_PATIENTS,
) -> dict[str, Any]:
    """Mean absolute contribution of each factor over all records (0 where it is not in a
    record's top factors), the share of records that list it, and its mean signed effect.

    A factor listed by fewer than ``min_records`` records is left out (a rare code could single
    out a patient); how many were left out is reported.
    """
    from contracts.serving import FACTOR_CONTRIBUTION, FACTOR_FEATURE

    n = len(factors)
    totals: dict[str, list[float]] = {}
    for record_factors in factors:
        seen: dict[str, float] = {}
        for factor in record_factors:
            name = factor_field(str(factor[FACTOR_FEATURE]))
            seen[name] = seen.get(name, 0.0) + float(factor[FACTOR_CONTRIBUTION])
        for name, value in seen.items():
            totals.setdefault(name, []).append(value)
    kept = {name: values for name, values in totals.items() if len(values) >= min_records}
    ranked = sorted(kept.items(), key=lambda item: (-sum(map(abs, item[1])), item[0]))
    return {
        "method": EXPLAINABILITY_METHOD,
        "records_explained": n,
        "min_records_per_factor": min_records,
        "factors_left_out": len(totals) - len(kept),
        "factors": [
            {
                "factor": name,
                "mean_absolute_contribution": sum(map(abs, values)) / n,
                "mean_contribution_when_listed": sum(values) / len(values),
                "share_of_records_listing": len(values) / n,
            }
            for name, values in ranked[:top]
        ],
    }


def explain_validation(
    model_dir: Any,
    records: Sequence[Mapping[str, Any]],
    seed: int,
    limit: int = MAX_EXPLAINED_RECORDS,
) -> dict[str, Any]:
    """Global factor importance of the written model over (a seeded sample of) ``records``.

    Runs the serving model's own explanation (``inference.predictor.predict``), so the figures
    are what clinicians see, aggregated.
    """
    from contracts.serving import TOP_FACTORS
    from inference.payload import RAW_IDENTIFIER_FIELDS
    from inference.predictor import as_batch, load_serving_model, predict

    chosen = list(records)
    if len(chosen) > limit:
        keep = np.random.default_rng(seed).choice(len(chosen), size=limit, replace=False)
        chosen = [chosen[i] for i in sorted(keep.tolist())]
    serving = load_serving_model(model_dir)
    factors: list[list[dict[str, Any]]] = []
    for start in range(0, len(chosen), EXPLAIN_BATCH):
        batch = [
            {k: v for k, v in record.items() if k not in RAW_IDENTIFIER_FIELDS}
            for record in chosen[start : start + EXPLAIN_BATCH]
        ]
        factors.extend(p[TOP_FACTORS] for p in predict(serving, as_batch(batch), explain=True))
    return json_safe({"split": "validation", **global_factor_importance(factors)})
