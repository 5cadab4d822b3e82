"""Lambda entrypoint of the registrar (invoked synchronously by the training state machine)."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.registrar import registration
from lambdas.registrar.settings import RegistrarSettings

logger = Logger(service="registrar")
tracer = Tracer(service="registrar")

EVALUATE = "evaluate"
REGISTER = "register"


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """``action`` ``evaluate`` gates a trained model; ``register`` registers a gated one."""
    settings = RegistrarSettings.from_env()
    action = event.get("action")
    if action == EVALUATE:
        result = registration.evaluate(
            boto3.client("s3"),
            settings,
            model_data_url=str(event.get("model_data_url", "")),
            training_job_name=str(event.get("training_job_name", "")),
        )
        logger.info(
            "Quality gate",
            extra={
                **{k: result[k] for k in ("passed", "test_auroc", "baseline_auroc", "reasons")},
                "evidence_omitted": result.get("evidence", {}).get("omitted", []),
            },
        )
        return result
    if action == REGISTER:
        evaluation = event.get("evaluation")
        if not isinstance(evaluation, dict):
            raise registration.RegistrationError("evaluation must be the evaluate step's output")
        region = os.environ.get("AWS_REGION", "")
        result = registration.register(
            boto3.client("sagemaker"), boto3.client("s3"), settings, evaluation, region
        )
        # "created" is a LogRecord attribute: log the outcome under other names.
        logger.info(
            "Model package registered",
            extra={
                "model_package_arn": result["model_package_arn"],
                "newly_registered": result["created"],
            },
        )
        return result
    raise registration.RegistrationError(f"action must be {EVALUATE!r} or {REGISTER!r}")
