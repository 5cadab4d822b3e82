"""A self-contained HTML model card: plots are inline base64 PNGs, no external assets.

The approving lead reads it in SageMaker Studio before approving a version: headline metrics
with bootstrap 95 % intervals, the alert-budget table (what the care team gets at its
capacity), the decision curve, subgroups, and the training data as a table.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from contracts.model_artifact import (
    META_ARCHITECTURE,
    META_MODEL_VERSION,
    META_THRESHOLD_TARGET,
    META_TRAINING_DATA,
)
from training import metrics as m
from training.alert_budget import TOO_FEW
from training.decision_curve import decision_curve

_STYLE = (
    "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
    "text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
    "img{max-width:31%;margin:0 1%}img.wide{max-width:62%}"
    "td.text{text-align:left;overflow-wrap:anywhere;max-width:640px}"
)
#: The image of the decision curve, shown in its own section rather than with the others.
DECISION_CURVE_PLOT = "decision_curve"
#: Metrics with bootstrap intervals, in card order, with their labels.
INTERVAL_LABELS = {
    "auroc": "AUROC",
    "auprc": "AUPRC",
    "calibration_slope": "calibration slope (1 ideal)",
    "calibration_intercept": "calibration intercept (0 ideal)",
}


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plots(
    labels: np.ndarray,
    probabilities: np.ndarray,
    baseline: np.ndarray | None,
    budget_cutoff: float | None = None,
) -> dict[str, str]:
    """ROC, precision-recall, reliability and decision-curve plots as base64 PNG strings.

    ``budget_cutoff`` (the risk at which the alert budget ends) is marked on the decision curve.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    series = {"model": probabilities}
    if baseline is not None:
        series["logistic baseline"] = baseline
    out: dict[str, str] = {}
    if len(np.unique(labels)) < 2:
        return out
    fig, ax = plt.subplots(figsize=(4, 4))
    for name, scores in series.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUROC {m.auroc(labels, scores):.3f})")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right", fontsize=7)
    out["roc"] = _png(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4, 4))
    for name, scores in series.items():
        precision, recall, _ = precision_recall_curve(labels, scores)
        ax.plot(recall, precision, label=f"{name} (AUPRC {m.auprc(labels, scores):.3f})")
    ax.axhline(float(labels.mean()), color="k", linestyle="--", linewidth=0.8)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    ax.legend(loc="upper right", fontsize=7)
    out["pr"] = _png(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4, 4))
    curve = m.reliability_curve(labels, probabilities)
    ax.plot(
        [b["mean_predicted"] for b in curve],
        [b["observed_rate"] for b in curve],
        "o-",
        label="model",
    )
    top = max([0.05, *(b["mean_predicted"] for b in curve), *(b["observed_rate"] for b in curve)])
    ax.plot([0, top], [0, top], "k--", linewidth=0.8)
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title="Calibration")
    out["calibration"] = _png(fig)
    plt.close(fig)
    out[DECISION_CURVE_PLOT] = _decision_curve_png(plt, labels, probabilities, budget_cutoff)
    return out


def _decision_curve_png(
    plt: Any, labels: np.ndarray, probabilities: np.ndarray, budget_cutoff: float | None
) -> str:
    curve = decision_curve(labels, probabilities)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve["thresholds"], curve["model"], label="model")
    ax.plot(curve["thresholds"], curve["treat_all"], label="treat all")
    ax.plot(curve["thresholds"], curve["treat_none"], "k--", linewidth=0.8, label="treat none")
    if budget_cutoff is not None and (
        curve["thresholds"][0] <= budget_cutoff <= curve["thresholds"][-1]
    ):
        ax.axvline(budget_cutoff, color="grey", linestyle=":", label="alert budget's cutoff")
    prevalence = float(np.mean(labels))
    ax.set_ylim(-0.05 * max(prevalence, 0.01), max(prevalence, 0.01) * 1.1)
    ax.set(xlabel="threshold probability", ylabel="net benefit", title="Decision curve")
    ax.legend(loc="upper right", fontsize=7)
    encoded = _png(fig)
    plt.close(fig)
    return encoded


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if value is None:
        return "n/a"
    return html.escape(str(value))


def _table(rows: list[tuple[str, Mapping[str, Any]]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["", *columns])
    body = "".join(
        "<tr><td>"
        + html.escape(name)
        + "</td>"
        + "".join(f"<td>{_fmt(values.get(c))}</td>" for c in columns)
        + "</tr>"
        for name, values in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _share(value: Any) -> str:
    return "n/a" if not isinstance(value, int | float) else f"{100 * value:.1f} %"


def _nnc(value: Any) -> str:
    """Number needed to contact; ``None`` with a PPV of 0 means no readmission was caught."""
    return "n/a" if not isinstance(value, int | float) else f"{value:.1f}"


def _label(key: str) -> str:
    return key.replace("_", " ")


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested mapping to ``(label, value)`` rows: ``rows / train``, lists joined by commas."""
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        label = f"{prefix} / {_label(str(key))}" if prefix else _label(str(key))
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, label) if value else [(label, "none")])
        elif isinstance(value, list | tuple):
            rows.append((label, ", ".join(str(v) for v in value) or "none"))
        elif isinstance(value, bool) or value is None:
            rows.append((label, str(value).lower() if value is not None else "n/a"))
        elif isinstance(value, int):
            rows.append((label, f"{value:,}"))
        elif isinstance(value, float):
            rows.append((label, f"{value:.4g}"))
        else:
            rows.append((label, str(value)))
    return rows


def training_data_table(training_data: Mapping[str, Any]) -> str:
    """The training data (split sizes, positive rate, ETL manifest) as a two-column table."""
    rows = _flatten(training_data)
    if not rows:
        return "<p>Not recorded.</p>"
    body = "".join(
        f"<tr><td>{html.escape(name)}</td><td class='text'>{html.escape(value)}</td></tr>"
        for name, value in rows
    )
    return f"<table><tr><th>Item</th><th>Value</th></tr>{body}</table>"


_BUDGET_COLUMNS = (
    "patients",
    "alert rate",
    "alerts",
    "readmissions caught",
    "PPV",
    "sensitivity",
    "contacts per readmission caught",
)


def _budget_cells(figures: Mapping[str, Any]) -> list[str]:
    if not figures.get("scored", True):
        note = html.escape(str(figures.get("note", TOO_FEW)))
        return [f"{figures.get('n', 0):,}", note, *["" for _ in _BUDGET_COLUMNS[2:]]]
    return [
        f"{figures['n']:,}",
        _share(figures["alert_rate"]),
        f"{figures['alerts']:,}",
        f"{figures['readmissions_caught']:,} of {figures['readmissions']:,}",
        _fmt(figures["ppv"]),
        _fmt(figures["sensitivity"]),
        _nnc(figures["number_needed_to_contact"]),
    ]


def _rows_table(first: str, columns: Any, rows: list[tuple[str, list[str]]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in [first, *columns])
    body = "".join(
        f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        for name, cells in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def alert_budget_section(budget: Mapping[str, Any]) -> str:
    """The alert-budget table: overall, per subgroup, and other budgets for comparison."""
    share = _share(budget["budget"])
    parts = [
        "<h2>Alert budget</h2>",
        f"<p>The care team follows up the top {share} of discharges by predicted risk (the "
        "alert budget). On the test split that is every patient with a risk of at least "
        f"{_fmt(budget.get('score_cutoff'))}. PPV is the share of contacted patients who were "
        "readmitted; sensitivity the share of readmissions the contacts reach; contacts per "
        "readmission caught is 1/PPV. Subgroups are the same alerts split by group; groups "
        f"under {budget['min_subgroup_size']} test patients show "
        f"&ldquo;{html.escape(TOO_FEW)}&rdquo; instead of figures.</p>",
        _rows_table(
            "",
            _BUDGET_COLUMNS,
            [(f"all patients (budget {share})", _budget_cells(budget["overall"]))],
        ),
    ]
    for attribute, groups in budget.get("subgroups", {}).items():
        rows = [(str(name), _budget_cells(figures)) for name, figures in groups.items()]
        parts.append(f"<h3>By {html.escape(_label(attribute))}</h3>")
        parts.append(_rows_table(_label(attribute), _BUDGET_COLUMNS, rows))
    compared = [
        (_share(row["budget"]), _budget_cells(row)) for row in budget.get("compared_budgets", [])
    ]
    if compared:
        parts.append("<h3>Other budgets (test split)</h3>")
        parts.append(_rows_table("budget", _BUDGET_COLUMNS, compared))
    return "".join(parts)


def _interval(figures: Mapping[str, Any]) -> str:
    value, lower, upper = figures.get("value"), figures.get("lower"), figures.get("upper")
    if value is None:
        return "n/a"
    if lower is None or upper is None:
        return f"{value:.3f} (interval n/a)"
    return f"{value:.3f} ({lower:.3f} to {upper:.3f})"


def intervals_section(intervals: Mapping[str, Any]) -> str:
    """AUROC, AUPRC and calibration with 95 % percentile-bootstrap intervals."""
    columns = list(INTERVAL_LABELS.values())
    parts = [
        "<h2>Uncertainty: 95 % bootstrap intervals</h2>",
        f"<p>{html.escape(str(intervals['method']).capitalize())} with "
        f"{intervals['resamples']:,} resamples of the test patients (seed {intervals['seed']}); "
        "each cell is the estimate with its 95 % interval. Calibration is the slope and "
        "intercept of logistic recalibration of the predicted log-odds: slope 1 and intercept 0 "
        "are ideal; a slope below 1 means risks too extreme, an intercept above 0 risks "
        "under-predicted. Within a subgroup the patients are resampled within the group.</p>",
        _rows_table(
            "",
            columns,
            [("all test patients", [_interval(intervals["overall"][k]) for k in INTERVAL_LABELS])],
        ),
    ]
    for attribute, groups in intervals.get("subgroups", {}).items():
        rows = []
        for name, block in groups.items():
            if block.get("scored"):
                cells = [_interval(block["metrics"][k]) for k in INTERVAL_LABELS]
            else:
                note = html.escape(str(block.get("note", TOO_FEW)))
                cells = [f"{note} (n={block.get('n', 0)})", *["" for _ in columns[1:]]]
            rows.append((str(name), cells))
        parts.append(f"<h3>By {html.escape(_label(attribute))}</h3>")
        parts.append(_rows_table(_label(attribute), columns, rows))
    return "".join(parts)


def decision_curve_section(images: Mapping[str, str]) -> str:
    """The decision-curve plot and how to read it."""
    image = images.get(DECISION_CURVE_PLOT)
    text = (
        "<h2>Decision curve</h2><p>Net benefit (Vickers &amp; Elkin 2006) of following up "
        "patients whose predicted risk is at least the threshold probability, against following "
        "up everyone (treat all) and no one (treat none). The threshold probability is the risk "
        "at which a clinician judges a follow-up worth its cost; the model is useful where its "
        "curve lies above both references. The dotted line marks the alert budget's cutoff.</p>"
    )
    if image is None:
        return text + "<p>Not drawn: the test split has one class only.</p>"
    return text + f'<img class="wide" alt="decision curve" src="data:image/png;base64,{image}">'


def render(
    evaluation: Mapping[str, Any],
    metadata: Mapping[str, Any],
    images: Mapping[str, str],
) -> str:
    """Return the model card HTML from the evaluation document, metadata and plots."""
    columns = [
        "n",
        "prevalence",
        "auroc",
        "auprc",
        "brier",
        "ece",
        "precision",
        "recall",
        "f1",
        "alert_rate",
    ]
    headline = [("model (test)", evaluation["test"])]
    if "baseline" in evaluation:
        headline.append(("logistic baseline (test)", evaluation["baseline"]))
    sections = [
        "<h1>Model card: 30-day readmission risk "
        f"({html.escape(str(metadata.get(META_MODEL_VERSION, '')))})</h1>",
        "<h2>Intended use</h2><p>Ranks adult inpatients at discharge by the risk of an unplanned "
        "readmission within 30 days, to prioritise transitional-care follow-up. It is decision "
        "support for clinicians, not a diagnosis, and was not validated outside the source "
        "population described below.</p>",
        "<h2>Model</h2><p>" + html.escape(str(metadata.get(META_ARCHITECTURE, ""))) + "</p>",
        "<h2>Training data</h2>" + training_data_table(metadata.get(META_TRAINING_DATA) or {}),
        f"<h2>Decision threshold</h2><p>{_fmt(evaluation['threshold'])} (target "
        f"{html.escape(str(metadata.get(META_THRESHOLD_TARGET, '')))}, chosen on validation)</p>",
    ]
    if "alert_budget" in evaluation:
        sections.append(alert_budget_section(evaluation["alert_budget"]))
    sections.append("<h2>Test metrics</h2>" + _table(headline, columns))
    if "intervals" in evaluation:
        sections.append(intervals_section(evaluation["intervals"]))
    sections.append(
        "<h2>Plots</h2>"
        + "".join(
            f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
            for name, data in images.items()
            if name != DECISION_CURVE_PLOT
        )
    )
    if "decision_curve" in evaluation:
        sections.append(decision_curve_section(images))
    sections.append("<h2>Subgroups</h2>")
    for attribute, block in evaluation.get("subgroups", {}).items():
        rows = [
            (str(name), values if values.get("scored", True) else {**values, "prevalence": TOO_FEW})
            for name, values in block["groups"].items()
        ]
        gaps = ", ".join(
            f"{metric}: {_fmt(g['gap'])} ({html.escape(g['lowest_group'])} vs "
            f"{html.escape(g['highest_group'])})"
            for metric, g in block.get("largest_gaps", {}).items()
        )
        sections.append(f"<h3>{html.escape(attribute)}</h3>" + _table(rows, columns))
        sections.append(f"<p>Largest gaps: {gaps or 'n/a'}</p>")
    sections.append(
        f"<h2>Limitations</h2><p>Groups under {m.MIN_SUBGROUP_PATIENTS} test encounters are not "
        "scored. Calibration was fitted on the validation split and may drift; the platform's "
        "drift monitor compares live inputs and scores with the training baseline.</p>"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Model card</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(sections)}</body></html>"
    )
