"""FHIR at ``POST /predict``: content negotiation, the Bundle body, and the FHIR answer.

A request whose Content-Type is ``application/fhir+json`` (UTF-8; the ``fhirVersion``
parameter of FHIR R4's http.html#mime is allowed, any other charset is refused) carries one
Bundle; it is mapped by ``fhir_mapping`` to one canonical record, validated as an
``EncounterRequest`` like any JSON request, and scored on the same path. Errors of such a
request, and of one that asks for FHIR (``Accept``), are ``OperationOutcome`` resources
(``fhir_output.py``): 400 for a body that is not a readable Bundle, 422 for a Bundle that does
not describe a stay the contract can score, 413 and 415 as for JSON.

The answer is a ``RiskAssessment`` when the request was FHIR and ``Accept`` prefers
``application/fhir+json`` to ``application/json`` (or names neither, or is absent); a JSON
request always gets the platform's JSON (it gave no references to answer with).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from contracts.serving import CONTENT_TYPE_JSON
from fhir_mapping import MappedRecord, MappingError, map_bundle
from lambdas.predict.body import request_text
from lambdas.predict.errors import ApiError, field_errors
from lambdas.predict.fhir_output import risk_assessment
from lambdas.predict.headers import CONTENT_TYPE, HeaderError, header_values, parse_media_type
from lambdas.predict.schema import EncounterRequest, PredictRequest, PredictResponse
from lambdas.predict.validation import CHARSET, UTF8, pass_to_route, validated_body

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

CONTENT_TYPE_FHIR_JSON = "application/fhir+json"
ACCEPT = "accept"
FHIR_VERSION = "fhirversion"
#: Where the route's middleware keeps the mapped request for the answer.
MAPPED_CONTEXT = "fhir_mapped"
OUT_OF_CONTRACT = "out_of_contract"
MALFORMED_BUNDLE = "malformed_bundle"

Middleware = Callable[["APIGatewayRestResolver", "NextMiddleware"], "Response[Any]"]
_ACCEPT_ITEM = re.compile(r"\s*([^;,\s]+)\s*((?:;[^,]*)?)")
_QUALITY = re.compile(r";\s*q\s*=\s*([0-9.]+)", re.IGNORECASE)


class FhirInputError(ApiError):
    """A Bundle that is not readable (400) or cannot be scored (422): a fixed reason code,
    and the FHIR paths at fault (``locations``), never a value sent."""

    def __init__(self, status: int, code: str, locations: list[str]) -> None:
        super().__init__(f"{code} at {', '.join(locations)}")
        self.status_code = status
        self.code = code
        self.locations = locations


def is_fhir_json(content_type: str | None) -> bool:
    """Whether one Content-Type value is UTF-8 ``application/fhir+json``."""
    if content_type is None:
        return False
    try:
        media_type = parse_media_type(content_type)
    except HeaderError:
        return False
    charset = media_type.parameters.get(CHARSET, UTF8)
    return media_type.essence == CONTENT_TYPE_FHIR_JSON and charset.lower() == UTF8


def is_fhir_request(event: Mapping[str, Any]) -> bool:
    """Whether the request declares a FHIR body (every Content-Type value it carries)."""
    values = header_values(event, CONTENT_TYPE)
    return bool(values) and all(is_fhir_json(value) for value in values)


def _qualities(event: Mapping[str, Any]) -> dict[str, float]:
    """Accept's media ranges and their weights (RFC 9110 12.5.1), lower-cased."""
    found: dict[str, float] = {}
    for value in header_values(event, ACCEPT):
        for item in value.split(","):
            match = _ACCEPT_ITEM.match(item)
            if match is None:
                continue
            quality = _QUALITY.search(match[2])
            try:
                weight = float(quality[1]) if quality else 1.0
            except ValueError:
                weight = 0.0
            name = match[1].lower()
            found[name] = max(found.get(name, 0.0), weight)
    return found


def _weight(qualities: Mapping[str, float], media_type: str) -> float:
    major = media_type.split("/")[0]
    for candidate in (media_type, f"{major}/*", "*/*"):
        if candidate in qualities:
            return qualities[candidate]
    return -1.0  # not named at all


def prefers_fhir(event: Mapping[str, Any], *, fhir_request: bool) -> bool:
    """Whether the answer should be FHIR: Accept weighs FHIR over JSON, or (a FHIR request)
    does not weigh them apart."""
    qualities = _qualities(event)
    fhir, plain = _weight(qualities, CONTENT_TYPE_FHIR_JSON), _weight(qualities, CONTENT_TYPE_JSON)
    if fhir != plain:
        return fhir > plain
    return fhir_request


def wants_fhir_errors(event: Mapping[str, Any]) -> bool:
    """Whether errors go back as OperationOutcome: a FHIR request, or one preferring FHIR."""
    fhir_request = is_fhir_request(event)
    return fhir_request or prefers_fhir(event, fhir_request=False)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """FHIR JSON forbids a repeated property (R4 json.html); so does this parser."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise FhirInputError(400, MALFORMED_BUNDLE, ["Bundle"])
    return obj


def read_bundle(text: str) -> Any:
    """The JSON document of a FHIR body (400 when it is not JSON)."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        raise FhirInputError(400, MALFORMED_BUNDLE, ["Bundle"]) from None


def mapped_request(mapped: MappedRecord) -> PredictRequest:
    """The mapped record as a validated request (422 naming contract fields it breaks)."""
    try:
        encounter = EncounterRequest.model_validate(mapped.record)
    except ValidationError as e:
        errors = e.errors(include_url=False, include_context=False, include_input=False)
        fields = [path for path, _ in field_errors(errors)]
        raise FhirInputError(422, OUT_OF_CONTRACT, fields) from None
    return PredictRequest(encounter)


def bundle_request(text: str) -> tuple[PredictRequest, MappedRecord]:
    """A FHIR body -> the request it stands for, and the caller's references."""
    try:
        mapped = map_bundle(read_bundle(text))
    except MappingError as e:
        raise FhirInputError(400 if e.malformed else 422, e.reason.value, [e.location]) from None
    return mapped_request(mapped), mapped


def predict_body(argument: str, max_bytes: int) -> Middleware:
    """A route middleware: a FHIR Bundle or a JSON body, validated, as ``argument``; a
    RiskAssessment back when the request was FHIR and prefers it."""

    json_body = validated_body(PredictRequest, argument, max_bytes)

    def validate(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        event = app.current_event.raw_event
        if not is_fhir_request(event):
            return json_body(app, next_middleware)
        request, mapped = bundle_request(request_text(event, max_bytes))
        pass_to_route(app, argument, request)
        response = next_middleware(app)
        if prefers_fhir(event, fhir_request=True) and isinstance(response.body, PredictResponse):
            # Serialised here: Powertools serialises only application/json bodies.
            response.body = json.dumps(
                risk_assessment(
                    response.body.predictions[0],
                    patient_reference=mapped.patient_reference,
                    encounter_reference=mapped.encounter_reference,
                ),
                separators=(",", ":"),
            )
            response.content_type = CONTENT_TYPE_FHIR_JSON
            response.headers["Content-Type"] = CONTENT_TYPE_FHIR_JSON
        return response

    return validate
