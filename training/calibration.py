"""Post-hoc calibration (temperature scaling) and the decision threshold, both on validation.

Temperature scaling keeps the ranking (AUROC) and fixes over- or under-confidence; the
threshold is then chosen on the calibrated validation probabilities for a stated target:
by default the alert budget (the share of discharges the care team can follow up), or a
sensitivity to reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from contracts.model_artifact import Calibration
from training.alert_budget import budget_count

ThresholdTarget = Literal["alert_budget", "sensitivity"]
THRESHOLD_TARGETS: tuple[ThresholdTarget, ...] = ("alert_budget", "sensitivity")

#: Search range of log(temperature): temperatures from about 0.05 to 20.
_LOG_T_RANGE = (-3.0, 3.0)
_GOLDEN = (math.sqrt(5) - 1) / 2


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    # log(1 + exp(z)) - y z, written stably.
    return float(np.mean(np.logaddexp(0.0, z) - labels * z))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, iterations: int = 80) -> float:
    """Return the temperature minimising validation NLL (golden-section search on log T).

    The NLL of a temperature-scaled logistic model is unimodal in log T, so a bracketing
    search is exact enough and deterministic (no optimiser state, no randomness).
    """
    if logits.shape != labels.shape or logits.ndim != 1 or len(logits) == 0:
        raise ValueError("logits and labels must be non-empty 1-D arrays of the same length")
    low, high = _LOG_T_RANGE
    a = high - _GOLDEN * (high - low)
    b = low + _GOLDEN * (high - low)
    fa = _nll(logits, labels, math.exp(a))
    fb = _nll(logits, labels, math.exp(b))
    for _ in range(iterations):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - _GOLDEN * (high - low)
            fa = _nll(logits, labels, math.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + _GOLDEN * (high - low)
            fb = _nll(logits, labels, math.exp(b))
    return math.exp((low + high) / 2)


def calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Calibrated probabilities of raw logits."""
    return sigmoid(logits / temperature)


@dataclass(frozen=True)
class Threshold:
    """A decision threshold and what it achieved on validation."""

    value: float
    target: ThresholdTarget
    target_value: float
    validation_sensitivity: float
    validation_alert_rate: float


def choose_threshold(
    probabilities: np.ndarray, labels: np.ndarray, target: ThresholdTarget, target_value: float
) -> Threshold:
    """Pick the alert threshold on validation.

    ``sensitivity``: the highest threshold whose sensitivity reaches ``target_value`` (so the
    fewest alerts that still catch that share of readmissions). ``alert_budget``: the
    threshold that alerts on the top ``target_value`` share of encounters (``budget_count``).
    """
    if not 0.0 < target_value <= 1.0:
        raise ValueError("target_value must lie in (0, 1]")
    if probabilities.shape != labels.shape or len(labels) == 0:
        raise ValueError("probabilities and labels must be non-empty and aligned")
    order = np.argsort(-probabilities, kind="stable")
    sorted_p = probabilities[order]
    if target == "sensitivity":
        positives = float(labels.sum())
        if positives == 0:
            raise ValueError("validation split has no positives: cannot target sensitivity")
        caught = np.cumsum(labels[order])
        k = int(np.searchsorted(caught, math.ceil(target_value * positives - 1e-9)))
        value = float(sorted_p[min(k, len(sorted_p) - 1)])
    elif target == "alert_budget":
        value = float(sorted_p[budget_count(target_value, len(sorted_p)) - 1])
    else:
        raise ValueError(f"threshold target must be one of {THRESHOLD_TARGETS}")
    alert = probabilities >= value
    positives_total = float(labels.sum())
    sensitivity = float(labels[alert].sum() / positives_total) if positives_total else math.nan
    return Threshold(value, target, target_value, sensitivity, float(alert.mean()))


def calibration_record(
    temperature: float, logit_offset: float, threshold: Threshold, alert_budget: float
) -> Calibration:
    """What ``calibration.json`` holds (``contracts.model_artifact.Calibration``)."""
    return Calibration(
        temperature=temperature,
        threshold=threshold.value,
        logit_offset=logit_offset,
        threshold_target=threshold.target,
        threshold_target_value=threshold.target_value,
        alert_budget=alert_budget,
        validation_sensitivity=threshold.validation_sensitivity,
        validation_alert_rate=threshold.validation_alert_rate,
    )
