"""The worklist data API Lambda, behind API Gateway (REST) with a Cognito user pool authorizer.

    GET /worklist/days                               the scored days of the retention window
    GET /worklist/days/{day}[?unit=..&band=..]       the day's ranked worklist
    GET /worklist/days/{day}/entries/{encounter_key} one entry with its rank

Every request must come from a user in the care-team group (access.py). Every failure is a
fixed body from errors.py; no day, key or filter value is ever logged or echoed back.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any, Protocol

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from contracts.worklist import RETENTION_DAYS, DaySummary, WorklistEntry
from lambdas.environment import SettingsError
from lambdas.worklist_api.access import require_group
from lambdas.worklist_api.errors import (
    ApiError,
    DayNotFoundError,
    EntryNotFoundError,
    RouteNotFoundError,
    ServiceMisconfiguredError,
    StoreUnavailableError,
)
from lambdas.worklist_api.ranking import day_json, one_entry_json
from lambdas.worklist_api.requests import valid_day, valid_encounter_key, valid_filters
from lambdas.worklist_api.settings import Settings
from lambdas.worklist_api.table import DynamoDbWorklistReader, recent_days

SERVICE_NAME = "worklist-api"
JSON_DAYS = "days"
JSON_ERROR = "error"
JSON_REQUEST_ID = "request_id"

for _noisy in ("aws_lambda_powertools", "boto3", "botocore", "urllib3"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)


class WorklistReader(Protocol):
    """What the API reads: the read half of ``worklist.store.WorklistStore``."""

    def read_day(self, day: str) -> tuple[DaySummary | None, list[WorklistEntry]]: ...

    def read_entry(self, day: str, encounter_key: str) -> WorklistEntry | None: ...


logger = Logger(service=SERVICE_NAME)
app = APIGatewayRestResolver(debug=False)
_settings: list[Settings] = []
_store: list[WorklistReader] = []
#: Today's date where the function runs (a test sets its own clock).
today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date()  # noqa: E731


def current_settings() -> Settings:
    if not _settings:
        try:
            _settings.append(Settings.from_env())
        except SettingsError as e:
            raise ServiceMisconfiguredError(str(e)) from e
    return _settings[0]


def current_store() -> WorklistReader:
    """The worklist table, opened on first use (a test or the local gateway sets its own)."""
    if not _store:
        _store.append(
            DynamoDbWorklistReader(current_settings().table_name, boto3.client("dynamodb"))
        )
    return _store[0]


def use(settings: Settings, store: WorklistReader) -> None:
    """Serve ``store`` under ``settings`` (tests and the local gateway)."""
    _settings[:] = [settings]
    _store[:] = [store]


def scored_days(store: WorklistReader, days: Sequence[str]) -> list[str]:
    """Which of ``days`` were scored: the store's own index if it has one, else day by day."""
    index = getattr(store, "scored_days", None)
    if callable(index):
        return list(index(days))
    return [day for day in days if store.read_day(day)[0] is not None]


def _request_id() -> str:
    gateway_id = (app.current_event.get("requestContext") or {}).get("requestId")
    return str(gateway_id or app.lambda_context.aws_request_id)


def _headers() -> dict[str, str]:
    """No caching anywhere (patient data); CORS for the page's origin only."""
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    allowed = _settings[0].allowed_origin if _settings else None
    origin = (app.current_event.headers or {}).get("origin") or (
        app.current_event.headers or {}
    ).get("Origin")
    if allowed is not None:
        headers["Vary"] = "Origin"
        if origin == allowed:
            headers["Access-Control-Allow-Origin"] = allowed
    return headers


def _json(status: int, body: Any) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=_headers(),
    )


def _authorized() -> WorklistReader:
    require_group(app.current_event.raw_event, current_settings().access_group)
    return current_store()


def _read(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except (ClientError, BotoCoreError) as e:
        raise StoreUnavailableError(type(e).__name__) from e


@app.get("/worklist/days")
def list_days() -> Response:
    store = _authorized()
    days = _read(lambda: scored_days(store, recent_days(today(), RETENTION_DAYS)))
    return _json(HTTPStatus.OK, {JSON_DAYS: days})


@app.get("/worklist/days/<day>")
def get_day(day: str) -> Response:
    store = _authorized()
    day = valid_day(day)
    filters = valid_filters(app.current_event.multi_value_query_string_parameters)
    summary, entries = _read(lambda: store.read_day(day))
    if summary is None:
        raise DayNotFoundError
    return _json(HTTPStatus.OK, day_json(summary, entries, filters))


@app.get("/worklist/days/<day>/entries/<encounter_key>")
def get_entry(day: str, encounter_key: str) -> Response:
    store = _authorized()
    day = valid_day(day)
    encounter_key = valid_encounter_key(encounter_key)
    entry = _read(lambda: store.read_entry(day, encounter_key))
    if entry is None:
        raise EntryNotFoundError
    summary, entries = _read(lambda: store.read_day(day))
    if summary is None:
        raise DayNotFoundError
    return _json(HTTPStatus.OK, one_entry_json(entry, entries, summary.budget_share))


@app.not_found
def not_found(_: Exception) -> Response:
    return error_response(RouteNotFoundError())


@app.exception_handler(ApiError)
def error_response(error: ApiError) -> Response:
    """The one place an error becomes a response; logs its code, never a request value."""
    log = logger.error if error.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR else logger.info
    log("request refused", extra={"error": error.code, "status": error.status_code})
    return _json(error.status_code, {JSON_ERROR: error.code, JSON_REQUEST_ID: _request_id()})


@app.exception_handler(Exception)
def unexpected_error(error: Exception) -> Response:
    """A bug or a record that breaks the contract: 500 with a fixed body, the type logged."""
    logger.error("unexpected error", extra={"error_type": type(error).__name__})
    return _json(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        {JSON_ERROR: "internal_error", JSON_REQUEST_ID: _request_id()},
    )


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
