"""Lambda entrypoint of the deployer (EventBridge: SageMaker Model Package State Change)."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.deployer import deployment
from lambdas.deployer.events import ModelPackageStateChangeEvent
from lambdas.deployer.settings import DeployerSettings

METRIC_NAMESPACE = "ReadmissionPlatform/Deployments"

logger = Logger(service="deployer")
tracer = Tracer(service="deployer")
metrics = Metrics(namespace=METRIC_NAMESPACE, service="deployer")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ModelPackageStateChangeEvent)
def lambda_handler(event: ModelPackageStateChangeEvent, context: LambdaContext) -> dict[str, Any]:
    """Reconcile the endpoint with the registry after one approval status change."""
    metrics.add_metric(name="StateChangeEvents", unit=MetricUnit.Count, value=1)
    settings = DeployerSettings.from_env()
    clients = deployment.Clients(
        sagemaker=boto3.client("sagemaker"), s3=boto3.client("s3"), sns=boto3.client("sns")
    )
    logger.info(
        "Model package state change",
        extra={
            "approval_status": event.detail.model_approval_status,
            "model_package_version": event.detail.model_package_version,
        },
    )
    try:
        outcome = deployment.handle_state_change(event.detail, settings, clients)
    except deployment.DeploymentError as error:
        metrics.add_metric(name="DeploymentFailures", unit=MetricUnit.Count, value=1)
        logger.error("Deployment failed", extra={"error_type": type(error).__name__})
        raise
    if outcome.action in (deployment.DEPLOYING, deployment.ROLLING_BACK):
        metrics.add_metric(name="DeploymentsStarted", unit=MetricUnit.Count, value=1)
    logger.info("Deployment outcome", extra=outcome.as_dict())
    return outcome.as_dict()
