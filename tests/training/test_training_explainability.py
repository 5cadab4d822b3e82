"""Global factor importance: the serving explanation aggregated over the validation split."""

from __future__ import annotations

from typing import Any

import pytest

from training import evaluation


def factor(feature: str, contribution: float) -> dict[str, Any]:
    direction = "increases" if contribution > 0 else "decreases"
    return {"feature": feature, "direction": direction, "contribution": contribution}


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("age = 87", "age"),
        ("age not recorded", "age"),
        ("sex = F", "sex"),
        ("length of stay (days) = 4.5", "length of stay (days)"),
        ("diagnosis 4280 (Heart failure)", "diagnosis 4280 (Heart failure)"),
        ("discharge note", "discharge note"),
        ("agent = x", "agent = x"),  # not a field's name: kept as it is
    ],
)
def test_a_factor_is_named_by_its_field_without_the_patients_value(name: str, field: str) -> None:
    assert evaluation.factor_field(name) == field


def test_importance_is_the_mean_absolute_contribution_over_all_records() -> None:
    records = [
        [factor(f"age = {60 + i}", 0.4), factor("diagnosis 4280 (Heart failure)", -0.1)]
        for i in range(40)
    ] + [[factor("age not recorded", -0.2)] for _ in range(10)]
    result = evaluation.global_factor_importance(records, min_records=5)
    assert result["records_explained"] == 50
    by_name = {row["factor"]: row for row in result["factors"]}
    assert [row["factor"] for row in result["factors"]] == [
        "age",
        "diagnosis 4280 (Heart failure)",
    ]
    assert by_name["age"]["mean_absolute_contribution"] == pytest.approx((40 * 0.4 + 10 * 0.2) / 50)
    assert by_name["age"]["mean_contribution_when_listed"] == pytest.approx((16 - 2) / 50)
    assert by_name["age"]["share_of_records_listing"] == 1.0
    diagnosis = by_name["diagnosis 4280 (Heart failure)"]
    assert diagnosis["mean_absolute_contribution"] == pytest.approx(0.1 * 40 / 50)
    assert diagnosis["share_of_records_listing"] == pytest.approx(0.8)


def test_a_factor_too_few_records_list_is_left_out_and_counted() -> None:
    records = [[factor("sex = F", 0.1)] for _ in range(30)]
    records[0].append(factor("diagnosis V1234 (rare)", 2.0))
    result = evaluation.global_factor_importance(records)  # 30-record floor
    assert [row["factor"] for row in result["factors"]] == ["sex"]
    assert result["factors_left_out"] == 1
    assert "V1234" not in str(result)


def test_the_list_is_capped_and_ties_are_ordered_by_name() -> None:
    records = [[factor(f"procedure {i}", 0.1) for i in range(30)] for _ in range(3)]
    result = evaluation.global_factor_importance(records, top=5, min_records=1)
    assert [row["factor"] for row in result["factors"]] == [
        "procedure 0", "procedure 1", "procedure 10", "procedure 11", "procedure 12",
    ]  # fmt: skip
