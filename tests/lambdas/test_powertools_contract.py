"""The two places the functions lean on Powertools beyond its public API, pinned and tested.

- A route middleware hands the validated body to the route as a keyword argument through
  Powertools' ``_route_args`` context key (no public API does it; the route's signature is
  where the OpenAPI request body comes from). If a release moves the key, the route is called
  without its argument and these tests fail.
- Whether tracing is off is read from Powertools' documented environment rule
  (``lambdas/predict/tracing.py``); the private ``Tracer._is_tracer_disabled`` is called here
  only to check that the pinned Powertools still decides the same.
"""

from __future__ import annotations

import itertools
import json
from importlib import metadata
from typing import Any

import pytest
from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from lambdas.predict.tracing import (
    LAMBDA_TASK_ROOT_ENV,
    LOCAL_EMULATOR_ENVS,
    TRACE_DISABLED_ENV,
    tracing_disabled,
)
from lambdas.predict.validation import pass_to_route
from stacks.components.platform_function import POWERTOOLS_PACKAGE, pinned_version


def _event(path: str, resource: str, parameters: dict[str, str] | None) -> dict[str, Any]:
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "POST",
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": parameters,
        "requestContext": {"requestId": "r", "stage": "v1"},
        "body": "{}",
        "isBase64Encoded": False,
    }


def test_the_installed_powertools_is_the_pinned_one() -> None:
    """The layer the stacks deploy is resolved from this pin, so the tests run its code."""
    assert metadata.version(POWERTOOLS_PACKAGE) == pinned_version(POWERTOOLS_PACKAGE)


def test_a_middleware_passes_a_value_to_the_route_beside_its_path_parameters(
    lambda_context: Any,
) -> None:
    app = APIGatewayRestResolver()

    def body_as(argument: str, value: Any) -> Any:
        def middleware(resolver: APIGatewayRestResolver, following: NextMiddleware) -> Any:
            pass_to_route(resolver, argument, value)
            return following(resolver)

        return middleware

    @app.post(
        "/items/<item_id>",
        middlewares=[body_as("first", {"a": 1}), body_as("second", [2])],
    )
    def route(item_id: str, first: dict[str, int], second: list[int]) -> dict[str, Any]:
        return {"item_id": item_id, "first": first, "second": second}

    response = app.resolve(_event("/items/7", "/items/{item_id}", {"item_id": "7"}), lambda_context)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"item_id": "7", "first": {"a": 1}, "second": [2]}
    assert app.context == {}  # cleared after the event: nothing leaks into the next request


SWITCHES = (None, "true", "1", "on", "false", "0", "off", "TRUE")


@pytest.mark.parametrize(
    ("switch", "task_root", "emulator"),
    list(itertools.product(SWITCHES, (None, "/var/task"), (None, *LOCAL_EMULATOR_ENVS))),
)
def test_tracing_is_off_exactly_when_powertools_turns_it_off(
    monkeypatch: pytest.MonkeyPatch, switch: str | None, task_root: str | None, emulator: str | None
) -> None:
    environ: dict[str, str] = {}
    for name, value in (
        (TRACE_DISABLED_ENV, switch),
        (LAMBDA_TASK_ROOT_ENV, task_root),
        *((name, "true" if name == emulator else None) for name in LOCAL_EMULATOR_ENVS),
    ):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
            environ[name] = value
    expected = bool(Tracer._is_tracer_disabled())
    assert tracing_disabled(environ) is expected
    assert tracing_disabled() is expected


def test_a_switch_that_is_not_a_boolean_is_refused_as_powertools_refuses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TRACE_DISABLED_ENV, "maybe")
    with pytest.raises(ValueError, match="maybe"):
        Tracer._is_tracer_disabled()
    with pytest.raises(ValueError, match=TRACE_DISABLED_ENV):
        tracing_disabled()
