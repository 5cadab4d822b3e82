"""A Powertools Tracer that costs nothing when tracing is off.

Powertools builds its X-Ray provider even for a disabled Tracer, and importing the X-Ray SDK
creates a botocore client for sampling rules: about half of this function's cold import. When
Powertools would disable tracing anyway (``POWERTOOLS_TRACE_DISABLED``, or outside Lambda),
the Tracer gets a no-op provider instead; with active tracing in Lambda nothing changes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment


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
    if Tracer._is_tracer_disabled():
        # disabled=False: a disabled Tracer would import the X-Ray SDK just to switch it off.
        return Tracer(service=service, disabled=False, auto_patch=False, provider=NoopProvider())
    return Tracer(service=service, auto_patch=False)
