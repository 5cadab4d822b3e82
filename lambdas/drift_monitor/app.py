"""Lambda entrypoint of the drift monitor (scheduled hourly by EventBridge)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from contracts.fairness import FAIRNESS_CHECK_EVENT
from lambdas.drift_monitor import monitor
from lambdas.drift_monitor.settings import MonitorSettings

#: Time kept back from the invocation's budget to publish metrics after reading stops.
PUBLISH_RESERVE_S = 60.0

logger = Logger(service="drift-monitor")
tracer = Tracer(service="drift-monitor")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Analyse the latest complete capture window and publish drift metrics; the daily
    event ``{"check": "fairness"}`` compares subgroups instead."""
    settings = MonitorSettings.from_env()
    remaining_s = context.get_remaining_time_in_millis() / 1000
    run = {
        "s3": boto3.client("s3"),
        "cloudwatch": boto3.client("cloudwatch"),
        "now": datetime.now(UTC),
        "deadline": time.monotonic() + remaining_s - PUBLISH_RESERVE_S,
    }
    if all(event.get(key) == value for key, value in FAIRNESS_CHECK_EVENT.items()):
        return _fairness(monitor.check_fairness(event, settings, **run))
    return _drift(monitor.check(event, settings, **run))


def _drift(report: monitor.DriftReport) -> dict[str, Any]:
    summary = report.summary()
    if report.capture.truncated:
        logger.warning("Window only partly read before the time limit", extra=summary)
    if report.empty:
        logger.warning("No usable capture records in the window", extra=summary)
    elif report.drifted_features:
        logger.warning("Drift above the threshold", extra=summary)
    else:
        logger.info("Drift check complete", extra=summary)
    return summary


def _fairness(report: monitor.FairnessReport) -> dict[str, Any]:
    summary = report.summary()
    if report.capture.truncated:
        logger.warning("Fairness window only partly read before the time limit", extra=summary)
    if report.result.exceeded:
        logger.warning("Fairness gap above its bound", extra=summary)
    else:
        logger.info("Fairness check complete", extra=summary)
    return summary
