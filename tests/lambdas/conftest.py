"""Fixtures every Lambda test can use: a Lambda context and a mocked AWS account (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from moto import mock_aws

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda context that Powertools and handlers read."""

    function_name: str = "test-function"
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:test-function"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "2024/05/01/[$LATEST]0000"

    def get_remaining_time_in_millis(self) -> int:
        """A fresh invocation's budget: 15 minutes."""
        return 900_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """A Lambda context object for calling ``lambda_handler`` directly."""
    return FakeLambdaContext()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region, so nothing can reach a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")


@pytest.fixture
def mocked_aws(aws_credentials: None) -> Iterator[None]:
    """An empty moto account for the duration of one test."""
    with mock_aws():
        yield
