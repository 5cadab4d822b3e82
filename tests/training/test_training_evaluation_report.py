"""evaluation.json's schema (old sections kept, new ones added) and the model card's sections."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import jsonschema
import numpy as np
import pytest

from training import evaluation, model_card

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_REGISTRY_METRIC = {
    "type": "object",
    "required": ["value", "standard_deviation"],
    "properties": {"value": _NUMBER_OR_NULL, "standard_deviation": _NUMBER_OR_NULL},
    "additionalProperties": False,
}
_AT_ALERTS = {
    "type": "object",
    "required": [
        "n", "alerts", "readmissions", "readmissions_caught", "alert_rate", "ppv",
        "sensitivity", "number_needed_to_contact",
    ],
    "properties": {
        "n": {"type": "integer"}, "alerts": {"type": "integer"}, "ppv": _NUMBER_OR_NULL,
        "sensitivity": _NUMBER_OR_NULL, "number_needed_to_contact": _NUMBER_OR_NULL,
        "alert_rate": _NUMBER_OR_NULL,
    },
}  # fmt: skip
_TOO_FEW = {
    "type": "object",
    "required": ["n", "scored", "note"],
    "properties": {"scored": {"const": False}, "note": {"const": "too few patients"}},
}
_INTERVAL = {
    "type": "object",
    "required": ["value", "lower", "upper", "standard_deviation", "defined_resamples"],
    "properties": {
        "value": _NUMBER_OR_NULL, "lower": _NUMBER_OR_NULL, "upper": _NUMBER_OR_NULL,
        "defined_resamples": {"type": "integer"},
    },
}  # fmt: skip
_INTERVAL_METRICS = {
    "type": "object",
    "required": ["auroc", "auprc", "calibration_slope", "calibration_intercept"],
    "additionalProperties": _INTERVAL,
}
_CURVE = {"type": "array", "items": {"type": "number"}, "minItems": 2}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "binary_classification_metrics", "test", "validation", "threshold", "reliability_curve",
        "subgroups", "baseline", "alert_budget", "intervals", "decision_curve",
    ],
    "properties": {
        "binary_classification_metrics": {
            "type": "object",
            "required": [
                "auc", "pr_auc", "precision", "recall", "alert_rate", "confusion_matrix",
                "calibration_slope", "calibration_intercept", "alert_rate_at_alert_budget",
                "ppv_at_alert_budget", "sensitivity_at_alert_budget",
                "number_needed_to_contact_at_alert_budget",
            ],
            "properties": dict.fromkeys(
                (
                    "auc", "pr_auc", "calibration_slope", "calibration_intercept",
                    "alert_rate_at_alert_budget", "ppv_at_alert_budget",
                    "sensitivity_at_alert_budget", "number_needed_to_contact_at_alert_budget",
                ),
                _REGISTRY_METRIC,
            ),
        },
        "alert_budget": {
            "type": "object",
            "required": [
                "budget", "score_cutoff", "overall", "subgroups", "min_subgroup_size",
                "compared_budgets",
            ],
            "properties": {
                "budget": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "overall": _AT_ALERTS,
                "subgroups": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": {"oneOf": [
                            {**_AT_ALERTS, "properties": {
                                **_AT_ALERTS["properties"], "scored": {"const": True}
                            }},
                            _TOO_FEW,
                        ]},
                    },
                },
                "compared_budgets": {"type": "array", "items": _AT_ALERTS, "minItems": 1},
            },
        },
        "intervals": {
            "type": "object",
            "required": ["method", "confidence", "resamples", "seed", "overall", "subgroups"],
            "properties": {
                "confidence": {"const": 0.95},
                "overall": _INTERVAL_METRICS,
                "subgroups": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": {"oneOf": [
                            {
                                "type": "object",
                                "required": ["n", "scored", "metrics"],
                                "properties": {
                                    "scored": {"const": True}, "metrics": _INTERVAL_METRICS
                                },
                            },
                            _TOO_FEW,
                        ]},
                    },
                },
            },
        },
        "decision_curve": {
            "type": "object",
            "required": ["thresholds", "model", "treat_all", "treat_none", "reference"],
            "properties": {
                "thresholds": _CURVE, "model": _CURVE, "treat_all": _CURVE, "treat_none": _CURVE,
            },
        },
    },
}  # fmt: skip

N = 600


@pytest.fixture(scope="module")
def scored() -> dict[str, Any]:
    """A test split of 600: risks that rank, three subgroup columns, one tiny race group."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=N)
    y = (rng.random(N) < 1 / (1 + np.exp(-(x - 2.0)))).astype(float)
    p = 1 / (1 + np.exp(-(x - 2.0)))
    groups = {
        "sex": list(rng.choice(["F", "M"], N)),
        "age_band": list(rng.choice(["<40", "40-64", "65-79", "80+"], N)),
        "race": ["Asian"] * 12 + list(rng.choice(["Caucasian", "AfricanAmerican"], N - 12)),
    }
    report = evaluation.build_evaluation(
        labels=y,
        probabilities=p,
        threshold=0.2,
        validation={"auroc": 0.7},
        subgroups=groups,
        baseline_probabilities=np.clip(p + rng.normal(0, 0.1, N), 0.001, 0.999),
        seed=42,
        alert_budget=0.1,
        bootstrap_resamples=60,
    )
    return {"report": report, "labels": y, "probabilities": p}


def test_evaluation_follows_the_schema_and_is_strict_json(scored: dict[str, Any]) -> None:
    report = scored["report"]
    jsonschema.validate(report, SCHEMA)
    json.dumps(report, allow_nan=False)  # undefined figures are null, never NaN


def test_evaluation_reports_the_budget_figures_everywhere_they_are_read(
    scored: dict[str, Any],
) -> None:
    report = scored["report"]
    y, p = scored["labels"], scored["probabilities"]
    top = np.argsort(-p)[:60]  # 10 % of 600
    ppv = y[top].mean()
    overall = report["alert_budget"]["overall"]
    assert overall["alerts"] == 60
    assert overall["ppv"] == pytest.approx(ppv)
    assert overall["sensitivity"] == pytest.approx(y[top].sum() / y.sum())
    assert overall["number_needed_to_contact"] == pytest.approx(1 / ppv)
    registry = report["binary_classification_metrics"]
    assert registry["ppv_at_alert_budget"]["value"] == pytest.approx(ppv)
    assert registry["number_needed_to_contact_at_alert_budget"]["value"] == pytest.approx(1 / ppv)
    assert registry["alert_rate_at_alert_budget"]["value"] == pytest.approx(0.1)
    assert registry["auc"]["value"] == pytest.approx(report["test"]["auroc"])
    assert registry["auc"]["standard_deviation"] == pytest.approx(
        report["intervals"]["overall"]["auroc"]["standard_deviation"]
    )
    assert report["alert_budget"]["subgroups"]["race"]["Asian"]["note"] == "too few patients"
    assert report["intervals"]["subgroups"]["race"]["Asian"]["note"] == "too few patients"
    assert report["intervals"]["resamples"] == 60
    assert report["intervals"]["seed"] == 42


class _Card(HTMLParser):
    """Headings, tables (rows of cell texts) and image alts of the card."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self._text: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h2", "h3", "td", "th"):
            self._text = []
        if tag == "table":
            self.tables.append([])
        if tag == "tr":
            self._row = []
        if tag == "img":
            self.images.append(dict(attrs).get("alt") or "")

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text or []).strip()
        if tag in ("h2", "h3"):
            self.headings.append(text)
            self._text = None
        elif tag in ("td", "th") and self._row is not None:
            self._row.append(text)
            self._text = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None

    def table_after(self, heading: str) -> list[list[str]]:
        """The first table whose first header cell row contains ``heading``'s table."""
        for table in self.tables:
            if any(heading in cell for cell in table[0]):
                return table
        raise AssertionError(f"no table with {heading!r}")


@pytest.fixture(scope="module")
def card(scored: dict[str, Any]) -> _Card:
    metadata = {
        "model_version": "readmission-multimodal-1",
        "threshold_target": "alert_budget=0.1",
        "training_data": {
            "rows": {"train": 4000, "validation": 500, "test": 600},
            "positive_rate_train": 0.1123,
            "manifest": {"source": "uci_diabetes", "rows_in": 101766, "deid": {"method": "hmac"}},
        },
    }
    images = model_card.plots(
        scored["labels"],
        scored["probabilities"],
        None,
        budget_cutoff=scored["report"]["alert_budget"]["score_cutoff"],
    )
    parser = _Card()
    parser.feed(model_card.render(scored["report"], metadata, images))
    return parser


def test_card_has_the_new_sections_and_the_decision_curve(card: _Card) -> None:
    for heading in ("Training data", "Alert budget", "Decision curve"):
        assert heading in card.headings
    assert any(h.startswith("Uncertainty: 95 % bootstrap intervals") for h in card.headings)
    assert {"By sex", "By age band", "By race"} <= set(card.headings)
    assert sorted(card.images) == ["calibration", "decision curve", "pr", "roc"]


def test_card_shows_the_training_data_as_a_table_not_a_dict(card: _Card) -> None:
    table = card.table_after("Item")
    rows = {row[0]: row[1] for row in table[1:]}
    assert rows["rows / train"] == "4,000"
    assert rows["positive rate train"] == "0.1123"
    assert rows["manifest / deid / method"] == "hmac"
    assert not any("{" in value for value in rows.values())


def test_card_alert_budget_table_has_ppv_sensitivity_and_contacts(
    card: _Card, scored: dict[str, Any]
) -> None:
    overall = scored["report"]["alert_budget"]["overall"]
    table = card.table_after("contacts per readmission caught")
    header, first = table[0], table[1]
    assert first[0] == "all patients (budget 10.0 %)"
    assert first[header.index("PPV")] == f"{overall['ppv']:.4f}"
    assert first[header.index("sensitivity")] == f"{overall['sensitivity']:.4f}"
    assert first[header.index("contacts per readmission caught")] == (
        f"{overall['number_needed_to_contact']:.1f}"
    )
    race = next(t for t in card.tables if t[0][0] == "race" and "PPV" in t[0])
    asian = next(row for row in race if row[0] == "Asian")
    assert "too few patients" in asian


def test_card_intervals_table_reads_estimate_and_bounds(
    card: _Card, scored: dict[str, Any]
) -> None:
    auroc = scored["report"]["intervals"]["overall"]["auroc"]
    table = card.table_after("AUROC")
    assert table[1][0] == "all test patients"
    assert table[1][1] == f"{auroc['value']:.3f} ({auroc['lower']:.3f} to {auroc['upper']:.3f})"
    race = next(t for t in card.tables if t[0][0] == "race" and "AUROC" in t[0])
    assert any(row[0] == "Asian" and row[1].startswith("too few patients") for row in race)


def test_card_says_too_few_patients_wherever_a_small_group_appears(card: _Card) -> None:
    rows = [row for table in card.tables for row in table if row[0] == "Asian"]
    assert len(rows) == 3  # the subgroup metrics, the alert budget and the intervals
    assert all(any("too few patients" in cell for cell in row) for row in rows)
