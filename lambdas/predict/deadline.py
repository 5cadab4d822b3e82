"""One wall-clock deadline per request, and a way to run blocking work within it.

botocore's ``read_timeout`` bounds each socket read, not a call: an endpoint that trickles a
byte at a time (or retries that each time out) can hold a request far longer. So the work runs
in a daemon thread and the request waits for it only until its deadline; then it answers 503,
and the work is told to stop (a registered cancel action, e.g. shutting down the socket of the
response being read, ends a read in progress at once).

The deadline is ``min(configured, Lambda's remaining time - margin)``: the function must answer
before Lambda stops it, or API Gateway turns the timeout into a bare 502/504.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from lambdas.predict.errors import DeadlineExceededError

T = TypeVar("T")

#: Time kept back from the Lambda's remaining time to build the answer and flush metrics.
DEFAULT_MARGIN_S = 0.5


class Deadline:
    """An instant on the monotonic clock by which a request must be answered."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expires_at = clock() + seconds

    @classmethod
    def for_request(
        cls,
        configured_s: float,
        remaining_ms: int | None,
        margin_s: float = DEFAULT_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> Deadline:
        """The request's deadline: the configured budget, cut to what Lambda has left."""
        budget = configured_s
        if remaining_ms is not None:
            budget = min(budget, remaining_ms / 1000.0 - margin_s)
        return cls(budget, clock)

    def remaining(self) -> float:
        """Seconds left; zero or less once the deadline has passed."""
        return self._expires_at - self._clock()

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.remaining() <= 0


class Cancellation:
    """Tells work that its caller has given up, and runs the work's cancel actions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._actions: list[Callable[[], object]] = []

    @property
    def cancelled(self) -> bool:
        """Whether the caller has given up."""
        return self._cancelled

    def on_cancel(self, action: Callable[[], object]) -> None:
        """Run ``action`` when cancelled (at once if that has already happened)."""
        with self._lock:
            if not self._cancelled:
                self._actions.append(action)
                return
        _quietly(action)

    def cancel(self) -> None:
        """Mark as cancelled and run every registered action once, on a thread of their own.

        The caller never waits for them: closing a stream that another thread is reading can
        block until that read returns, which is what the caller is giving up on.
        """
        with self._lock:
            self._cancelled = True
            actions, self._actions = self._actions, []
        if actions:
            threading.Thread(
                target=_run_all, args=(actions,), name="deadline-cancel", daemon=True
            ).start()


def run_within(deadline: Deadline, work: Callable[[Cancellation], T], name: str = "work") -> T:
    """Run ``work`` and return its result, or raise ``DeadlineExceededError`` at the deadline.

    The work's own exceptions are re-raised here. Work still running at the deadline is
    cancelled and left to finish on its daemon thread; its result is discarded.
    """
    if deadline.expired():
        raise DeadlineExceededError(f"{name}: no time left")
    cancellation = Cancellation()
    results: list[T] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def target() -> None:
        try:
            results.append(work(cancellation))
        except BaseException as error:  # handed to the caller, who re-raises it
            errors.append(error)
        finally:
            done.set()

    threading.Thread(target=target, name=f"deadline-{name}", daemon=True).start()
    if not done.wait(max(deadline.remaining(), 0.0)):
        cancellation.cancel()
        raise DeadlineExceededError(f"{name}: deadline passed")
    if errors:
        raise errors[0]
    return results[0]


def _run_all(actions: list[Callable[[], object]]) -> None:
    for action in actions:
        _quietly(action)


def _quietly(action: Callable[[], object]) -> None:
    """Run a cancel action; it only releases resources, so its failure changes nothing."""
    with contextlib.suppress(Exception):  # closing a broken stream may raise anything
        action()
