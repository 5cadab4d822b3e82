"""The alert budget: how many patients it contacts, and PPV, sensitivity and NNC at it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training import alert_budget as ab
from training.calibration import choose_threshold


@pytest.mark.parametrize(
    ("budget", "n", "expected"),
    [
        (0.1, 30, 3),  # 0.1 * 30 is 3.0000000000000004 in floating point: still 3
        (0.2, 10, 2),
        (0.15, 10, 2),  # a part-patient rounds up: the team contacts whole patients
        (0.01, 10, 1),  # any budget contacts at least one patient
        (1.0, 7, 7),
        (0.3, 0, 0),
    ],
)
def test_budget_count_is_the_ceiling_of_the_share(budget: float, n: int, expected: int) -> None:
    assert ab.budget_count(budget, n) == expected


@pytest.mark.parametrize("budget", [0.0, -0.1, 1.5, math.nan, True, "0.1"])
def test_budget_outside_the_unit_interval_is_refused(budget: object) -> None:
    with pytest.raises(ValueError, match="alert budget"):
        ab.budget_count(budget, 10)  # type: ignore[arg-type]


def _twenty() -> tuple[np.ndarray, np.ndarray]:
    """20 patients, 5 readmitted; the four riskiest hold three of the readmissions."""
    p = np.linspace(0.95, 0.0, 20)
    y = np.zeros(20)
    y[[0, 1, 3, 10, 15]] = 1
    return y, p


def test_ppv_sensitivity_and_contacts_per_readmission_at_the_budget() -> None:
    y, p = _twenty()
    alerts = ab.budget_alerts(p, 0.2)
    assert alerts.tolist() == [True] * 4 + [False] * 16
    figures = ab.at_alerts(y, alerts)
    assert figures["alerts"] == 4
    assert figures["readmissions_caught"] == 3
    assert figures["alert_rate"] == pytest.approx(0.2)
    assert figures["ppv"] == pytest.approx(0.75)  # 3 of 4 contacted were readmitted
    assert figures["sensitivity"] == pytest.approx(0.6)  # 3 of 5 readmissions reached
    assert figures["number_needed_to_contact"] == pytest.approx(4 / 3)


def test_alerts_follow_the_ranking_not_the_row_order() -> None:
    y, p = _twenty()
    order = np.random.default_rng(3).permutation(20)
    figures = ab.at_alerts(y[order], ab.budget_alerts(p[order], 0.2))
    assert (figures["ppv"], figures["sensitivity"]) == pytest.approx((0.75, 0.6))


def test_no_readmission_caught_means_no_finite_number_needed_to_contact() -> None:
    y = np.array([0.0, 0.0, 1.0])
    figures = ab.at_alerts(y, ab.budget_alerts(np.array([0.9, 0.8, 0.1]), 0.5))
    assert figures["ppv"] == 0.0
    assert math.isinf(figures["number_needed_to_contact"])
    assert figures["sensitivity"] == 0.0
    empty = ab.at_alerts(np.array([0.0, 0.0]), np.zeros(2, dtype=bool))
    assert math.isnan(empty["ppv"])
    assert math.isnan(empty["sensitivity"])


def test_subgroups_split_the_same_alerts_and_name_small_groups() -> None:
    y, p = _twenty()
    groups = {"sex": ["F", "M"] * 10, "race": ["A"] * 18 + ["B"] * 2}
    out = ab.subgroups_at_alerts(y, ab.budget_alerts(p, 0.2), groups, min_size=5)
    # alerts are rows 0-3: F rows 0, 2 (one readmission: row 0); M rows 1, 3 (both readmitted)
    female, male = out["sex"]["F"], out["sex"]["M"]
    assert (female["alerts"], female["readmissions_caught"], female["ppv"]) == (2, 1, 0.5)
    assert (male["alerts"], male["readmissions_caught"], male["ppv"]) == (2, 2, 1.0)
    assert female["alert_rate"] == pytest.approx(0.2)
    assert male["sensitivity"] == pytest.approx(2 / 3)  # M readmissions: rows 1, 3, 15
    assert out["race"]["B"] == {"n": 2, "scored": False, "note": "too few patients"}


def test_budget_report_holds_the_budget_the_cutoff_and_other_budgets() -> None:
    y, p = _twenty()
    report = ab.budget_report(y, p, 0.2, {"sex": ["F", "M"] * 10})
    assert report["budget"] == 0.2
    assert report["score_cutoff"] == pytest.approx(p[3])
    assert report["overall"]["ppv"] == pytest.approx(0.75)
    assert report["min_subgroup_size"] == 30
    assert report["subgroups"]["sex"]["F"]["note"] == "too few patients"  # 10 < 30
    budgets = [row["budget"] for row in report["compared_budgets"]]
    assert budgets == sorted(budgets)
    assert 0.2 in budgets
    assert 0.05 in budgets
    by_budget = {row["budget"]: row for row in report["compared_budgets"]}
    assert by_budget[0.2]["ppv"] == report["overall"]["ppv"]
    assert by_budget[0.3]["alerts"] == 6


def test_the_validation_threshold_for_a_budget_alerts_on_that_many_patients() -> None:
    p = np.linspace(1.0, 0.01, 30)
    y = np.zeros(30)
    y[0] = 1
    threshold = choose_threshold(p, y, "alert_budget", 0.1)
    assert threshold.value == pytest.approx(p[2])  # three patients, not four
    assert threshold.validation_alert_rate == pytest.approx(0.1)
    assert threshold.target == "alert_budget"
