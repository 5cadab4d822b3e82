"""The deployer's FIFO queue, locally: EventBridge's delivery and Lambda's SQS polling.

In AWS, EventBridge puts the approval event on the deployer's FIFO queue and Lambda's event
source mapping hands each message to the deployer; a trigger the deployer reports as a batch item
failure stays on the queue and comes back once its visibility timeout (set by the deployer to
``RETRY_SECONDS``) has passed. This module does the same against the local control plane's queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from local_platform.lambda_runtime import LocalLambdaContext

Handler = Callable[[dict[str, Any], Any], Any]

#: Seconds the deployer waits before it looks at a changing endpoint again, in the demo.
LOCAL_RETRY_SECONDS = 1
#: Deliveries before the demo gives up (the local endpoint settles in one or two).
MAX_DELIVERIES = 10


class DeploymentNotSettledError(RuntimeError):
    """The deployer kept the trigger through every delivery."""


def create_queue(sqs: Any, name: str) -> str:
    """A FIFO queue with content-based deduplication, as the Deployment stack creates it."""
    return str(
        sqs.create_queue(
            QueueName=f"{name}.fifo",
            Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
        )["QueueUrl"]
    )


def _as_lambda_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", "0"),
            "SenderId": attributes.get("SenderId", "events"),
            "ApproximateFirstReceiveTimestamp": attributes.get(
                "ApproximateFirstReceiveTimestamp", "0"
            ),
            "MessageGroupId": attributes.get("MessageGroupId", ""),
            "MessageDeduplicationId": attributes.get("MessageDeduplicationId", ""),
        },
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def deliver_until_settled(
    sqs: Any,
    queue_url: str,
    trigger: Mapping[str, Any],
    group: str,
    handler: Handler,
    function_name: str,
) -> int:
    """Put ``trigger`` on the queue, poll it into ``handler`` until consumed; count deliveries."""
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(trigger), MessageGroupId=group)
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    deliveries = 0
    deadline = time.monotonic() + MAX_DELIVERIES * (LOCAL_RETRY_SECONDS + 1)
    while time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            if deliveries and not _in_flight(sqs, queue_url):
                return deliveries
            time.sleep(LOCAL_RETRY_SECONDS / 4)
            continue
        deliveries += 1
        [message] = messages
        event = {"Records": [_as_lambda_record(message, queue_arn)]}
        result = handler(event, LocalLambdaContext(function_name=function_name))
        if not result.get("batchItemFailures"):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if deliveries >= MAX_DELIVERIES:
            break
    raise DeploymentNotSettledError("the deployer did not settle the endpoint")


def _in_flight(sqs: Any, queue_url: str) -> bool:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return any(int(value) > 0 for value in attributes.values())
