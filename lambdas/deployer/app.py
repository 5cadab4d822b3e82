"""Lambda entrypoint of the deployer: triggers from its FIFO queue, one reconciliation each.

EventBridge puts every model package state change of the served group, every state change of the
endpoint and a periodic sweep on one SQS FIFO queue, in one message group, so reconciliations run
one at a time and in order. A trigger whose reconciliation left the endpoint changing is made
visible again after ``RETRY_SECONDS`` and reported as a batch item failure, so the queue keeps it
until the endpoint settles: an approval that arrives during an update is deployed once the update
ends. A message that is not an event the deployer understands is dropped and counted.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from contracts.deployment import METRIC_NAMESPACE
from lambdas.deployer import deployment
from lambdas.deployer.events import TriggerError, parse_trigger
from lambdas.deployer.settings import DeployerSettings

logger = Logger(service="deployer")
tracer = Tracer(service="deployer")
metrics = Metrics(namespace=METRIC_NAMESPACE, service="deployer")


class WaitingFifoProcessor(SqsFifoPartialProcessor):
    """FIFO partial batches whose failed records are a normal outcome (a trigger that waits for
    the endpoint), not an error: a batch of only waiting triggers returns its item failures
    instead of raising, so the function's error metric and alarm mean real errors."""

    def __init__(self) -> None:
        super().__init__()
        self.raise_on_entire_batch_failure = False


processor = WaitingFifoProcessor()


class ReconcileLaterError(RuntimeError):
    """The endpoint is still changing: keep the trigger and look again later."""


def clients() -> deployment.Clients:
    return deployment.Clients(
        sagemaker=boto3.client("sagemaker"),
        s3=boto3.client("s3"),
        sns=boto3.client("sns"),
        cloudwatch=boto3.client("cloudwatch"),
        autoscaling=boto3.client("application-autoscaling"),
    )


def queue_client() -> Any:
    return boto3.client("sqs")


def handle_trigger(
    record: SQSRecord, settings: DeployerSettings, aws: deployment.Clients, sqs: Any
) -> deployment.Outcome | None:
    """Reconcile once for one queue message; raise :class:`ReconcileLaterError` if not settled."""
    metrics.add_metric(name="Triggers", unit=MetricUnit.Count, value=1)
    try:
        trigger = parse_trigger(record.body)
    except TriggerError:
        metrics.add_metric(name="UnreadableTriggers", unit=MetricUnit.Count, value=1)
        logger.warning("Queue message dropped: not an event the deployer acts on")
        return None
    if not trigger.concerns(settings.model_package_group_name, settings.endpoint_name):
        return None
    logger.info(
        "Reconciling",
        extra={
            "trigger": trigger.kind,
            "approval_status": trigger.approval_status,
            "model_package_version": trigger.model_package_version,
            "endpoint_status": trigger.endpoint_status,
        },
    )
    outcome = deployment.reconcile(settings, aws, trigger)
    logger.info("Reconciliation outcome", extra=outcome.as_dict())
    if outcome.action in (
        deployment.CREATING,
        deployment.DEPLOYING,
        deployment.ROLLING_BACK,
        deployment.STARTING_SHADOW,
        deployment.PROMOTING,
    ):
        metrics.add_metric(name="DeploymentsStarted", unit=MetricUnit.Count, value=1)
    if outcome.action == deployment.DEPLOYMENT_FAILED:
        metrics.add_metric(name="DeploymentFailures", unit=MetricUnit.Count, value=1)
    if not outcome.settled:
        sqs.change_message_visibility(
            QueueUrl=settings.queue_url,
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=settings.retry_seconds,
        )
        raise ReconcileLaterError(outcome.action)
    return outcome


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process one batch of triggers in order; unsettled ones go back to the queue."""
    settings = DeployerSettings.from_env()
    aws = clients()
    sqs = queue_client()
    return dict(
        process_partial_response(
            event=event,
            record_handler=lambda record: handle_trigger(record, settings, aws, sqs),
            processor=processor,
            context=context,
        )
    )
