"""A Powertools Tracer that costs nothing when tracing is off.

Powertools builds its X-Ray provider even for a disabled Tracer, and importing the X-Ray SDK
creates a botocore client for sampling rules: about half of this function's cold import. When
Powertools would disable tracing anyway (``POWERTOOLS_TRACE_DISABLED``, or outside Lambda),
the Tracer gets a no-op provider instead; with active tracing in Lambda nothing changes.

When Powertools turns tracing off is its documented rule, read here from the environment
rather than from its private ``Tracer._is_tracer_disabled``: ``POWERTOOLS_TRACE_DISABLED``
true, or not running in Lambda (no ``LAMBDA_TASK_ROOT``, which Lambda sets in every
function), or in the SAM CLI or Chalice emulators
(https://docs.powertools.aws.dev/lambda/python/latest/core/tracer/,
https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
tests/lambdas/test_powertools_contract.py checks that the pinned Powertools decides the same.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

#: Powertools' switch for tracing (its Tracer documentation, "Environment variables").
TRACE_DISABLED_ENV = "POWERTOOLS_TRACE_DISABLED"
#: Set by Lambda in every function: the path to the function's code (reserved variable).
LAMBDA_TASK_ROOT_ENV = "LAMBDA_TASK_ROOT"
#: Set by the local emulators, where no X-Ray daemon listens: SAM CLI and Chalice.
LOCAL_EMULATOR_ENVS = ("AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE")
#: How Powertools reads a boolean variable (``strtobool``); any other value is an error.
TRUE_VALUES = ("1", "y", "yes", "t", "true", "on")
FALSE_VALUES = ("0", "n", "no", "f", "false", "off")


def tracing_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether Powertools would turn a Tracer off in this environment.

    Raises ``ValueError`` on a ``POWERTOOLS_TRACE_DISABLED`` that is not a boolean, as
    Powertools does.
    """
    env = os.environ if environ is None else environ
    switch = env.get(TRACE_DISABLED_ENV, "false").lower()
    if switch not in TRUE_VALUES + FALSE_VALUES:
        raise ValueError(f"{TRACE_DISABLED_ENV} must be a boolean")
    if switch in TRUE_VALUES:
        return True
    in_lambda = bool(env.get(LAMBDA_TASK_ROOT_ENV))
    return not in_lambda or any(env.get(name) for name in LOCAL_EMULATOR_ENVS)


class NoopSegment(BaseSegment):
    """A segment that records nothing."""

    def close(self, end_time: int | None = None) -> None:
        """Nothing to close."""

    def add_subsegment(self, subsegment: Any) -> None:
        """Nothing to add."""

    def remove_subsegment(self, subsegment: Any) -> None:
        """Nothing to remove."""

    def put_annotation(self, key: str, value: Any) -> None:
        """Dropped."""

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        """Dropped."""

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        """Dropped."""


class NoopProvider(BaseProvider):
    """A tracing provider that records nothing and imports nothing."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment]:
        """Yield a segment that records nothing."""
        yield NoopSegment()

    @asynccontextmanager
    async def in_subsegment_async(
        self, name: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[BaseSegment]:
        """Yield a segment that records nothing."""
        yield NoopSegment()

    def put_annotation(self, key: str, value: Any) -> None:
        """Dropped."""

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        """Dropped."""

    def patch(self, modules: Sequence[str]) -> None:
        """Nothing to patch."""

    def patch_all(self) -> None:
        """Nothing to patch."""


def make_tracer(service: str) -> Tracer:
    """Return the module's Tracer: X-Ray when tracing is on, the no-op provider otherwise.

    No auto-patching: X-Ray's botocore patch stores AWS error messages in traces, and a model
    container's error message may carry text from the request.
    """
    if tracing_disabled():
        # disabled=False: a disabled Tracer would import the X-Ray SDK just to switch it off.
        return Tracer(service=service, disabled=False, auto_patch=False, provider=NoopProvider())
    return Tracer(service=service, auto_patch=False)
