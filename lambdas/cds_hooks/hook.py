"""The discharge hook, from a validated request to the response body, around the predict path.

``record_of`` maps the prefetch to the canonical record (``fhir_mapping``, the stay being
discharged now when its Encounter has no end yet) and checks it belongs to the context's
patient; the route scores it exactly as ``/predict`` does and ``response`` wraps the card.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import ValidationError

from contracts.serving import PATIENT_ID
from fhir_mapping import MappingError, map_resources
from lambdas.cds_hooks.auth import check_token
from lambdas.cds_hooks.cards import card
from lambdas.cds_hooks.replay import DynamoDbReplayCache, MemoryReplayCache, ReplayCache
from lambdas.cds_hooks.request import HookRequest, prefetch_entries
from lambdas.cds_hooks.service import REPLAY_TABLE_ENV, WORKLIST_PAGE_URL_ENV
from lambdas.predict.body import BODY, invalid_body, request_text
from lambdas.predict.fhir import FhirInputError, mapped_request
from lambdas.predict.schema import Prediction, PredictRequest
from lambdas.predict.validation import (
    DUPLICATE_KEY,
    JSON_INVALID,
    pass_to_route,
    require_json,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

CONTEXT_MISMATCH = "context_mismatch"

Middleware = Callable[["APIGatewayRestResolver", "NextMiddleware"], "Response[Any]"]


@dataclass(frozen=True)
class HookSettings:
    """The service's own settings: the worklist link and the replay store."""

    worklist_url: str | None
    replay_table: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HookSettings:
        env = os.environ if env is None else env
        return cls(env.get(WORKLIST_PAGE_URL_ENV) or None, env.get(REPLAY_TABLE_ENV) or None)


class HookState:
    """Settings and replay store, built on first use (tests reset it)."""

    def __init__(self) -> None:
        self._settings: HookSettings | None = None
        self._replay: ReplayCache | None = None

    @property
    def settings(self) -> HookSettings:
        if self._settings is None:
            self._settings = HookSettings.from_env()
        return self._settings

    @property
    def replay(self) -> ReplayCache:
        if self._replay is None:
            table = self.settings.replay_table
            if table:
                import boto3

                self._replay = DynamoDbReplayCache(boto3.client("dynamodb"), table)
            else:
                self._replay = MemoryReplayCache()
        return self._replay

    def clear(self) -> None:
        self._settings = None
        self._replay = None


state = HookState()


def token_checked() -> Middleware:
    """A route middleware: refuse an expired or replayed token before reading the body."""

    def check(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        check_token(app.current_event.raw_event, state.replay)
        return next_middleware(app)

    return check


def hook_body(argument: str, max_bytes: int) -> Middleware:
    """A route middleware: the body as a validated ``HookRequest``, parsed once.

    The same answers as ``/predict``'s JSON bodies (415, 413, 400 naming no value, a repeated
    key refused), with a single parse: a hook body carries the whole prefetch, so the generic
    validator's second pass over the document for repeated keys would double its cost.
    """

    def validate(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        event = app.current_event.raw_event
        require_json(event)
        text = request_text(event, max_bytes)
        try:
            document = json.loads(text, object_pairs_hook=_refuse_repeated_keys)
        except _RepeatedKeyError:
            raise RequestValidationError([{"loc": (BODY,), "type": DUPLICATE_KEY}]) from None
        except (ValueError, RecursionError):
            raise invalid_body(JSON_INVALID) from None
        try:
            request = HookRequest.model_validate(document)
        except ValidationError as e:
            errors = e.errors(include_url=False, include_context=False, include_input=False)
            raise RequestValidationError(errors) from None  # not chained: pydantic quotes input
        pass_to_route(app, argument, request)
        return next_middleware(app)

    return validate


class _RepeatedKeyError(ValueError):
    """An object names a key twice (RFC 8259 leaves its meaning open; here it is an error)."""


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _RepeatedKeyError
    return document


def record_of(hook: HookRequest, now: datetime | None = None) -> PredictRequest:
    """The prefetch as a validated predict request (412, 422 or 400 as ``/predict`` answers)."""
    try:
        mapped = map_resources(
            prefetch_entries(hook.prefetch),
            encounter_id=hook.context.encounterId,
            discharged_at=now or datetime.now(UTC),
        )
    except MappingError as e:
        raise FhirInputError(400 if e.malformed else 422, e.reason.value, [e.location]) from None
    if mapped.record[PATIENT_ID] != hook.context.patientId:
        raise FhirInputError(422, CONTEXT_MISMATCH, ["context.patientId"])
    return mapped_request(mapped)


def response(prediction: Prediction) -> dict[str, Any]:
    """The hook's response: one card."""
    return {"cards": [card(prediction, state.settings.worklist_url)]}
