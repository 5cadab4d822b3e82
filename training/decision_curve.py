"""Decision curve analysis (Vickers & Elkin, Med Decis Making 2006;26:565-574).

At a threshold probability ``pt`` (the risk at which a clinician would follow a patient up),
the net benefit of alerting on ``p >= pt`` is ``TP/n - FP/n * pt / (1 - pt)``: true positives
minus false positives weighted by the odds at which the harms of an unneeded contact and the
benefits of a needed one balance. Treat-all alerts everyone; treat-none has net benefit 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: 1 % to 50 % in steps of 1 %: readmission follow-up is worthwhile at low risks, and no
#: team would wait for a risk above one half.
DEFAULT_THRESHOLDS = tuple(round(0.01 * i, 2) for i in range(1, 51))
REFERENCE = "Vickers AJ, Elkin EB. Decision curve analysis. Med Decis Making 2006;26:565-574"


def _thresholds(thresholds: Any) -> np.ndarray:
    values = np.asarray(thresholds, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0 or np.any((values <= 0) | (values >= 1)):
        raise ValueError("thresholds must be a non-empty list of probabilities in (0, 1)")
    return values


def net_benefit(labels: np.ndarray, probabilities: np.ndarray, thresholds: Any) -> np.ndarray:
    """Net benefit of alerting on ``probability >= pt``, for each threshold ``pt``."""
    pt = _thresholds(thresholds)
    if labels.shape != probabilities.shape or labels.ndim != 1 or len(labels) == 0:
        raise ValueError("labels and probabilities must be non-empty 1-D arrays of one length")
    n = len(labels)
    order = np.argsort(probabilities, kind="stable")
    sorted_p = probabilities[order]
    positives_from = np.r_[np.cumsum(labels[order][::-1])[::-1], 0.0]
    first = np.searchsorted(sorted_p, pt, side="left")  # first row with p >= pt
    alerts = n - first
    tp = positives_from[first]
    fp = alerts - tp
    return np.asarray(tp / n - fp / n * pt / (1.0 - pt))


def treat_all(labels: np.ndarray, thresholds: Any) -> np.ndarray:
    """Net benefit of alerting on everyone: ``prevalence - (1 - prevalence) * pt / (1 - pt)``."""
    pt = _thresholds(thresholds)
    prevalence = float(np.mean(labels))
    return np.asarray(prevalence - (1.0 - prevalence) * pt / (1.0 - pt))


def decision_curve(
    labels: np.ndarray, probabilities: np.ndarray, thresholds: Any = DEFAULT_THRESHOLDS
) -> dict[str, Any]:
    """The ``decision_curve`` section of evaluation.json."""
    pt = _thresholds(thresholds)
    return {
        "reference": REFERENCE,
        "thresholds": pt.tolist(),
        "model": net_benefit(labels, probabilities, pt).tolist(),
        "treat_all": treat_all(labels, pt).tolist(),
        "treat_none": [0.0] * len(pt),
    }
