"""Step 3's last part: what the approver will see in SageMaker Studio for the new version.

The registrar attached a SageMaker model card to the version; moto keeps no card, so this reads
the copy the registrar stored beside the evaluation report (the same content it sent), saves it
in the run folder and prints its headline, metric groups and subgroup gaps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import boto3

from contracts.etl_manifest import MANIFEST_FILE
from lambdas.registrar import registration
from lambdas.registrar import settings as registrar_env
from stacks.lineage import source_lineage

CARD_FILE = "model_card.json"
#: Metrics printed per metric group (the card holds them all).
METRICS_SHOWN = 4
#: The demo trains under torchrun on this machine, with no training image.
LOCAL_TRAINING_IMAGE_TAG = "local-torchrun"


def lineage_environment(curated_bucket: str) -> dict[str, str]:
    """The registrar's lineage settings in the demo: the curated manifest and this checkout."""
    lineage = source_lineage(os.environ)
    return {
        registrar_env.MANIFEST_S3_URI_ENV: f"s3://{curated_bucket}/{MANIFEST_FILE}",
        registrar_env.TRAINING_IMAGE_TAG_ENV: LOCAL_TRAINING_IMAGE_TAG,
        registrar_env.SOURCE_REPOSITORY_ENV: lineage.repository,
        registrar_env.SOURCE_COMMIT_ENV: lineage.commit,
    }


def _shown(metric: Mapping[str, Any]) -> str:
    value = metric["value"]
    text = (
        f"{metric['name']} {value:.3f}"
        if isinstance(value, float)
        else f"{metric['name']}: {value}"
    )
    notes = str(metric.get("notes", ""))
    return f"{text} ({notes})" if notes.startswith("95% CI") else text


def metric_group_lines(card: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(group name, its first metrics)`` for each metric group of the card."""
    lines = []
    for details in card.get("evaluation_details", []):
        for group in details.get("metric_groups", []):
            metrics = group["metric_data"]
            shown = "; ".join(_shown(m) for m in metrics[:METRICS_SHOWN])
            more = (
                f" (+{len(metrics) - METRICS_SHOWN} more)" if len(metrics) > METRICS_SHOWN else ""
            )
            lines.append((group["name"], shown + more))
    return lines


def show(run: Any, gate: Mapping[str, Any]) -> dict[str, Any]:
    """Print the approver's view of the registered version; keep its card in the run folder."""
    found = gate["evidence"]
    bucket, key = registration.split_s3_uri(str(found["model_card_s3_uri"]))
    card = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    path = run.run_dir / CARD_FILE
    path.write_text(json.dumps(card, indent=1, sort_keys=True))
    progress = run.progress
    progress.fact("approver sees", found["headline"])
    for name, shown in metric_group_lines(card):
        progress.fact(f"  {name}", shown)
    for gap in found["gaps"]:
        progress.fact("  subgroup gap", gap)
    omitted = found["omitted"]
    progress.fact("  evidence not attached", "; ".join(omitted) if omitted else "none")
    progress.fact("  model card", str(path))
    return {
        "model_card": str(path),
        "headline": found["headline"],
        "metric_groups": [name for name, _ in metric_group_lines(card)],
        "gaps": list(found["gaps"]),
        "evidence_omitted": list(omitted),
    }
