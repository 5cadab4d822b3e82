"""The fixed log format the SageMaker job's metric definitions parse (standard library only).

Every metric the job reports is printed as ``<split>:<name>=<value>`` on its own line, e.g.
``validation:auroc=0.712``; ``METRIC_DEFINITIONS`` holds one regex per metric for the CDK
training-job construct and the launcher. Kept apart from ``training.metrics`` (numpy) so
that ``training.job_spec``, and with it every ``cdk synth``, imports no third-party package.
"""

from __future__ import annotations

#: (split, metric) pairs the training job prints; each gets one metric definition.
REPORTED_METRICS: tuple[tuple[str, str], ...] = (
    ("train", "loss"),
    ("train", "auxiliary_loss"),
    ("validation", "loss"),
    ("validation", "auroc"),
    ("validation", "auprc"),
    ("test", "auroc"),
    ("test", "auprc"),
    ("test", "brier"),
    ("test", "ece"),
    ("test", "f1"),
    ("test", "recall"),
    ("test", "precision"),
    ("test", "alert_rate"),
    ("test", "alert_budget_ppv"),
    ("test", "alert_budget_sensitivity"),
    ("baseline", "auroc"),
)

_NUMBER_REGEX = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def metric_name(split: str, name: str) -> str:
    """The metric's name as SageMaker shows it: ``<split>:<name>``."""
    return f"{split}:{name}"


#: SageMaker metric definitions: ``[{"Name": "validation:auroc", "Regex": ...}, ...]``.
METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": metric_name(split, name), "Regex": rf"^{split}:{name}={_NUMBER_REGEX}$"}
    for split, name in REPORTED_METRICS
]


def format_metric(split: str, name: str, value: float) -> str:
    """Return the log line of one metric, in the format ``METRIC_DEFINITIONS`` parses."""
    return f"{metric_name(split, name)}={value:.6f}"
