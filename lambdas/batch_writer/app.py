"""Lambda entrypoint of nightly batch scoring's two steps (``event["step"]``: plan or write)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.batch_writer import writer
from lambdas.batch_writer.settings import WriterSettings
from worklist.dynamodb import DynamoDbWorklistStore

STEP_KEY = "step"
STEP_PLAN = "plan"
STEP_WRITE = "write"
REQUEST_KEY = "request"

logger = Logger(service="batch-writer")
tracer = Tracer(service="batch-writer")


class UnknownStepError(ValueError):
    """The event names no step this function runs."""


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Plan the day's transform job, or write its output to the worklist and the lake."""
    settings = WriterSettings.from_env()
    step = event.get(STEP_KEY)
    s3 = boto3.client("s3")
    now = datetime.now(UTC)
    if step == STEP_PLAN:
        # The workflow hands over its whole input as ``request``: the day or the schedule's time.
        result = writer.plan(event.get(REQUEST_KEY) or event, settings, s3, now)
        logger.info("Planned", extra={k: result[k] for k in ("day", "has_records", "job_name")})
        return result
    if step == STEP_WRITE:
        store = DynamoDbWorklistStore(boto3.client("dynamodb"), settings.table_name)
        result = writer.write(event, settings, s3, store, now)
        logger.info("Worklist written", extra=result)
        return result
    raise UnknownStepError(f"{STEP_KEY} must be {STEP_PLAN} or {STEP_WRITE}")
