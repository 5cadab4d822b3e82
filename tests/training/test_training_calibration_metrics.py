"""Calibration, threshold choice, metrics and the job's metric definitions."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from training import metrics as m
from training.calibration import calibrated, choose_threshold, fit_temperature


def test_temperature_recovers_the_scale_of_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0.0, 1.5, 20_000)
    y = (rng.random(20_000) < 1 / (1 + np.exp(-true_logits))).astype(float)
    temperature = fit_temperature(3.0 * true_logits, y)  # three times too confident
    assert temperature == pytest.approx(3.0, rel=0.05)
    before = m.expected_calibration_error(y, calibrated(3.0 * true_logits, 1.0))
    after = m.expected_calibration_error(y, calibrated(3.0 * true_logits, temperature))
    assert before > 0.05
    assert after < 0.02


def test_threshold_for_a_sensitivity_target_is_the_highest_that_reaches_it() -> None:
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    y = np.array([1, 0, 1, 0, 1, 0, 0, 1, 0, 0], dtype=float)
    t = choose_threshold(p, y, "sensitivity", 0.75)  # 3 of 4 positives: reached at 0.5
    assert t.value == 0.5
    assert t.validation_sensitivity == 0.75
    assert t.validation_alert_rate == 0.5
    assert choose_threshold(p, y, "sensitivity", 1.0).value == 0.2


def test_threshold_for_an_alert_budget_alerts_on_the_top_share() -> None:
    p = np.linspace(1.0, 0.1, 10)
    y = np.zeros(10)
    y[0] = 1
    t = choose_threshold(p, y, "alert_budget", 0.2)
    assert t.value == pytest.approx(0.9)
    assert t.validation_alert_rate == pytest.approx(0.2)


def test_threshold_rejects_a_split_without_positives() -> None:
    with pytest.raises(ValueError, match="no positives"):
        choose_threshold(np.array([0.2, 0.4]), np.zeros(2), "sensitivity", 0.8)


def test_metrics_at_threshold_and_calibration_error_are_exact() -> None:
    y = np.array([1, 1, 0, 0, 0], dtype=float)
    p = np.array([0.9, 0.3, 0.6, 0.2, 0.1])
    at = m.at_threshold(y, p, 0.5)
    assert at == {
        "precision": 0.5, "recall": 0.5, "f1": 0.5, "specificity": 2 / 3, "alert_rate": 0.4,
    }  # fmt: skip
    assert m.brier(y, p) == pytest.approx((0.01 + 0.49 + 0.36 + 0.04 + 0.01) / 5)
    # one row per bin: 0.1 (y0), 0.2 (y0), 0.3 (y1), 0.6 (y0), 0.9 (y1)
    assert m.expected_calibration_error(y, p) == pytest.approx((0.1 + 0.2 + 0.7 + 0.6 + 0.1) / 5)
    assert m.auroc(y, p) == pytest.approx(5 / 6)


def test_subgroup_metrics_name_the_largest_gap_and_skip_small_groups() -> None:
    y = np.array([1, 0] * 40, dtype=float)
    p = np.where(y == 1, 0.8, 0.2)
    p[40:] = 0.5  # second half: uninformative
    groups = {"sex": ["F"] * 40 + ["M"] * 35 + ["U"] * 5}
    out = m.subgroup_metrics(y, p, 0.6, groups)["sex"]
    assert out["groups"]["U"] == {"n": 5, "scored": False}
    assert out["groups"]["F"]["auroc"] == 1.0
    assert out["groups"]["M"]["auroc"] == 0.5
    assert out["largest_gaps"]["auroc"] == {"gap": 0.5, "lowest_group": "M", "highest_group": "F"}


def test_age_bands() -> None:
    assert [m.age_band(a) for a in (25, 40, 64.9, 65, 80, None)] == [
        "<40", "40-64", "40-64", "65-79", "80+", "unknown",
    ]  # fmt: skip


def test_metric_definitions_parse_the_lines_the_job_prints() -> None:
    by_name = {d["Name"]: re.compile(d["Regex"]) for d in m.METRIC_DEFINITIONS}
    line = m.format_metric("validation", "auroc", 0.712)
    assert line == "validation:auroc=0.712000"
    match = by_name["validation:auroc"].search(line)
    assert match is not None
    assert float(match.group(1)) == 0.712
    assert by_name["test:auroc"].search(line) is None
    assert len(by_name) == len(m.METRIC_DEFINITIONS)
    assert math.isnan(m.auroc(np.zeros(3), np.array([0.1, 0.2, 0.3])))
