"""What the care team gets at its alert budget: PPV, sensitivity, contacts per readmission caught.

The budget is the share of discharges the team can follow up. Alerting at a budget means
contacting the top ``ceil(budget * n)`` patients by predicted risk, as the worklist does each
morning; the same alerts, split by subgroup, show who the budget reaches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from training.metrics import MIN_SUBGROUP_PATIENTS

#: Budgets the card compares with the chosen one, so a lead can see what another costs.
COMPARED_BUDGETS = (0.05, 0.10, 0.20, 0.30)
TOO_FEW = "too few patients"
#: Float slack so that a budget of 0.1 over 30 patients is 3 alerts, not 4.
_EPSILON = 1e-9


def check_budget(budget: float) -> float:
    """Return ``budget`` if it is a share in (0, 1], else raise."""
    if isinstance(budget, bool) or not (isinstance(budget, int | float) and 0.0 < budget <= 1.0):
        raise ValueError("the alert budget must be a share in (0, 1]")
    return float(budget)


def budget_count(budget: float, n: int) -> int:
    """Patients the team contacts out of ``n``: ``ceil(budget * n)``, at least one if any."""
    check_budget(budget)
    if n <= 0:
        return 0
    return min(n, max(1, math.ceil(budget * n - _EPSILON)))


def budget_alerts(probabilities: np.ndarray, budget: float) -> np.ndarray:
    """Boolean mask of the top ``budget_count`` patients by risk (ties: earlier row first)."""
    k = budget_count(budget, len(probabilities))
    order = np.argsort(-probabilities, kind="stable")
    alerts = np.zeros(len(probabilities), dtype=bool)
    alerts[order[:k]] = True
    return alerts


def at_alerts(labels: np.ndarray, alerts: np.ndarray) -> dict[str, Any]:
    """PPV, sensitivity, number needed to contact (1/PPV) and alert rate of given alerts.

    Undefined figures are NaN (no alerts, no readmissions); NNC is infinite when the alerts
    catch no readmission.
    """
    if labels.shape != alerts.shape or labels.ndim != 1:
        raise ValueError("labels and alerts must be 1-D arrays of the same length")
    n = len(labels)
    contacted = int(alerts.sum())
    readmissions = int(labels.sum())
    caught = int(labels[alerts].sum())
    ppv = caught / contacted if contacted else math.nan
    return {
        "n": n,
        "alerts": contacted,
        "readmissions": readmissions,
        "readmissions_caught": caught,
        "alert_rate": contacted / n if n else math.nan,
        "ppv": ppv,
        "sensitivity": caught / readmissions if readmissions else math.nan,
        "number_needed_to_contact": (1.0 / ppv if ppv > 0 else math.inf)
        if not math.isnan(ppv)
        else math.nan,
    }


def subgroups_at_alerts(
    labels: np.ndarray,
    alerts: np.ndarray,
    groups: Mapping[str, Sequence[str]],
    min_size: int = MIN_SUBGROUP_PATIENTS,
) -> dict[str, dict[str, Any]]:
    """The same figures per value of each grouping, for the whole population's alerts."""
    out: dict[str, dict[str, Any]] = {}
    for attribute, values in groups.items():
        array = np.asarray(values)
        if len(array) != len(labels):
            raise ValueError(f"subgroup column {attribute} is not aligned with the labels")
        per_group: dict[str, Any] = {}
        for value in sorted(set(array.tolist())):
            mask = array == value
            size = int(mask.sum())
            if size < min_size:
                per_group[value] = {"n": size, "scored": False, "note": TOO_FEW}
            else:
                per_group[value] = {"scored": True, **at_alerts(labels[mask], alerts[mask])}
        out[attribute] = per_group
    return out


def budget_report(
    labels: np.ndarray,
    probabilities: np.ndarray,
    budget: float,
    groups: Mapping[str, Sequence[str]],
    min_size: int = MIN_SUBGROUP_PATIENTS,
) -> dict[str, Any]:
    """The ``alert_budget`` section of evaluation.json: overall, per subgroup, other budgets."""
    check_budget(budget)
    if labels.shape != probabilities.shape or labels.ndim != 1:
        raise ValueError("labels and probabilities must be 1-D arrays of the same length")
    alerts = budget_alerts(probabilities, budget)
    cutoff = float(probabilities[alerts].min()) if alerts.any() else math.nan
    return {
        "budget": budget,
        "rule": "contact the top ceil(budget x n) patients by predicted risk",
        "score_cutoff": cutoff,
        "overall": at_alerts(labels, alerts),
        "min_subgroup_size": min_size,
        "subgroups": subgroups_at_alerts(labels, alerts, groups, min_size),
        "compared_budgets": [
            {"budget": other, **at_alerts(labels, budget_alerts(probabilities, other))}
            for other in sorted({*COMPARED_BUDGETS, budget})
        ],
    }
