"""One deadline per request: a trickling, hanging or slow endpoint, or a Lambda with little time
left, gets the caller a 503 with Retry-After in time, never a request held for as long as the
endpoint cares to take. The units (Deadline, run_within, Cancellation) are tested alone first.
"""

from __future__ import annotations

import threading
import time

import pytest

from lambdas.predict.deadline import Cancellation, Deadline, run_within
from lambdas.predict.errors import DeadlineExceededError
from tests.lambdas.fake_endpoint import TRICKLE_INTERVAL_S, Mode
from tests.lambdas.predict_fixtures import (
    GATEWAY_REQUEST_ID,
    LambdaContextStub,
    predict_api,
    valid_record,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

#: Upper bound on a cut-off request's wall time: far below the 30 s read timeout the endpoint
#: would otherwise hold it for, with room for a loaded CI machine (2.5 s failed under load).
CUT_OFF_BOUND_S = 10.0
DEADLINE_ERROR = {"error": "deadline_exceeded", "request_id": GATEWAY_REQUEST_ID}


# --- units ---------------------------------------------------------------------------------------


def test_deadline_is_the_budget_cut_to_the_lambdas_remaining_time() -> None:
    now = [100.0]

    def clock() -> float:
        return now[0]

    assert Deadline.for_request(8.0, 30_000, 0.5, clock).remaining() == 8.0
    assert Deadline.for_request(8.0, 3_000, 0.5, clock).remaining() == 2.5
    assert Deadline.for_request(8.0, None, 0.5, clock).remaining() == 8.0
    short = Deadline.for_request(8.0, 400, 0.5, clock)
    assert short.expired()
    deadline = Deadline(2.0, clock)
    now[0] = 101.5
    assert (deadline.remaining(), deadline.expired()) == (0.5, False)
    now[0] = 102.0
    assert deadline.expired()


def test_run_within_returns_the_result_and_reraises_the_works_error() -> None:
    assert run_within(Deadline(5), lambda _: 42) == 42
    with pytest.raises(KeyError, match="inner"):
        run_within(Deadline(5), lambda _: {}["inner"])


def test_run_within_gives_up_at_the_deadline_and_cancels_the_work() -> None:
    released = threading.Event()
    cancelled = threading.Event()

    def stuck(cancellation: Cancellation) -> None:
        cancellation.on_cancel(cancelled.set)
        released.wait(10)

    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        run_within(Deadline(0.3), stuck)
    assert time.monotonic() - started < 1.0
    assert cancelled.wait(2)
    released.set()


def test_an_expired_deadline_runs_nothing() -> None:
    ran = []
    with pytest.raises(DeadlineExceededError):
        run_within(Deadline(-1), lambda _: ran.append(1))
    assert ran == []


def test_a_cancel_action_that_blocks_never_holds_the_caller() -> None:
    # Closing a stream another thread is reading can block until that read returns.
    released = threading.Event()

    def work(cancellation: Cancellation) -> None:
        cancellation.on_cancel(lambda: released.wait(10))
        released.wait(10)

    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        run_within(Deadline(0.2), work)
    assert time.monotonic() - started < 1.0
    released.set()


def test_an_action_registered_after_cancelling_runs_at_once() -> None:
    cancellation = Cancellation()
    cancellation.cancel()
    ran: list[int] = []
    cancellation.on_cancel(lambda: ran.append(1))
    assert cancellation.cancelled
    assert ran == [1]


# --- through the handler -------------------------------------------------------------------------


def test_a_trickling_endpoint_is_cut_off_at_the_deadline() -> None:
    """The endpoint sends a byte every 50 ms, each well inside the 5 s read timeout: without a
    per-request deadline the request lasts as long as the trickle (~15 s here)."""
    with predict_api(env={"REQUEST_DEADLINE_S": "1", "ENDPOINT_READ_TIMEOUT_S": "5"}) as api:
        api.fake.mode = Mode.TRICKLE
        started = time.monotonic()
        result = api.predict(valid_record())
        elapsed = time.monotonic() - started
        assert (result.status, result.body) == (503, DEADLINE_ERROR)
        assert result.headers["retry-after"] == "5"
        assert 0.9 < elapsed < CUT_OFF_BOUND_S
        # The read in progress is aborted, not left trickling on a background thread.
        for _ in range(40):
            if api.fake.abandoned:
                break
            time.sleep(TRICKLE_INTERVAL_S)
        assert api.fake.abandoned == 1


def test_a_hanging_endpoint_is_cut_off_at_the_deadline() -> None:
    with predict_api(env={"REQUEST_DEADLINE_S": "1", "ENDPOINT_READ_TIMEOUT_S": "30"}) as api:
        api.fake.mode = Mode.HANG
        started = time.monotonic()
        result = api.predict(valid_record())
        assert time.monotonic() - started < CUT_OFF_BOUND_S
    assert (result.status, result.body) == (503, DEADLINE_ERROR)
    assert "retry-after" in result.headers


def test_the_deadline_follows_the_lambdas_remaining_time() -> None:
    with predict_api(env={"REQUEST_DEADLINE_S": "30", "ENDPOINT_READ_TIMEOUT_S": "30"}) as api:
        api.fake.mode = Mode.HANG
        api.context = LambdaContextStub(remaining_ms=1_500)  # 1.5 s left, 0.5 s kept back
        started = time.monotonic()
        result = api.predict(valid_record())
        elapsed = time.monotonic() - started
    assert (result.status, result.body) == (503, DEADLINE_ERROR)
    assert 0.8 < elapsed < CUT_OFF_BOUND_S


def test_a_lambda_with_no_time_left_answers_at_once_without_calling_the_endpoint() -> None:
    with predict_api() as api:
        api.context = LambdaContextStub(remaining_ms=300)
        started = time.monotonic()
        result = api.predict(valid_record())
        assert time.monotonic() - started < 1.0
        assert api.fake.invocations == 0
    assert (result.status, result.body) == (503, DEADLINE_ERROR)


def test_retries_stay_inside_the_deadline() -> None:
    # Each attempt times out on its own read timeout; three of them would take 4.5 s.
    env = {
        "REQUEST_DEADLINE_S": "1",
        "ENDPOINT_READ_TIMEOUT_S": "1.5",
        "ENDPOINT_MAX_ATTEMPTS": "3",
    }
    with predict_api(env=env) as api:
        api.fake.mode = Mode.HANG
        started = time.monotonic()
        result = api.predict(valid_record())
        assert time.monotonic() - started < CUT_OFF_BOUND_S
    assert result.status == 503


def test_a_fast_endpoint_is_unaffected_by_the_deadline() -> None:
    with predict_api(env={"REQUEST_DEADLINE_S": "3"}) as api:
        assert [api.predict(valid_record()).status for _ in range(5)] == [200] * 5
