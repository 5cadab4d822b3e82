"""Decision curve: net benefit of the model, treat-all and treat-none (Vickers & Elkin 2006)."""

from __future__ import annotations

import numpy as np
import pytest

from training.decision_curve import DEFAULT_THRESHOLDS, decision_curve, net_benefit, treat_all

Y = np.array([1, 1, 0, 0, 0], dtype=float)
P = np.array([0.9, 0.4, 0.6, 0.2, 0.1])


def test_net_benefit_by_hand() -> None:
    # pt 0.25: alerts 0.9, 0.6, 0.4 -> TP 2, FP 1: 2/5 - 1/5 * (0.25/0.75) = 1/3
    # pt 0.5:  alerts 0.9, 0.6      -> TP 1, FP 1: 1/5 - 1/5 * 1 = 0
    # pt 0.6:  alerts 0.9, 0.6 (a risk equal to the threshold alerts): 1/5 - 1/5 * 1.5 = -0.1
    # pt 0.95: no alerts -> 0
    nb = net_benefit(Y, P, [0.25, 0.5, 0.6, 0.95])
    assert nb == pytest.approx([1 / 3, 0.0, -0.1, 0.0])


def test_treat_all_by_hand() -> None:
    # prevalence 0.4: 0.4 - 0.6 * odds(pt)
    assert treat_all(Y, [0.25, 0.5]) == pytest.approx([0.4 - 0.6 / 3, -0.2])


def test_net_benefit_matches_counting_at_every_threshold() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(500) < 0.15).astype(float)
    p = np.round(rng.beta(1.5, 8, 500), 2)  # many ties, some exactly on a threshold
    thresholds = np.array(DEFAULT_THRESHOLDS)
    expected = []
    for pt in thresholds:
        alert = p >= pt
        tp, fp = np.sum(alert & (y == 1)), np.sum(alert & (y == 0))
        expected.append(tp / 500 - fp / 500 * pt / (1 - pt))
    assert net_benefit(y, p, thresholds) == pytest.approx(expected, abs=1e-12)


def test_a_perfect_model_earns_the_prevalence_and_treat_none_nothing() -> None:
    curve = decision_curve(Y, Y * 0.99 + 0.005)  # negatives below every threshold
    assert curve["model"] == pytest.approx([0.4] * len(curve["thresholds"]))
    assert set(curve["treat_none"]) == {0.0}
    assert curve["thresholds"][0] == 0.01
    assert curve["thresholds"][-1] == 0.5
    assert "Vickers" in curve["reference"]


@pytest.mark.parametrize("thresholds", [[0.0, 0.2], [0.5, 1.0], [], [[0.2]]])
def test_thresholds_outside_zero_one_are_refused(thresholds: list[float]) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        net_benefit(Y, P, thresholds)
