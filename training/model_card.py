"""A self-contained HTML model card: plots are inline base64 PNGs, no external assets."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from training import metrics as m

_STYLE = (
    "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
    "text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
    "img{max-width:31%;margin:0 1%}"
)


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plots(
    labels: np.ndarray, probabilities: np.ndarray, baseline: np.ndarray | None
) -> dict[str, str]:
    """ROC, precision-recall and reliability plots as base64 PNG strings."""
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
    return out


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
        f"({html.escape(str(metadata.get('model_version', '')))})</h1>",
        "<h2>Intended use</h2><p>Ranks adult inpatients at discharge by the risk of an unplanned "
        "readmission within 30 days, to prioritise transitional-care follow-up. It is decision "
        "support for clinicians, not a diagnosis, and was not validated outside the source "
        "population described below.</p>",
        "<h2>Model</h2><p>" + html.escape(str(metadata.get("architecture", ""))) + "</p>",
        "<h2>Training data</h2><pre>"
        + html.escape(str(metadata.get("training_data", {})))
        + "</pre>",
        f"<h2>Decision threshold</h2><p>{_fmt(evaluation['threshold'])} (target "
        f"{html.escape(str(metadata.get('threshold_target', '')))}, chosen on validation)</p>",
        "<h2>Test metrics</h2>" + _table(headline, columns),
        "<h2>Plots</h2>"
        + "".join(
            f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
            for name, data in images.items()
        ),
        "<h2>Subgroups</h2>",
    ]
    for attribute, block in evaluation.get("subgroups", {}).items():
        rows = [(str(name), values) for name, values in block["groups"].items()]
        gaps = ", ".join(
            f"{metric}: {_fmt(g['gap'])} ({html.escape(g['lowest_group'])} vs "
            f"{html.escape(g['highest_group'])})"
            for metric, g in block.get("largest_gaps", {}).items()
        )
        sections.append(f"<h3>{html.escape(attribute)}</h3>" + _table(rows, columns))
        sections.append(f"<p>Largest gaps: {gaps or 'n/a'}</p>")
    sections.append(
        "<h2>Limitations</h2><p>Groups under 30 test encounters are not scored. Calibration "
        "was fitted on the validation split and may drift; the platform's drift monitor "
        "compares live inputs and scores with the training baseline.</p>"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Model card</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(sections)}</body></html>"
    )
