"""The prediction API Lambda: ``POST /predict`` and ``GET /health`` behind API Gateway (REST).

Routes validate, de-identify, call the endpoint and shape the answer; every failure is mapped
to a fixed error body in one place below. Nothing a caller sent (no identifier, no clinical
value, not even an unknown key) is ever logged or echoed back.
"""

import json
import logging
import traceback
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponseHeader
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from contracts.serving import HEALTH_PROBE_INFERENCE_ID, MAX_BATCH_SIZE, MAX_BODY_BYTES
from lambdas.cds_hooks import hook as cds
from lambdas.cds_hooks.request import HookRequest
from lambdas.cds_hooks.service import SERVICE_PATH, SERVICES_PATH, discovery
from lambdas.predict.clients import Clients
from lambdas.predict.deadline import Cancellation, Deadline, run_within
from lambdas.predict.endpoint import invoke_endpoint
from lambdas.predict.errors import (
    ApiError,
    DeadlineExceededError,
    EndpointContractError,
    EndpointThrottledError,
    EndpointUnavailableError,
    PayloadTooLargeError,
    ServiceMisconfiguredError,
    field_errors,
    is_batch_too_large,
)
from lambdas.predict.fhir import (
    CONTENT_TYPE_FHIR_JSON,
    FhirInputError,
    predict_body,
    wants_fhir_errors,
)
from lambdas.predict.fhir_output import operation_outcome
from lambdas.predict.health import (
    UNKNOWN,
    EndpointHealth,
    HealthCache,
    HealthReport,
    check_endpoint,
    check_health,
)
from lambdas.predict.keys import KeyProvider
from lambdas.predict.probe import ProbeResult, run_probe
from lambdas.predict.records import to_endpoint_records
from lambdas.predict.routing import exact_routes
from lambdas.predict.schema import (
    ErrorResponse,
    FieldError,
    HealthResponse,
    Prediction,
    PredictRequest,
    PredictResponse,
    ProbeReport,
    request_records,
)
from lambdas.predict.settings import DEFAULT_RETRY_AFTER_S, Settings, SettingsError
from lambdas.predict.tracing import make_tracer

SERVICE_NAME = "prediction-api"
METRICS_NAMESPACE = "ReadmissionPlatform/API"
HIGH_RISK_BAND = "high"
PREDICT_PATH = "/predict"
HEALTH_PATH = "/health"
#: Every path of the API and its methods, exactly as a request must spell them (routing.py).
ROUTES = {
    PREDICT_PATH: ("POST",),
    HEALTH_PATH: ("GET",),
    SERVICES_PATH: ("GET",),
    SERVICE_PATH: ("POST",),
}

# At DEBUG, botocore logs whole request bodies and Powertools' event handler logs the validated
# request (raw identifiers included): keep them at WARNING whatever level the function runs at.
for _noisy in ("aws_lambda_powertools", "boto3", "botocore", "urllib3"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

# /health and 404s publish no application metric; that is expected, not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def to_json(body: Any) -> str:
    """Serialise a response body; a pydantic model by pydantic itself.

    Powertools' default encoder would import its OpenAPI helpers on the first model it dumps.
    """
    if isinstance(body, BaseModel):
        return body.model_dump_json()
    return json.dumps(body, separators=(",", ":"))


logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
tracer = make_tracer(SERVICE_NAME)
# debug=False always: Powertools' debug mode prints whole events and returns stack traces.
# No enable_validation: the request body is validated by pydantic in validation.py (the same
# models, without Powertools' OpenAPI machinery in the cold import), and a response is built
# from its pydantic model, so one that breaks the model fails as a 500 in construction.
app = APIGatewayRestResolver(debug=False, serializer=to_json)
app.use(middlewares=[exact_routes(ROUTES)])

clients = Clients()
keys = KeyProvider(clients.secrets)
health_cache: HealthCache[HealthReport] = HealthCache()
_settings: list[Settings] = []


def current_settings() -> Settings:
    """Return the settings, read from the environment on first use."""
    if not _settings:
        try:
            _settings.append(Settings.from_env())
        except SettingsError as e:
            raise ServiceMisconfiguredError(str(e)) from e
    return _settings[0]


def reset_state() -> None:
    """Forget settings, clients, key and health answer (tests; a container never needs it)."""
    _settings.clear()
    clients.clear()
    keys.clear()
    health_cache.clear()
    cds.state.clear()


def request_deadline(settings: Settings) -> Deadline:
    """This request's deadline: the configured budget, cut to the Lambda's remaining time."""
    return Deadline.for_request(settings.deadline_s, _remaining_ms())


def _remaining_ms() -> int | None:
    try:
        return int(app.lambda_context.get_remaining_time_in_millis())
    except (AttributeError, TypeError, ValueError):  # a context without the method (a test)
        return None


def request_id() -> str:
    """The API Gateway request id the caller sees, else the Lambda request id."""
    gateway_id = (app.current_event.get("requestContext") or {}).get("requestId")
    return str(gateway_id or app.lambda_context.aws_request_id)


def error_response(
    status: int,
    code: str,
    *,
    retry_after: int | None = None,
    fields: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    fhir_locations: Sequence[str] = (),
) -> Response[Any]:
    """Build an error body: a code, the request id and (for 400) the fields at fault.

    A FHIR request (or one that asks for FHIR) gets the same status as an OperationOutcome.
    """
    headers = dict(headers or {})
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if wants_fhir_errors(app.current_event.raw_event):
        locations = [f.field for f in fields or []] or list(fhir_locations)
        return Response(
            status_code=status,
            content_type=CONTENT_TYPE_FHIR_JSON,
            body=to_json(operation_outcome(status, code, request_id(), locations)),
            headers=headers,
        )
    body = ErrorResponse(
        error=code,
        request_id=request_id(),
        fields=None if fields is None else list(dict.fromkeys(f.field for f in fields)),
        details=fields,
    )
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(mode="json", exclude_none=True),
        headers=headers,
    )


#: Typed errors that are the caller's to fix (a 400 goes through on_invalid_request).
_CLIENT_ERRORS = frozenset(
    {
        HTTPStatus.BAD_REQUEST,
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        HTTPStatus.UNPROCESSABLE_ENTITY,
    }
)
_RETRY_AFTER_HEADER: dict[str, OpenAPIResponseHeader] = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}
_ERROR_RESPONSES: dict[int, Any] = {
    status: {
        "description": description,
        "content": {content_types.APPLICATION_JSON: {"model": ErrorResponse}},
        **({"headers": _RETRY_AFTER_HEADER} if status in (429, 503) else {}),
    }
    for status, description in (
        (400, "Invalid request: the fields at fault are named, their values never echoed."),
        (413, f"Body over {MAX_BODY_BYTES} bytes or batch over {MAX_BATCH_SIZE} records."),
        (
            415,
            "The body is not declared UTF-8 application/json, or its content coding is not "
            "gzip, deflate or identity.",
        ),
        (429, "The endpoint is throttling; retry after Retry-After seconds."),
        (500, "A bug or a misconfiguration; quote request_id."),
        (
            503,
            "The endpoint is down, missing or updating, or did not answer within the "
            "request's deadline; retry after Retry-After seconds.",
        ),
    )
}


@app.post(
    PREDICT_PATH,
    summary="Score encounters for 30-day readmission risk",
    description=(
        'One encounter object, or {"instances": [...]} with 1 to '
        f"{MAX_BATCH_SIZE} encounters. patient_id and encounter_id are replaced by keyed "
        "hashes before anything leaves the function."
    ),
    tags=["predictions"],
    operation_id="predict",
    responses={200: {"description": "Predictions in request order."}, **_ERROR_RESPONSES},
    middlewares=[predict_body("request", MAX_BODY_BYTES)],
)
def predict(request: PredictRequest) -> PredictResponse:
    """De-identify the validated request, score it on the endpoint, return predictions in order."""
    settings = current_settings()
    records = request_records(request)
    predictions = score(settings, records, request_deadline(settings))
    high = sum(p.risk_band == HIGH_RISK_BAND for p in predictions)
    metrics.add_metric(name="PredictionsServed", unit=MetricUnit.Count, value=len(predictions))
    metrics.add_metric(name="BatchSize", unit=MetricUnit.Count, value=len(records))
    metrics.add_metric(name="RiskBandHigh", unit=MetricUnit.Count, value=high)
    logger.info("predictions served", extra={"batch_size": len(records), "high_risk": high})
    return PredictResponse(request_id=request_id(), predictions=predictions)


def score(
    settings: Settings, records: list[dict[str, Any]], deadline: Deadline
) -> list[Prediction]:
    """De-identify and score ``records`` within ``deadline``, in a trace subsegment.

    The key fetch (first request of a container) and the endpoint call with botocore's
    retries run under the one deadline. Not ``capture_method``: on an exception it logs the
    whole chained traceback, whose botocore message may quote a model container's error text.
    """

    def work(cancellation: Cancellation) -> list[Prediction]:
        endpoint_records = to_endpoint_records(records, keys.get(settings))
        return invoke_endpoint(
            clients.runtime(settings), settings.endpoint_name, endpoint_records, cancellation
        )

    with tracer.provider.in_subsegment(name="## invoke_endpoint"):
        return run_within(deadline, work, "invoke_endpoint")


@app.get(
    SERVICES_PATH,
    summary="CDS Hooks discovery: the readmission-risk service on encounter-discharge",
    tags=["cds-hooks"],
    operation_id="cdsDiscovery",
    responses={200: {"description": "The services this CDS service offers."}},
)
def cds_discovery() -> dict[str, Any]:
    """CDS Hooks 2.0 discovery (the authorizer has checked the EHR's JWT)."""
    return discovery()


@app.post(
    SERVICE_PATH,
    summary="CDS Hooks encounter-discharge: a card with the 30-day readmission risk",
    description=(
        "The EHR's hook request with its prefetch (see GET /cds-services). The stay is mapped "
        "and scored exactly as a FHIR POST /predict; 412 when prefetch data is missing."
    ),
    tags=["cds-hooks"],
    operation_id="cdsReadmissionRisk",
    responses={
        200: {"description": "One card."},
        401: _ERROR_RESPONSES[400] | {"description": "Expired or replayed token."},
        412: _ERROR_RESPONSES[400] | {"description": "Prefetch data missing."},
        422: _ERROR_RESPONSES[400] | {"description": "The prefetch is not a stay to score."},
        **{k: v for k, v in _ERROR_RESPONSES.items() if k != 415},
    },
    middlewares=[cds.token_checked(), cds.hook_body("hook", MAX_BODY_BYTES)],
)
def cds_readmission_risk(hook: HookRequest) -> dict[str, Any]:
    """Score the stay being discharged on the predict path; answer with its card."""
    settings = current_settings()
    records = request_records(cds.record_of(hook))
    prediction = score(settings, records, request_deadline(settings))[0]
    metrics.add_metric(name="CdsHookCards", unit=MetricUnit.Count, value=1)
    logger.info("cds card served", extra={"risk_band": prediction.risk_band})
    return cds.response(prediction)


@app.get(
    HEALTH_PATH,
    summary="Endpoint status, serving model version, and whether the model answers",
    tags=["health"],
    operation_id="health",
    responses={
        200: {
            "description": "The model answered the probe: predictions can be served.",
            "content": {content_types.APPLICATION_JSON: {"model": HealthResponse}},
        },
        503: {
            "description": "The model did not answer the probe (or the control plane says the "
            "endpoint cannot take invocations); retry after Retry-After seconds.",
            "content": {content_types.APPLICATION_JSON: {"model": HealthResponse}},
            "headers": _RETRY_AFTER_HEADER,
        },
        500: _ERROR_RESPONSES[500],
    },
)
def health() -> Response[HealthResponse]:
    """Report the control plane's status and the probe's answer (cached, and so rate-limited)."""
    settings = current_settings()
    report = health_cache.get(settings.health_cache_ttl_s, lambda: _check(settings))
    endpoint, probe = report.endpoint, report.probe
    body = HealthResponse(
        status="ok" if report.serving else "unavailable",
        endpoint_status=endpoint.endpoint_status,
        model_version=endpoint.model_version,
        probe=ProbeReport(
            status=probe.status, model_version=probe.model_version, latency_ms=probe.latency_ms
        ),
        checked_at=datetime.fromtimestamp(report.checked_at, UTC).isoformat(),
    )
    metrics.add_metric(name="HealthChecks", unit=MetricUnit.Count, value=1)
    if not report.serving:
        metrics.add_metric(name="EndpointErrors", unit=MetricUnit.Count, value=1)
        logger.warning(
            "endpoint not serving",
            extra={
                "endpoint_status": endpoint.endpoint_status,
                "probe_status": probe.status,
                "probe_failure": probe.failure,
            },
        )
    return Response(
        status_code=HTTPStatus.OK if report.serving else HTTPStatus.SERVICE_UNAVAILABLE,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={} if report.serving else {"Retry-After": str(settings.retry_after_s)},
    )


def _check(settings: Settings) -> HealthReport:
    """One health check under one deadline: control plane first, then the probe."""
    deadline = request_deadline(settings)
    return check_health(
        lambda: _describe_endpoint(settings, deadline), lambda: _probe(settings, deadline)
    )


def _describe_endpoint(settings: Settings, deadline: Deadline) -> EndpointHealth:
    """The control plane's view; ``Unknown`` when it does not answer in time."""
    try:
        return run_within(
            deadline,
            lambda _: check_endpoint(clients.sagemaker(), settings.endpoint_name),
            "describe_endpoint",
        )
    except DeadlineExceededError:
        return EndpointHealth(UNKNOWN, None)


def _probe(settings: Settings, deadline: Deadline) -> ProbeResult:
    """Score the probe record through the prediction path, labelled for data capture."""

    def score_probe(records: list[dict[str, Any]]) -> list[Prediction]:
        return run_within(
            deadline,
            lambda cancellation: invoke_endpoint(
                clients.runtime(settings),
                settings.endpoint_name,
                records,
                cancellation,
                inference_id=HEALTH_PROBE_INFERENCE_ID,
            ),
            "health_probe",
        )

    return run_probe(score_probe)


@app.exception_handler(RequestValidationError)
def on_invalid_request(error: RequestValidationError) -> Response[dict[str, Any]]:
    """400 naming the fields at fault (413 for a batch over the limit)."""
    errors = list(error.errors())
    if is_batch_too_large(errors):
        return on_api_error(PayloadTooLargeError("request over the size or batch limit"))
    fields = [FieldError(field=path, reason=reason) for path, reason in field_errors(errors)]
    metrics.add_metric(name="ValidationErrors", unit=MetricUnit.Count, value=1)
    logger.info("request rejected", extra={"invalid_fields": [f.field for f in fields]})
    return error_response(HTTPStatus.BAD_REQUEST, "invalid_request", fields=fields)


@app.exception_handler(NotFoundError)
def on_not_found(_: NotFoundError) -> Response[dict[str, Any]]:
    """404 for any other path (another method on a known path is 405, routing.py)."""
    return error_response(HTTPStatus.NOT_FOUND, "not_found")


@app.exception_handler(ApiError)
def on_api_error(error: ApiError) -> Response[dict[str, Any]]:
    """The typed errors: fixed status and code, Retry-After where a retry can succeed."""
    if isinstance(error, EndpointThrottledError | EndpointUnavailableError | EndpointContractError):
        metrics.add_metric(name="EndpointErrors", unit=MetricUnit.Count, value=1)
    if error.status_code in _CLIENT_ERRORS:
        metrics.add_metric(name="ValidationErrors", unit=MetricUnit.Count, value=1)
    log = logger.error if error.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR else logger.warning
    log("request failed", extra={"error_code": error.code, "reason": str(error)})
    retry_after = _retry_after_s() if error.retry_after else None
    return error_response(
        error.status_code,
        error.code,
        retry_after=retry_after,
        headers=error.headers,
        fhir_locations=error.locations if isinstance(error, FhirInputError) else (),
    )


def _retry_after_s() -> int:
    try:
        return current_settings().retry_after_s
    except ServiceMisconfiguredError:
        return DEFAULT_RETRY_AFTER_S


@app.exception_handler(Exception)
def on_unexpected_error(error: Exception) -> Response[dict[str, Any]]:
    """500 with no detail; the log gets the exception type and code locations, no message."""
    frames = [
        f"{f.filename}:{f.lineno}:{f.name}" for f in traceback.extract_tb(error.__traceback__)
    ]
    logger.error("unexpected error", extra={"error_type": type(error).__name__, "frames": frames})
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error")


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point (``lambdas.predict.app.lambda_handler``)."""
    return app.resolve(event, context)
