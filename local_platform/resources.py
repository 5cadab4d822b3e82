"""The stacks' resources in the local control plane, and the Lambdas' environments.

``provision`` creates in moto what the Data, Registry and Monitoring stacks create in AWS and
the demo needs: the data lake buckets, the data key, the alert topic and the model package
group. The ``*_environment`` functions give each Lambda the variables its stack sets.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import boto3

from lambdas.deployer import settings as deployer_env
from lambdas.drift_monitor import settings as monitor_env
from lambdas.predict import settings as predict_env
from lambdas.registrar import settings as registrar_env
from local_platform import approver_view
from local_platform.deployment_queue import LOCAL_RETRY_SECONDS, create_queue
from local_platform.lambda_runtime import LOCAL_REGION, LocalLambdaContext
from local_platform.settings import (
    CAPTURE_PREFIX,
    LOCAL_INFERENCE_IMAGE,
    BucketNames,
    DemoConfig,
)

#: Services of the Lambdas' Powertools loggers (lambdas/*/app.py): their lines go to the log.
HANDLER_LOGGERS = ("registrar", "deployer", "prediction-api", "drift-monitor")

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class Resources:
    """What ``provision`` created, by name and ARN."""

    buckets: BucketNames
    kms_key_arn: str
    alert_topic_arn: str
    model_package_group: str
    execution_role_arn: str
    deployment_queue_url: str


def provision(config: DemoConfig) -> Resources:
    """Create the buckets, data key, alert topic and model package group in the control plane."""
    names = config.names
    buckets = BucketNames.for_prefix(config.stage.prefix)
    s3 = boto3.client("s3")
    for bucket in buckets.all():
        s3.create_bucket(Bucket=bucket)
    key = boto3.client("kms").create_key(Description=f"{config.stage.prefix}: data key")
    topic = boto3.client("sns").create_topic(Name=names.alert_topic)["TopicArn"]
    iam = boto3.client("iam")
    role = iam.create_role(
        RoleName=f"{config.stage.prefix}-sagemaker-execution",
        AssumeRolePolicyDocument=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            '"Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
        ),
    )["Role"]["Arn"]
    boto3.client("sagemaker").create_model_package_group(
        ModelPackageGroupName=names.model_package_group,
        ModelPackageGroupDescription="30-day readmission risk models",
    )
    queue_url = create_queue(boto3.client("sqs"), names.deployment_queue.removesuffix(".fifo"))
    return Resources(
        buckets=buckets,
        kms_key_arn=key["KeyMetadata"]["Arn"],
        alert_topic_arn=topic,
        model_package_group=names.model_package_group,
        execution_role_arn=role,
        deployment_queue_url=queue_url,
    )


def upload_folder(s3: Any, folder: Path, bucket: str, prefix: str) -> int:
    """Put every file under ``folder`` at ``prefix/<relative path>``; returns the file count."""
    count = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            key = f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}".lstrip("/")
            s3.upload_file(str(path), bucket, key)
            count += 1
    return count


def registrar_environment(config: DemoConfig, resources: Resources) -> dict[str, str]:
    return registrar_env.ENVIRONMENT.environment(
        {
            registrar_env.MODEL_PACKAGE_GROUP_NAME_ENV: resources.model_package_group,
            registrar_env.INFERENCE_IMAGE_URI_ENV: LOCAL_INFERENCE_IMAGE,
            registrar_env.ENDPOINT_INSTANCE_TYPE_ENV: config.stage.endpoint.instance_type,
            registrar_env.MIN_TEST_AUROC_ENV: str(config.stage.training.min_test_auroc),
            registrar_env.KMS_KEY_ARN_ENV: resources.kms_key_arn,
            **approver_view.lineage_environment(resources.buckets.curated),
        }
    )


def deployer_environment(config: DemoConfig, resources: Resources) -> dict[str, str]:
    """The stack's deployer settings that apply locally (no VPC, shadow or autoscaling)."""
    names = config.names
    endpoint = config.stage.endpoint
    rollback_alarms = (names.rollback_latency_alarm, names.rollback_5xx_alarm)
    return deployer_env.ENVIRONMENT.subset(
        {
            deployer_env.ENDPOINT_NAME_ENV: names.endpoint,
            deployer_env.EXECUTION_ROLE_ARN_ENV: resources.execution_role_arn,
            deployer_env.INSTANCE_TYPE_ENV: endpoint.instance_type,
            deployer_env.INSTANCE_COUNT_ENV: str(endpoint.instance_count),
            deployer_env.DATA_CAPTURE_S3_URI_ENV: (
                f"s3://{resources.buckets.capture}/{CAPTURE_PREFIX}"
            ),
            deployer_env.KMS_KEY_ARN_ENV: resources.kms_key_arn,
            deployer_env.CAPTURE_SAMPLING_PERCENT_ENV: str(endpoint.data_capture_sampling_percent),
            deployer_env.ROLLBACK_ALARM_NAMES_ENV: ",".join(rollback_alarms),
            deployer_env.REJECTION_ALARM_NAME_ENV: names.rejected_rollout_alarm,
            deployer_env.SNS_TOPIC_ARN_ENV: resources.alert_topic_arn,
            deployer_env.MODEL_PACKAGE_GROUP_NAME_ENV: resources.model_package_group,
            deployer_env.QUEUE_URL_ENV: resources.deployment_queue_url,
            deployer_env.RETRY_SECONDS_ENV: str(LOCAL_RETRY_SECONDS),
        }
    )


def predict_environment(config: DemoConfig, deid_key: str) -> dict[str, str]:
    """``DEID_KEY`` stands in for the Secrets Manager secret the deployed function reads."""
    return predict_env.ENVIRONMENT.subset(
        {predict_env.ENDPOINT_NAME_ENV: config.names.endpoint, predict_env.DEID_KEY_ENV: deid_key}
    )


def drift_environment(config: DemoConfig, resources: Resources) -> dict[str, str]:
    return monitor_env.ENVIRONMENT.subset(
        {
            monitor_env.ENDPOINT_NAME_ENV: config.names.endpoint,
            monitor_env.CAPTURE_BUCKET_ENV: resources.buckets.capture,
            monitor_env.CAPTURE_PREFIX_ENV: CAPTURE_PREFIX,
            # One window of a whole day: the replayed day is analysed in a single run.
            monitor_env.WINDOW_MINUTES_ENV: "1440",
            monitor_env.PSI_THRESHOLD_ENV: str(config.stage.alarms.feature_psi),
        }
    )


def lambda_base_environment() -> dict[str, str]:
    """What the Lambda service sets that Powertools reads; tracing is off without X-Ray."""
    return {
        "AWS_REGION": LOCAL_REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "ReadmissionPlatform",
    }


@contextlib.contextmanager
def handler_output_to(stream: IO[str]) -> Iterator[None]:
    """Send the handlers' JSON log lines and EMF metrics to ``stream`` (the run's log).

    Powertools binds each logger's handler to ``sys.stdout`` when the module is imported and
    prints metrics to ``sys.stdout``: both are redirected for the duration.
    """
    saved: list[tuple[logging.StreamHandler[Any], Any]] = []
    for name in HANDLER_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                saved.append((handler, handler.setStream(stream)))
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        for handler, old in saved:
            if old is not None:
                handler.setStream(old)


def invoke(handler: Handler, event: Mapping[str, Any], function_name: str) -> Any:
    """Call a Lambda handler as the Lambda service does: the event and a fresh context."""
    return handler(dict(event), LocalLambdaContext(function_name=function_name))
