"""Classification metrics; the log format they are printed in lives in ``training.metric_log``.

``METRIC_DEFINITIONS``, ``format_metric`` and ``metric_name`` are re-exported here for the
training code; ``training.job_spec`` imports them from ``training.metric_log`` (no numpy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from training.metric_log import METRIC_DEFINITIONS as METRIC_DEFINITIONS
from training.metric_log import REPORTED_METRICS as REPORTED_METRICS
from training.metric_log import format_metric as format_metric
from training.metric_log import metric_name as metric_name

#: Subgroups smaller than this are counted but not scored (too noisy to compare).
MIN_SUBGROUP_PATIENTS = 30


def _check(labels: np.ndarray, scores: np.ndarray) -> None:
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError("labels and scores must be 1-D arrays of the same length")


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    _check(labels, scores)
    if len(np.unique(labels)) < 2:
        return math.nan
    return float(roc_auc_score(labels, scores))


def auprc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (area under the precision-recall curve); NaN without positives."""
    from sklearn.metrics import average_precision_score

    _check(labels, scores)
    if labels.sum() == 0:
        return math.nan
    return float(average_precision_score(labels, scores))


def brier(labels: np.ndarray, probabilities: np.ndarray) -> float:
    _check(labels, probabilities)
    return float(np.mean((probabilities - labels) ** 2))


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    _check(labels, probabilities)
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def reliability_curve(
    labels: np.ndarray, probabilities: np.ndarray, bins: int = 10
) -> list[dict[str, float]]:
    """Equal-width bins of predicted probability: count, mean prediction, observed rate."""
    _check(labels, probabilities)
    index = np.minimum((probabilities * bins).astype(int), bins - 1)
    curve = []
    for b in range(bins):
        in_bin = index == b
        count = int(in_bin.sum())
        if count:
            curve.append(
                {
                    "bin_lower": b / bins,
                    "bin_upper": (b + 1) / bins,
                    "count": count,
                    "mean_predicted": float(probabilities[in_bin].mean()),
                    "observed_rate": float(labels[in_bin].mean()),
                }
            )
    return curve


def expected_calibration_error(
    labels: np.ndarray, probabilities: np.ndarray, bins: int = 10
) -> float:
    """Count-weighted mean gap between predicted and observed rates over equal-width bins."""
    curve = reliability_curve(labels, probabilities, bins)
    total = len(labels)
    return float(
        sum(b["count"] * abs(b["mean_predicted"] - b["observed_rate"]) for b in curve) / total
    )


def at_threshold(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float
) -> dict[str, float]:
    """Precision, recall, F1, specificity and alert rate when alerting at ``>= threshold``."""
    _check(labels, probabilities)
    alert = probabilities >= threshold
    positive = labels == 1
    tp = float(np.sum(alert & positive))
    fp = float(np.sum(alert & ~positive))
    fn = float(np.sum(~alert & positive))
    tn = float(np.sum(~alert & ~positive))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "specificity": tn / (tn + fp) if tn + fp else 0.0,
        "alert_rate": float(alert.mean()) if len(alert) else 0.0,
    }


def summary(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, Any]:
    """All headline metrics of one split at the saved threshold."""
    return {
        "n": len(labels),
        "prevalence": float(labels.mean()) if len(labels) else math.nan,
        "auroc": auroc(labels, probabilities),
        "auprc": auprc(labels, probabilities),
        "brier": brier(labels, probabilities),
        "ece": expected_calibration_error(labels, probabilities),
        **at_threshold(labels, probabilities, threshold),
    }


def age_band(age: float | None) -> str:
    """Age band used for subgroup metrics."""
    if age is None or (isinstance(age, float) and math.isnan(age)):
        return "unknown"
    for upper, label in ((40, "<40"), (65, "40-64"), (80, "65-79")):
        if age < upper:
            return label
    return "80+"


def subgroup_metrics(
    labels: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    groups: Mapping[str, Sequence[str]],
    min_size: int = MIN_SUBGROUP_PATIENTS,
) -> dict[str, Any]:
    """Metrics per value of each grouping; names the largest AUROC and recall gaps.

    Groups smaller than ``min_size`` are counted but not scored (too noisy to compare).
    """
    out: dict[str, Any] = {}
    for attribute, values in groups.items():
        array = np.asarray(values)
        per_group: dict[str, Any] = {}
        for value in sorted(set(array.tolist())):
            mask = array == value
            size = int(mask.sum())
            if size < min_size:
                per_group[value] = {"n": size, "scored": False}
                continue
            per_group[value] = {
                "scored": True,
                **summary(labels[mask], probabilities[mask], threshold),
            }
        out[attribute] = {"groups": per_group, "largest_gaps": _largest_gaps(per_group)}
    return out


def _largest_gaps(per_group: dict[str, Any]) -> dict[str, Any]:
    gaps: dict[str, Any] = {}
    for metric in ("auroc", "recall", "alert_rate", "ece"):
        scored = {
            name: g[metric]
            for name, g in per_group.items()
            if g.get("scored") and not math.isnan(g[metric])
        }
        if len(scored) < 2:
            continue
        low = min(scored, key=lambda name: scored[name])
        high = max(scored, key=lambda name: scored[name])
        gaps[metric] = {
            "gap": scored[high] - scored[low],
            "lowest_group": low,
            "highest_group": high,
        }
    return gaps
