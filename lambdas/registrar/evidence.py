"""What a registered version carries for its approver: the card, bias and explainability reports.

Pure functions from the documents training wrote into ``model.tar.gz`` (``evaluation.json``,
``metadata.json``, ``drift_baseline.json``) to the documents the registrar stores beside the
archive and attaches to the model package. Nothing here reads or writes AWS.

The card follows SageMaker's *model package* model card schema, a simplified model card:
``model_overview`` holds only ``model_creator`` and ``model_artifact`` and there is no
``model_package_details`` (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelPackageModelCard.html,
https://docs.aws.amazon.com/sagemaker/latest/dg/model-registry-details.html#model-card-schema).
A section training did not produce is left out *and named* in ``omitted``; the card says so
(``additional_information``) and so does the package's metadata. Only aggregate figures leave
the archive: a subgroup smaller than the evaluation's minimum is named, never counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.encounter import FieldKind, model_input_fields
from contracts.model_artifact import METADATA_FILE
from contracts.serving import ENCOUNTER_KEY, INSTANCES_KEY

#: The evaluation sections without which a version is not registered at all.
REQUIRED_SECTIONS = ("binary_classification_metrics", "test", "baseline", "threshold")
#: Sections that, when missing, are left off the card and named there.
SUBGROUPS = "subgroups"
INTERVALS = "intervals"
ALERT_BUDGET = "alert_budget"
EXPLAINABILITY = "explainability"
METADATA = METADATA_FILE
MANIFEST = "manifest"
#: Evaluation's own floor (training.metrics.MIN_SUBGROUP_PATIENTS) when the report omits it.
DEFAULT_MIN_SUBGROUP = 30
TOO_SMALL = "not reported: fewer than {min} patients"
RISK_RATING = "High"
MODEL_CREATOR = "readmission platform training pipeline (SageMaker training job {job})"
#: Metric group names are at most 63 characters (model card schema).
GROUP_NAME_CHARS = 63
#: Free-text fields of the card are at most 1024 or 2048 characters (model card schema).
NOTE_CHARS = 1024
TEXT_CHARS = 2048
#: A hyperparameter value is at most 255 characters (model card schema).
HYPERPARAMETER_CHARS = 255
SAMPLE_ENCOUNTER_KEY = "sample-typical-training-patient"

INTENDED_USES = {
    "purpose_of_model": (
        "Estimate, at hospital discharge, each adult inpatient's risk of an unplanned "
        "readmission within 30 days, so that a care-transitions team can prioritise "
        "follow-up calls and visits within a fixed daily capacity."
    ),
    "intended_uses": (
        "Decision support for care-transitions nurses and discharge planners: a worklist "
        "ordered by risk, a risk band per discharge and the top factors behind each score. "
        "Not for denying care, coverage or admission; not a diagnosis; not validated for "
        "paediatric, obstetric or psychiatric-only admissions."
    ),
    "factors_affecting_model_efficiency": (
        "Coding practice (ICD-9 versus ICD-10, code completeness), the case mix and "
        "readmission rate of the hospital, missing prior-utilisation history, and drift of "
        "the inputs since training (watched by the drift monitor against this version's "
        "baseline)."
    ),
    "risk_rating": RISK_RATING,
    "explanations_for_risk_rating": (
        "High: the scores steer clinical follow-up for patients, are computed from protected "
        "health information, and a miscalibrated or biased model would withhold follow-up "
        "from the patients who need it. A person approves every version before it serves."
    ),
}
BUSINESS_DETAILS = {
    "business_problem": (
        "Unplanned 30-day readmissions harm patients and are penalised; follow-up capacity "
        "is limited, so it should go to the patients most likely to be readmitted."
    ),
    "business_stakeholders": (
        "Clinical lead (approves versions), care-transitions team (uses the worklist), "
        "quality and equity office (reviews subgroup gaps), platform engineering."
    ),
    "line_of_business": "Inpatient care transitions",
}
ETHICAL_CONSIDERATIONS = (
    "Trained on protected health information that was de-identified before training; the "
    "card, the reports and the sample payload hold aggregate figures and a synthetic record "
    "only. Subgroup performance (sex, age band and, where recorded, race) is reported with "
    "bootstrap intervals: check the gaps before approving."
)
LIMITATIONS = (
    "Retrospective evaluation on one held-out split of the training source; performance in "
    "another hospital or after a coding change is unknown until monitored. Scores rank "
    "patients by risk; the decision threshold trades alerts against missed readmissions and "
    "is a policy choice. Readmissions to other hospitals are not in the label."
)


class EvidenceError(ValueError):
    """A document cannot become the version's evidence; the message names the part at fault."""


@dataclass(frozen=True)
class EvidenceLinks:
    """Where the registrar stored each document (``s3://`` URIs; empty when not stored)."""

    model_data_url: str
    evaluation: str
    html_card: str = ""
    bias: str = ""
    explainability: str = ""
    manifest: str = ""
    training_image_tag: str = ""


@dataclass
class Card:
    """The card content and the names of the sections it had to leave out."""

    content: dict[str, Any]
    omitted: list[str] = field(default_factory=list)


def check_required(evaluation: Mapping[str, Any]) -> None:
    """Refuse an evaluation report that lacks a section no version may go without."""
    missing = [name for name in REQUIRED_SECTIONS if evaluation.get(name) is None]
    if missing:
        raise EvidenceError(f"evaluation.json lacks {', '.join(missing)}: not registered")
    malformed = [
        name for name in REQUIRED_SECTIONS[:-1] if not isinstance(evaluation[name], Mapping)
    ]
    if malformed:
        raise EvidenceError(
            f"evaluation.json: {', '.join(malformed)} must be JSON objects: not registered"
        )
    threshold = evaluation["threshold"]
    if not _finite(threshold) or not 0.0 < float(threshold) < 1.0:
        raise EvidenceError("evaluation.json: threshold must be a number in (0, 1)")


def _mapping_of_mappings(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(v, Mapping) for v in value.values())


def _subgroups_usable(value: Any) -> bool:
    return _mapping_of_mappings(value) and all(
        _mapping_of_mappings(table.get("groups", {}))
        and _mapping_of_mappings(table.get("largest_gaps", {}))
        for table in value.values()
    )


def _intervals_usable(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and _mapping_of_mappings(value.get("overall", {}))
        and _mapping_of_mappings(value.get("subgroups", {}))
        and all(_mapping_of_mappings(t) for t in value.get("subgroups", {}).values())
    )


def _budget_usable(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("overall"), Mapping)
        and _mapping_of_mappings(value.get("subgroups", {}))
    )


def _explainability_usable(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("factors"), list)


#: Optional sections: what the card loses without each, and how a usable one is shaped.
OPTIONAL_SECTIONS: Mapping[str, tuple[str, Any]] = {
    SUBGROUPS: ("bias report and subgroup metric groups", _subgroups_usable),
    INTERVALS: ("bootstrap intervals", _intervals_usable),
    ALERT_BUDGET: ("alert budget figures", _budget_usable),
    EXPLAINABILITY: ("explainability report", _explainability_usable),
}


def screen(evaluation: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The report without optional sections that are missing or malformed, and what went.

    A section that is there but not shaped as training writes it is treated as missing, so the
    card never shows half of one.
    """
    usable = dict(evaluation)
    omitted = []
    for name, (what, usable_shape) in OPTIONAL_SECTIONS.items():
        value = evaluation.get(name)
        if value is None:
            omitted.append(f"{what} (evaluation.json has no {name} section)")
        elif not usable_shape(value):
            omitted.append(f"{what} (evaluation.json's {name} section is malformed)")
        else:
            continue
        usable.pop(name, None)
    return usable, omitted


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: Any) -> float | None:
    return float(value) if _finite(value) else None


def _fmt(value: Any, digits: int = 3) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{number:.{digits}f}"


def _share(value: Any) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{100 * number:.1f}%"


def _min_subgroup(evaluation: Mapping[str, Any]) -> int:
    intervals = evaluation.get(INTERVALS)
    size = _number(intervals.get("min_subgroup_size") if isinstance(intervals, Mapping) else None)
    return DEFAULT_MIN_SUBGROUP if size is None else int(size)


def interval_note(figures: Any) -> str:
    """``95% CI 0.680 to 0.741`` from one ``bootstrap.intervals`` entry, or why there is none."""
    if not isinstance(figures, Mapping):
        return "no interval"
    lower, upper = _number(figures.get("lower")), _number(figures.get("upper"))
    if lower is None or upper is None:
        return "no interval: too few resamples define it"
    return f"95% CI {lower:.3f} to {upper:.3f}, percentile bootstrap"


def _metric(name: str, value: Any, notes: str = "") -> dict[str, Any]:
    """One ``SimpleMetric``: a number where there is one, else a string that says why not."""
    number = _number(value)
    metric: dict[str, Any] = {
        "name": name[:255],
        "type": "number" if number is not None else "string",
        "value": number if number is not None else "undefined",
    }
    if notes:
        metric["notes"] = notes[:NOTE_CHARS]
    return metric


def headline(evaluation: Mapping[str, Any]) -> str:
    """The one sentence an approver reads first."""
    test, baseline = evaluation["test"], evaluation["baseline"]
    overall = (evaluation.get(INTERVALS) or {}).get("overall", {})
    return (
        f"Test AUROC {_fmt(test.get('auroc'))} ({interval_note(overall.get('auroc'))}) "
        f"against the logistic baseline's {_fmt(baseline.get('auroc'))}; at the decision "
        f"threshold {_fmt(evaluation['threshold'])} the model alerts on "
        f"{_share(test.get('alert_rate'))} of discharges and catches "
        f"{_share(test.get('recall'))} of readmissions (PPV {_fmt(test.get('precision'))})."
    )


def threshold_meaning(evaluation: Mapping[str, Any]) -> str:
    """What the threshold and the alert budget mean in alerts, for the card."""
    test = evaluation["test"]
    text = (
        f"Decision threshold {_fmt(evaluation['threshold'], 4)}: a discharge at or above it is "
        f"'high' risk and joins the alert worklist. On the test split that is "
        f"{_share(test.get('alert_rate'))} of discharges, sensitivity "
        f"{_share(test.get('recall'))}, PPV {_fmt(test.get('precision'))}."
    )
    budget = evaluation.get(ALERT_BUDGET)
    if isinstance(budget, Mapping) and isinstance(budget.get("overall"), Mapping):
        at = budget["overall"]
        text += (
            f" With an alert budget of {_share(budget.get('budget'))} (the top patients by "
            f"risk) the team contacts {_fmt(at.get('number_needed_to_contact'), 1)} patients "
            f"per readmission caught and catches {_share(at.get('sensitivity'))}."
        )
    return text


def overall_group(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """Headline metrics of the test split, with their bootstrap intervals where there are any."""
    test, baseline = evaluation["test"], evaluation["baseline"]
    overall = (evaluation.get(INTERVALS) or {}).get("overall", {})

    def bootstrapped(name: str, key: str, fallback: Any) -> dict[str, Any]:
        figures = overall.get(key)
        value = figures.get("value") if isinstance(figures, Mapping) else fallback
        return _metric(name, value, interval_note(figures))

    return {
        "name": "overall (test split)",
        "metric_data": [
            bootstrapped("AUROC", "auroc", test.get("auroc")),
            bootstrapped("AUPRC", "auprc", test.get("auprc")),
            bootstrapped("calibration slope", "calibration_slope", None),
            bootstrapped("calibration intercept", "calibration_intercept", None),
            _metric("Brier score", test.get("brier")),
            _metric("expected calibration error", test.get("ece")),
            _metric("sensitivity at threshold", test.get("recall")),
            _metric("PPV at threshold", test.get("precision")),
            _metric("alert rate at threshold", test.get("alert_rate")),
            _metric("decision threshold", evaluation["threshold"], threshold_meaning(evaluation)),
            _metric(
                "logistic baseline AUROC", baseline.get("auroc"), str(baseline.get("note", ""))
            ),
            _metric("test patients", test.get("n")),
        ],
    }


def alert_budget_group(budget: Mapping[str, Any]) -> dict[str, Any]:
    """What the alert budget buys: PPV, sensitivity, number needed to contact."""
    at = budget.get("overall", {})
    return {
        "name": "alert budget (test split)",
        "metric_data": [
            _metric("alert budget", budget.get("budget"), str(budget.get("rule", ""))),
            _metric("PPV at budget", at.get("ppv")),
            _metric("sensitivity at budget", at.get("sensitivity")),
            _metric("number needed to contact", at.get("number_needed_to_contact")),
        ],
    }


def _group_metrics(
    group: str, figures: Mapping[str, Any], interval: Mapping[str, Any], floor: int
) -> list[dict[str, Any]]:
    if not figures.get("scored"):
        return [{"name": f"{group}"[:255], "type": "string", "value": TOO_SMALL.format(min=floor)}]
    return [
        _metric(f"{group} AUROC", figures.get("auroc"), interval_note(interval.get("auroc"))),
        _metric(f"{group} sensitivity", figures.get("recall")),
        _metric(f"{group} alert rate", figures.get("alert_rate")),
        _metric(f"{group} calibration error", figures.get("ece")),
    ]


def subgroup_groups(evaluation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One metric group per attribute: each group's figures (or why not), the largest gaps."""
    floor = _min_subgroup(evaluation)
    interval_tables = (evaluation.get(INTERVALS) or {}).get("subgroups", {})
    out = []
    for attribute, table in sorted(evaluation.get(SUBGROUPS, {}).items()):
        intervals = interval_tables.get(attribute, {})
        metrics: list[dict[str, Any]] = []
        for group, figures in sorted(table.get("groups", {}).items()):
            interval = (intervals.get(group) or {}).get("metrics", {})
            metrics.extend(_group_metrics(str(group), figures, interval, floor))
        for metric, gap in sorted(table.get("largest_gaps", {}).items()):
            notes = f"lowest {gap.get('lowest_group')}, highest {gap.get('highest_group')}"
            metrics.append(_metric(f"largest {metric} gap", gap.get("gap"), notes))
        out.append({"name": f"subgroup: {attribute}"[:GROUP_NAME_CHARS], "metric_data": metrics})
    return out


def gaps(evaluation: Mapping[str, Any]) -> list[str]:
    """``sex: auroc gap 0.041 (F lowest, M highest)`` lines, for the approver's summary."""
    lines = []
    for attribute, table in sorted(evaluation.get(SUBGROUPS, {}).items()):
        for metric, gap in sorted(table.get("largest_gaps", {}).items()):
            lines.append(
                f"{attribute}: {metric} gap {_fmt(gap.get('gap'))} "
                f"({gap.get('lowest_group')} lowest, {gap.get('highest_group')} highest)"
            )
    return lines


def bias_report(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """``ModelMetrics.Bias``: per-group figures with intervals and the largest gaps.

    A group below the floor is named with a note; its size is not reported.
    """
    floor = _min_subgroup(evaluation)
    interval_tables = (evaluation.get(INTERVALS) or {}).get("subgroups", {})
    budget_tables = (evaluation.get(ALERT_BUDGET) or {}).get("subgroups", {})
    attributes: dict[str, Any] = {}
    for attribute, table in sorted(evaluation[SUBGROUPS].items()):
        groups: dict[str, Any] = {}
        for group, figures in sorted(table.get("groups", {}).items()):
            if not figures.get("scored"):
                groups[group] = {"reported": False, "note": TOO_SMALL.format(min=floor)}
                continue
            interval = (interval_tables.get(attribute, {}).get(group) or {}).get("metrics")
            groups[group] = {
                "reported": True,
                "metrics": {k: v for k, v in figures.items() if k != "scored"},
                "intervals": interval or {},
                "at_alert_budget": budget_tables.get(attribute, {}).get(group, {}),
            }
        attributes[attribute] = {"groups": groups, "largest_gaps": table.get("largest_gaps", {})}
    return {
        "report": "subgroup performance of the test split",
        "min_subgroup_size": floor,
        "threshold": evaluation["threshold"],
        "attributes": attributes,
    }


def explainability_report(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """``ModelMetrics.Explainability``: global factor importance over the validation split."""
    return {"report": "global factor importance", **dict(evaluation[EXPLAINABILITY])}


def _hyperparameters(metadata: Mapping[str, Any]) -> list[dict[str, str]]:
    hyper = metadata.get("hyperparameters")
    if not isinstance(hyper, Mapping):
        return []
    return [
        {"name": str(name)[:255], "value": str(value)[:HYPERPARAMETER_CHARS]}
        for name, value in sorted(hyper.items())
    ]


def training_observations(metadata: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    """Data set, split sizes, contract version and training time in a paragraph."""
    data = metadata.get("training_data", {})
    rows = data.get("rows", {})
    training = metadata.get("training", {})
    parts = [
        f"Data source {manifest.get('source', data.get('manifest', {}).get('source', 'n/a'))}, "
        f"encounter contract {metadata.get('schema_version', 'n/a')}.",
        "Rows train/validation/test: "
        + "/".join(str(rows.get(split, "n/a")) for split in ("train", "validation", "test"))
        + ".",
    ]
    if manifest:
        parts.append(
            f"ETL manifest: {manifest.get('rows_in', 'n/a')} rows in, "
            f"{manifest.get('rows_out', 'n/a')} out, {manifest.get('rows_excluded', 'n/a')} "
            f"excluded, {manifest.get('rows_quarantined', 'n/a')} quarantined."
        )
    parts.append(
        f"Trained {training.get('epochs_run', 'n/a')} epochs (best {training.get('best_epoch')}) "
        f"in {_fmt(training.get('train_seconds'), 0)} s on {training.get('world_size', 'n/a')} "
        f"{training.get('device', '')} process(es). {metadata.get('architecture', '')}"
    )
    return " ".join(parts)[:NOTE_CHARS]


def training_details(
    metadata: Mapping[str, Any], manifest: Mapping[str, Any], links: EvidenceLinks
) -> dict[str, Any]:
    """``training_details``: objective, observations, data sets, image, metrics, hyperparameters."""
    validation = metadata.get("validation", {})
    datasets = [uri for uri in (links.manifest,) if uri]
    details: dict[str, Any] = {
        "training_datasets": datasets,
        "hyper_parameters": _hyperparameters(metadata),
        "training_metrics": [
            {"name": f"validation {name}", "value": float(validation[name])}
            for name in ("auroc", "auprc")
            if _finite(validation.get(name))
        ],
    }
    if links.training_image_tag:
        details["training_environment"] = {"container_image": [links.training_image_tag]}
    return {
        "objective_function": {
            "function": "Minimize",
            "facet": "loss",
            "condition": "weighted BCE",
        },
        "training_observations": training_observations(metadata, manifest),
        "training_job_details": details,
    }


def build_card(
    evaluation: Mapping[str, Any],
    metadata: Mapping[str, Any],
    manifest: Mapping[str, Any],
    links: EvidenceLinks,
    job: str,
    omitted: Sequence[str],
) -> Card:
    """The model package card; ``omitted`` names evidence that could not be attached."""
    check_required(evaluation)
    omitted = list(omitted)
    groups = [overall_group(evaluation)]
    if isinstance(evaluation.get(ALERT_BUDGET), Mapping):
        groups.append(alert_budget_group(evaluation[ALERT_BUDGET]))
    groups.extend(subgroup_groups(evaluation))
    content: dict[str, Any] = {
        "model_overview": {
            "model_creator": MODEL_CREATOR.format(job=job)[:NOTE_CHARS],
            "model_artifact": [links.model_data_url],
        },
        "intended_uses": dict(INTENDED_USES),
        "business_details": dict(BUSINESS_DETAILS),
        "training_details": training_details(
            {**metadata, "validation": evaluation.get("validation", {})}, manifest, links
        ),
        "evaluation_details": [
            {
                "name": "held-out test split",
                "evaluation_observation": headline(evaluation)[:TEXT_CHARS],
                "datasets": [uri for uri in (links.evaluation,) if uri],
                "metadata": {"threshold_meaning": threshold_meaning(evaluation)[:TEXT_CHARS]},
                "metric_groups": groups,
            }
        ],
    }
    card = Card(content, omitted)
    annotate(card, links)
    return card


def annotate(card: Card, links: EvidenceLinks) -> None:
    """``additional_information``: links, limitations and what the card leaves out."""
    details = {
        "html_model_card": links.html_card or "not attached",
        "evaluation_report": links.evaluation,
        "bias_report": links.bias or "not attached",
        "explainability_report": links.explainability or "not attached",
        "evidence_omitted": "; ".join(card.omitted) if card.omitted else "none",
    }
    caveats = LIMITATIONS
    if card.omitted:
        caveats += " Evidence not attached to this version: " + "; ".join(card.omitted) + "."
    card.content["additional_information"] = {
        "ethical_considerations": ETHICAL_CONSIDERATIONS,
        "caveats_and_recommendations": caveats[:TEXT_CHARS],
        "custom_details": {key: value[:NOTE_CHARS] for key, value in details.items()},
    }


def shrink_to_fit(card: Card, links: EvidenceLinks, max_chars: int, size: Any) -> None:
    """Drop the per-subgroup metric groups (they stay in the bias report) until it fits.

    ``size`` measures the serialised content. Raises :class:`EvidenceError` when even the card
    without them is over ``max_chars``.
    """
    if size(card.content) <= max_chars:
        return
    evaluation_details = card.content["evaluation_details"][0]
    kept = [g for g in evaluation_details["metric_groups"] if not g["name"].startswith("subgroup:")]
    if len(kept) < len(evaluation_details["metric_groups"]):
        evaluation_details["metric_groups"] = kept
        where = links.bias or "the evaluation report"
        card.omitted.append(f"subgroup metric groups (over the card size limit; see {where})")
        annotate(card, links)
    if size(card.content) > max_chars:
        raise EvidenceError(
            f"the model card is over SageMaker's {max_chars}-character limit even without "
            "its subgroup metric groups: not registered"
        )


def sample_record(baseline: Mapping[str, Any]) -> dict[str, Any]:
    """A synthetic, de-identified request record: each field's typical training value.

    Numeric fields take the middle cut point of their training quantiles, categoricals their
    most frequent named category, code lists are empty; no patient's record is copied.
    """
    features = baseline.get("features", {})
    record: dict[str, Any] = {ENCOUNTER_KEY: SAMPLE_ENCOUNTER_KEY}
    for spec in model_input_fields():
        summary = features.get(spec.name, {})
        if spec.kind == FieldKind.NUMERIC:
            edges = summary.get("edges") or [0]
            record[spec.name] = edges[len(edges) // 2]
        elif spec.kind == FieldKind.CATEGORICAL:
            named = list(
                zip(summary.get("buckets", [])[:-2], summary.get("counts", []), strict=False)
            )
            if named:
                record[spec.name] = max(named, key=lambda pair: pair[1])[0]
            elif not spec.nullable and spec.categories:
                record[spec.name] = spec.categories[0]
        elif spec.kind == FieldKind.CODE_SEQUENCE:
            record[spec.name] = []
    return record


def sample_payload(baseline: Mapping[str, Any]) -> dict[str, Any]:
    """The body of one ``/predict`` request holding :func:`sample_record`."""
    return {INSTANCES_KEY: [sample_record(baseline)]}
