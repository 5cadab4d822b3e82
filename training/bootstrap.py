"""Percentile-bootstrap 95 % intervals for AUROC, AUPRC and calibration, vectorised in numpy.

A bootstrap resample of ``n`` rows is the original rows weighted by how often each was drawn,
so every metric here takes a matrix of weights (one row per resample) and computes all rows
at once: no Python loop over resamples. The same functions with a single row of ones give the
point estimates, so a point estimate and its interval cannot disagree on definitions.

Calibration is summarised by the calibration slope and the calibration intercept
(calibration-in-the-large) of logistic recalibration (Van Calster et al., "Calibration: the
Achilles heel of predictive analytics", BMC Medicine 2019): slope ``b`` of
``logit(P(y=1)) = a + b * logit(p)`` (1 is ideal; below 1, predictions too extreme) and
intercept ``a`` of ``logit(P(y=1)) = a + logit(p)`` (0 is ideal; above 0, risk under-predicted).
ECE has no interval here: its bootstrap distribution sits above the point estimate (each
resample adds noise to every bin's gap), so its percentile interval would not cover it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

#: Resamples of every interval; 1,000 keeps a 2.5th percentile's Monte-Carlo error small.
DEFAULT_RESAMPLES = 1000
CONFIDENCE = 0.95
METHOD = "percentile bootstrap"
#: An interval needs the metric defined (both classes drawn) in at least this share of resamples.
MIN_DEFINED_SHARE = 0.5
#: Resamples computed together: bounds the memory to a few (chunk x n) float arrays.
_CHUNK = 64
#: logit(p) is clipped to this: a probability of exactly 0 or 1 stays finite.
_LOGIT_CLIP = 1e-6
_NEWTON_STEPS = 25
_NEWTON_TOLERANCE = 1e-7
#: A recalibration coefficient this large means the fit ran off (separable resample).
_DIVERGED = 50.0
#: A row whose last Newton step is larger than this has not converged.
_SETTLED = 1e-4

WeightedMetric = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _grouped_by_score(
    weights: np.ndarray, labels: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative weight of each distinct score, scores ascending: (b, u) each."""
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    w = weights[:, order]
    positive = labels[order] == 1
    return (
        np.add.reduceat(np.where(positive, w, 0.0), starts, axis=1),
        np.add.reduceat(np.where(positive, 0.0, w), starts, axis=1),
    )


def weighted_auroc(weights: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each weight row (ties count one half); NaN where a class has no weight."""
    pos, neg = _grouped_by_score(weights, labels, scores)
    negatives_below = np.cumsum(neg, axis=1) - neg
    total = pos.sum(axis=1) * neg.sum(axis=1)
    pairs = np.sum(pos * (negatives_below + 0.5 * neg), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, pairs / np.where(total > 0, total, 1.0), np.nan)


def weighted_auprc(weights: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Average precision of each weight row (scikit-learn's step-wise definition)."""
    pos, neg = _grouped_by_score(weights, labels, scores)
    pos, neg = pos[:, ::-1], neg[:, ::-1]  # highest score first
    caught = np.cumsum(pos, axis=1)
    alerted = caught + np.cumsum(neg, axis=1)
    precision = np.divide(caught, alerted, out=np.zeros_like(caught), where=alerted > 0)
    positives = pos.sum(axis=1)
    ap = np.sum(pos * precision, axis=1)
    return np.where(positives > 0, ap / np.where(positives > 0, positives, 1.0), np.nan)


def _logistic_slope(weights: np.ndarray, labels: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Slope ``b`` of the weighted fit ``logit P(y=1) = a + b x`` per row (Newton's method).

    NaN for a row without both classes or that did not converge (separable data has no
    finite maximum-likelihood fit).
    """
    rows = weights.shape[0]
    a, b = np.zeros(rows), np.ones(rows)
    for _ in range(_NEWTON_STEPS):
        mu = 1.0 / (1.0 + np.exp(-np.clip(a[:, None] + b[:, None] * x[None, :], -60.0, 60.0)))
        residual = weights * (labels[None, :] - mu)
        curvature = weights * mu * (1.0 - mu)
        g_a, g_b = residual.sum(axis=1), residual @ x
        h_aa, h_ab, h_bb = curvature.sum(axis=1), curvature @ x, curvature @ (x * x)
        with np.errstate(invalid="ignore", divide="ignore"):
            det = h_aa * h_bb - h_ab * h_ab
            step_a = (h_bb * g_a - h_ab * g_b) / det
            step_b = (h_aa * g_b - h_ab * g_a) / det
        a, b = a + step_a, b + step_b
        if np.all(~np.isfinite(step_b) | (np.abs(step_a) + np.abs(step_b) < _NEWTON_TOLERANCE)):
            break
    settled = np.abs(step_a) + np.abs(step_b) < _SETTLED  # separable rows keep stepping
    ok = _both_classes(weights, labels) & settled & (np.abs(b) < _DIVERGED)
    return np.where(ok, b, np.nan)


def _both_classes(weights: np.ndarray, labels: np.ndarray) -> np.ndarray:
    positives = weights @ labels
    return (positives > 0) & (positives < weights.sum(axis=1))


def _logit(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities, _LOGIT_CLIP, 1.0 - _LOGIT_CLIP)
    return np.log(p / (1.0 - p))


def weighted_calibration_slope(
    weights: np.ndarray, labels: np.ndarray, probabilities: np.ndarray
) -> np.ndarray:
    """Calibration slope of each weight row (1 is ideal)."""
    return _logistic_slope(weights, labels, _logit(probabilities))


def weighted_calibration_intercept(
    weights: np.ndarray, labels: np.ndarray, probabilities: np.ndarray
) -> np.ndarray:
    """Calibration-in-the-large of each weight row: the intercept with slope fixed at 1."""
    x = _logit(probabilities)
    # With the slope fixed, a + x is an offset model: fit a on y ~ 1 + offset(x).
    rows = weights.shape[0]
    a = np.zeros(rows)
    for _ in range(_NEWTON_STEPS):
        mu = 1.0 / (1.0 + np.exp(-np.clip(a[:, None] + x[None, :], -60.0, 60.0)))
        gradient = (weights * (labels[None, :] - mu)).sum(axis=1)
        curvature = (weights * mu * (1.0 - mu)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            step = gradient / curvature
        a = a + step
        if np.all(~np.isfinite(step) | (np.abs(step) < _NEWTON_TOLERANCE)):
            break
    ok = _both_classes(weights, labels) & (np.abs(step) < _SETTLED) & (np.abs(a) < _DIVERGED)
    return np.where(ok, a, np.nan)


#: The metrics that get intervals, by the name evaluation.json uses.
INTERVAL_METRICS: dict[str, WeightedMetric] = {
    "auroc": weighted_auroc,
    "auprc": weighted_auprc,
    "calibration_slope": weighted_calibration_slope,
    "calibration_intercept": weighted_calibration_intercept,
}


def resample_weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``(resamples, n)`` draw counts: row ``r`` is how often each row was drawn in resample r."""
    draws = rng.integers(0, n, size=(resamples, n))
    offsets = (np.arange(resamples) * n)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=resamples * n)
    return counts.reshape(resamples, n).astype(np.float64)


def bootstrap_distribution(
    labels: np.ndarray,
    scores: np.ndarray,
    metrics: dict[str, WeightedMetric],
    resamples: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Each metric on ``resamples`` resamples of the rows (fixed seed); NaN where undefined."""
    n = len(labels)
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {name: [] for name in metrics}
    for start in range(0, resamples, _CHUNK):
        weights = resample_weights(n, min(_CHUNK, resamples - start), rng)
        for name, metric in metrics.items():
            out[name].append(metric(weights, labels, scores))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def _check(labels: np.ndarray, scores: np.ndarray, resamples: int) -> None:
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError("labels and scores must be 1-D arrays of the same length")
    if resamples < 2:
        raise ValueError("resamples must be at least 2")


def intervals(
    labels: np.ndarray,
    probabilities: np.ndarray,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    metrics: dict[str, WeightedMetric] | None = None,
) -> dict[str, dict[str, Any]]:
    """Point estimate, 95 % percentile interval and bootstrap SD of each metric.

    ``lower``/``upper`` (and the SD) are NaN when fewer than half of the resamples define
    the metric (a group with almost no readmissions); ``defined_resamples`` says how many did.
    """
    _check(labels, probabilities, resamples)
    chosen = INTERVAL_METRICS if metrics is None else metrics
    labels = labels.astype(np.float64)
    ones = np.ones((1, len(labels)))
    draws = bootstrap_distribution(labels, probabilities, chosen, resamples, seed)
    tail = 100.0 * (1.0 - CONFIDENCE) / 2.0
    out: dict[str, dict[str, Any]] = {}
    for name, metric in chosen.items():
        value = float(metric(ones, labels, probabilities)[0]) if len(labels) else math.nan
        values = draws[name][np.isfinite(draws[name])]
        enough = len(values) >= max(2, MIN_DEFINED_SHARE * resamples) and math.isfinite(value)
        lower, upper = (
            (float(v) for v in np.percentile(values, [tail, 100.0 - tail]))
            if enough
            else (math.nan, math.nan)
        )
        out[name] = {
            "value": value,
            "lower": lower,
            "upper": upper,
            "standard_deviation": float(np.std(values, ddof=1)) if enough else math.nan,
            "defined_resamples": len(values),
        }
    return out


def settings(resamples: int, seed: int) -> dict[str, Any]:
    """How the intervals were computed, for evaluation.json and the model card."""
    return {
        "method": METHOD,
        "confidence": CONFIDENCE,
        "resamples": resamples,
        "seed": seed,
        "calibration": "slope and intercept (calibration-in-the-large) of logistic recalibration",
    }
