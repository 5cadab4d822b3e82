"""Vectorised percentile bootstrap: the weighted metrics are the usual ones, intervals behave."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score

from training import bootstrap as b


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Readmission-like labels (about 12 %) and somewhat over-confident, tied risks."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x - 2.2)))).astype(float)
    p = np.round(1 / (1 + np.exp(-(1.3 * x - 2.1))), 3)
    return y, p


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def test_unit_weights_give_scikit_learns_auroc_and_average_precision() -> None:
    y, p = _data(3000)
    ones = np.ones((1, len(y)))
    assert b.weighted_auroc(ones, y, p)[0] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert b.weighted_auprc(ones, y, p)[0] == pytest.approx(
        average_precision_score(y, p), abs=1e-12
    )


def test_a_row_of_draw_counts_equals_the_resampled_rows() -> None:
    y, p = _data(2000, seed=1)
    rng = np.random.default_rng(9)
    weights = b.resample_weights(len(y), 3, rng)
    assert weights.sum(axis=1).tolist() == [2000.0] * 3
    replay = np.random.default_rng(9).integers(0, len(y), size=(3, len(y)))
    for row, drawn in zip(weights, replay, strict=True):
        assert np.array_equal(row, np.bincount(drawn, minlength=len(y)))
        assert b.weighted_auroc(row[None, :], y, p)[0] == pytest.approx(
            roc_auc_score(y[drawn], p[drawn]), abs=1e-12
        )
        assert b.weighted_auprc(row[None, :], y, p)[0] == pytest.approx(
            average_precision_score(y[drawn], p[drawn]), abs=1e-12
        )


def test_calibration_slope_and_intercept_are_the_logistic_recalibration_fits() -> None:
    y, p = _data(4000, seed=2)
    x = _logit(p)
    ones = np.ones((1, len(y)))
    fitted = LogisticRegression(penalty=None, tol=1e-10, max_iter=10_000).fit(x[:, None], y)
    assert b.weighted_calibration_slope(ones, y, p)[0] == pytest.approx(
        fitted.coef_[0, 0], abs=1e-5
    )

    def negative_log_likelihood(a: float) -> float:
        return float(-np.sum(y * (a + x) - np.logaddexp(0.0, a + x)))

    best = minimize_scalar(negative_log_likelihood, bounds=(-5, 5), method="bounded").x
    assert b.weighted_calibration_intercept(ones, y, p)[0] == pytest.approx(best, abs=1e-4)


def test_a_calibrated_model_has_slope_one_and_intercept_zero() -> None:
    rng = np.random.default_rng(4)
    p = rng.beta(2, 10, 50_000)
    y = (rng.random(50_000) < p).astype(float)
    ones = np.ones((1, len(y)))
    assert b.weighted_calibration_slope(ones, y, p)[0] == pytest.approx(1.0, abs=0.05)
    assert b.weighted_calibration_intercept(ones, y, p)[0] == pytest.approx(0.0, abs=0.03)


def test_intervals_contain_the_estimate_and_narrow_with_more_patients() -> None:
    small = b.intervals(*_data(500, seed=3), resamples=400, seed=0)
    large = b.intervals(*_data(8000, seed=3), resamples=400, seed=0)
    for name in b.INTERVAL_METRICS:
        for result in (small, large):
            figures = result[name]
            assert figures["lower"] <= figures["value"] <= figures["upper"], name
            assert figures["defined_resamples"] == 400
            assert figures["standard_deviation"] > 0
        small_width = small[name]["upper"] - small[name]["lower"]
        large_width = large[name]["upper"] - large[name]["lower"]
        # 16 times the patients: about a quarter of the width (1/sqrt(16))
        assert large_width < 0.5 * small_width, name


def test_the_seed_fixes_the_intervals() -> None:
    y, p = _data(600, seed=5)
    assert b.intervals(y, p, resamples=50, seed=7) == b.intervals(y, p, resamples=50, seed=7)
    assert b.intervals(y, p, resamples=50, seed=7) != b.intervals(y, p, resamples=50, seed=8)


def test_chunking_does_not_change_the_draws() -> None:
    """More resamples than one chunk: the first ones are the same as a shorter run's."""
    y, p = _data(300, seed=6)
    short = b.bootstrap_distribution(y, p, b.INTERVAL_METRICS, 10, seed=1)
    long = b.bootstrap_distribution(y, p, b.INTERVAL_METRICS, 200, seed=1)
    assert np.allclose(long["auroc"][:10], short["auroc"])


def test_undefined_metrics_get_no_interval() -> None:
    y = np.zeros(50)
    p = np.linspace(0.01, 0.5, 50)
    out = b.intervals(y, p, resamples=20, seed=0)
    for figures in out.values():
        assert math.isnan(figures["value"])
        assert math.isnan(figures["lower"])
        assert figures["defined_resamples"] == 0
    separable = b.intervals(np.array([0.0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]), 30)
    assert math.isnan(separable["calibration_slope"]["value"])  # no finite fit exists
    assert separable["auroc"]["value"] == 1.0


def test_too_few_resamples_or_misaligned_input_is_refused() -> None:
    with pytest.raises(ValueError, match="resamples"):
        b.intervals(np.zeros(3), np.zeros(3), resamples=1)
    with pytest.raises(ValueError, match="same length"):
        b.intervals(np.zeros(3), np.zeros(4))
