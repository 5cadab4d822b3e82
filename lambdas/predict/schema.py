"""Request and response models of the API, generated from the encounter contract.

The request record is built field by field from ``contracts.encounter`` (types, bounds,
closed vocabularies, descriptions), so the API can never drift from what training and the
endpoint read. Raw hospital identifiers come in as ``patient_id``/``encounter_id``; they are
hashed before anything leaves the function (see ``records.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    StrictStr,
    Tag,
    create_model,
)
from pydantic_core import PydanticCustomError

from contracts import codes, serving
from contracts.encounter import FieldKind, FieldSpec, model_input_fields

PATIENT_ID = serving.PATIENT_ID
ENCOUNTER_ID = serving.ENCOUNTER_ID

SINGLE_TAG = "single"
BATCH_TAG = "batch"

#: Strict: a JSON API should not turn "12" into 12 or true into 1 behind the caller's back.
_RECORD_CONFIG = ConfigDict(extra="forbid", strict=True)


def _integral_number(value: Any) -> Any:
    """``6.0`` is the integer 6: JSON has one number type, and JSON Schema's ``integer`` is
    any number without a fractional part (so OpenAPI clients may send one). Anything else,
    ``6.5``, ``"6"`` or ``true`` included, is left for the strict check to refuse."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _integer(**bounds: Any) -> Any:
    """An integer as JSON Schema defines one, within ``bounds`` (``ge``, ``le``, ``lt``)."""
    return Annotated[int, Field(**bounds), BeforeValidator(_integral_number)]


_RawIdentifier = (
    Annotated[StrictStr, Field(min_length=1, max_length=serving.MAX_IDENTIFIER_CHARS)]
    # As many digits at most as a string identifier has characters.
    | _integer(ge=0, lt=10**serving.MAX_IDENTIFIER_CHARS)
)


def _value_type(spec: FieldSpec) -> Any:
    """Return the pydantic type of one model-input field (before nullability)."""
    if spec.kind == FieldKind.NUMERIC and spec.dtype == "int":
        return _integer(ge=_int_bound(spec.valid_min), le=_int_bound(spec.valid_max))
    if spec.kind == FieldKind.NUMERIC:
        return Annotated[float, Field(ge=spec.valid_min, le=spec.valid_max, allow_inf_nan=False)]
    if spec.kind == FieldKind.CATEGORICAL and spec.categories is not None:
        return Literal[spec.categories]
    if spec.kind == FieldKind.CATEGORICAL:
        return Annotated[str, Field(min_length=1, max_length=serving.MAX_CATEGORY_CHARS)]
    if spec.kind == FieldKind.CODE_SEQUENCE:
        code: Any = Annotated[str, Field(min_length=1, max_length=serving.MAX_CODE_CHARS)]
        if spec.name in codes.LEGACY_SYSTEM:
            code = Annotated[
                str,
                Field(
                    min_length=1,
                    max_length=serving.MAX_CODE_CHARS,
                    json_schema_extra={"pattern": code_pattern(spec.name)},
                ),
                AfterValidator(_code_validator(spec.name)),
            ]
        return Annotated[list[code], Field(max_length=serving.MAX_CODES_PER_SEQUENCE)]
    if spec.kind == FieldKind.TEXT:
        return Annotated[str, Field(max_length=serving.MAX_NOTE_CHARS)]
    raise ValueError(f"no request type for field kind {spec.kind.value}")


#: Error types of a code entry: a tag that is not a system of the field, or a code without its
#: system's shape. The 400 names the entry's path (``diagnosis_codes.2``), never the code.
CODE_SYSTEM_INVALID = "code_system_invalid"
CODE_MALFORMED = "code_malformed"


def endpoint_code(field_name: str, value: str) -> str:
    """One entry of a coded field, normalised, as the API forwards it to the endpoint.

    Tagged or not on the way in (an untagged code is the field's legacy ICD-9 system); on the
    way out an ICD-9 code goes untagged (``4280``) and every other system tagged
    (``icd10cm:I509``): contract 2.0 reads both forms alike, and a model of contract 1.x, which
    serves with the code inside its own artifact, reads ICD-9 codes exactly as it always has.
    Raises pydantic's error with a type and a fixed message only, never the value.
    """
    if not _PRINTABLE.fullmatch(value):  # no code holds a control or non-ASCII character
        raise PydanticCustomError(CODE_MALFORMED, "not a well-formed code of its system")
    try:
        code = codes.parse(field_name, value, strict=False)
    except codes.CodeError:
        raise PydanticCustomError(CODE_SYSTEM_INVALID, "unknown or disallowed system") from None
    if not codes.is_well_formed(code):
        raise PydanticCustomError(CODE_MALFORMED, "not a well-formed code of its system")
    return code.code if codes.LEGACY_SYSTEM.get(field_name) is code.system else code.tagged


#: Each ICD system's normalised shape (``contracts.codes``) as units of (class, min, max), to
#: write the JSON-schema pattern from: the same rule, letters in either case, and the
#: characters normalisation drops (dots, whitespace) allowed anywhere.
_SHAPE_UNITS: dict[codes.CodeSystem, tuple[tuple[tuple[str, int, int], ...], ...]] = {
    codes.CodeSystem.ICD9CM: (
        (("[0-9]", 3, 5),),
        (("[Vv]", 1, 1), ("[0-9]", 2, 4)),
        (("[Ee]", 1, 1), ("[0-9]", 3, 4)),
    ),
    codes.CodeSystem.ICD9PCS: ((("[0-9]", 2, 4),),),
    codes.CodeSystem.ICD10CM: ((("[A-Za-z]", 1, 1), ("[0-9]", 1, 1), ("[0-9A-Za-z]", 1, 5)),),
    codes.CodeSystem.ICD10PCS: ((("[0-9A-HJ-NP-Za-hj-np-z]", 7, 7),),),
}
#: What an entry may hold at all: printable ASCII; of it, normalisation drops spaces and dots.
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_FILLER = "[ .]*"


def code_pattern(field_name: str) -> str:
    """The ECMA-262 pattern (JSON schema ``pattern``) of exactly the entries ``endpoint_code``
    accepts for ``field_name``: an untagged ICD-9 code, or ``<system>:<code>``."""
    filler = _FILLER

    def shape(system: codes.CodeSystem) -> str:
        options = [
            "".join(f"(?:{filler}{cls}){{{low},{high}}}" for cls, low, high in units) + filler
            for units in _SHAPE_UNITS[system]
        ]
        return "(?:" + "|".join(options) + ")"

    def tag(system: codes.CodeSystem) -> str:
        letters = "".join(f"[{c.upper()}{c}]" if c.isalpha() else c for c in system.value)
        return f" *{letters} *:"

    legacy = codes.LEGACY_SYSTEM[field_name]
    tagged = [f"{tag(system)}{shape(system)}" for system in codes.FIELD_SYSTEMS[field_name]]
    return "^(?:" + "|".join([shape(legacy), *tagged]) + ")$"


def _code_validator(field_name: str) -> Any:
    def validate(value: str) -> str:
        return endpoint_code(field_name, value)

    return validate


def _int_bound(bound: float | None) -> int | None:
    return None if bound is None else int(bound)


def _record_fields() -> dict[str, Any]:
    """Return ``create_model`` field definitions: raw identifiers, then the model inputs."""
    fields: dict[str, Any] = {
        PATIENT_ID: (
            _RawIdentifier,
            Field(description="The hospital's patient identifier; hashed before use."),
        ),
        ENCOUNTER_ID: (
            _RawIdentifier | None,
            Field(default=None, description="The hospital's admission identifier; hashed."),
        ),
    }
    for spec in model_input_fields():
        value_type = _value_type(spec)
        if spec.nullable:
            fields[spec.name] = (
                value_type | None,
                Field(default=None, description=spec.description),
            )
        else:
            fields[spec.name] = (value_type, Field(description=spec.description))
    return fields


class _UnprintedRecord(BaseModel):
    """A request record whose ``repr``/``str`` carry no field: it holds raw hospital
    identifiers and clinical values. Powertools formats a route's arguments into a debug line
    on every call, logged or not, so the default repr would put them in the log the moment
    debug logging is on."""

    model_config = _RECORD_CONFIG

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "fields", len(type(self).model_fields)


EncounterRequest: type[BaseModel] = create_model(
    "EncounterRequest",
    __base__=_UnprintedRecord,
    __doc__="One encounter to score, in the canonical encounter schema with raw identifiers.",
    **_record_fields(),
)


class BatchRequest(BaseModel):
    """Several encounters scored in one call; predictions come back in the same order."""

    model_config = _RECORD_CONFIG

    instances: Annotated[
        list[EncounterRequest],  # type: ignore[valid-type]
        Field(min_length=1, max_length=serving.MAX_BATCH_SIZE),
    ]


def request_kind(body: Any) -> str | None:
    """Tell a batch (an object with ``instances``) from a single encounter (any other object)."""
    if isinstance(body, dict):
        return BATCH_TAG if serving.INSTANCES_KEY in body else SINGLE_TAG
    if isinstance(body, BaseModel):
        return BATCH_TAG if isinstance(body, BatchRequest) else SINGLE_TAG
    return None


if TYPE_CHECKING:
    PredictRequest: TypeAlias = RootModel[Any]
else:

    class PredictRequest(
        RootModel[
            Annotated[
                Annotated[EncounterRequest, Tag(SINGLE_TAG)]
                | Annotated[BatchRequest, Tag(BATCH_TAG)],
                Discriminator(request_kind),
            ]
        ]
    ):
        """One encounter object, or an object whose "instances" list is a batch of them."""


def request_records(request: PredictRequest) -> list[dict[str, Any]]:
    """Return the request's encounters as plain dicts, in request order."""
    body = request.root
    items: list[BaseModel] = list(body.instances) if isinstance(body, BatchRequest) else [body]
    return [item.model_dump() for item in items]


class Factor(BaseModel):
    """One contributing factor of a prediction, named so that a clinician can read it."""

    feature: str
    direction: Literal["increases_risk", "decreases_risk"]
    contribution: float


class Prediction(BaseModel):
    """The endpoint's answer for one encounter."""

    encounter_key: str | None = Field(
        description="Keyed hash of the encounter_id sent (null when none was sent)."
    )
    probability: float = Field(ge=0, le=1, description="Calibrated 30-day readmission risk.")
    risk_band: Literal["low", "moderate", "high"]
    model_version: str
    top_factors: list[Factor]


class PredictResponse(BaseModel):
    """Predictions in request order, with the id to quote when asking about this request."""

    request_id: str
    predictions: list[Prediction]


class EndpointResponse(BaseModel):
    """What the endpoint returns (contracts.serving); checked before it reaches a caller."""

    predictions: list[Prediction]


class ProbeReport(BaseModel):
    """Whether the model answered a synthetic, non-patient record through the prediction path."""

    status: Literal["ok", "failed", "timeout", "throttled", "not_run"] = Field(
        description="ok: the model answered; failed: an error or a broken answer; timeout: no "
        "answer by the deadline; throttled: refused for capacity; not_run: the control plane "
        "says the endpoint cannot take invocations."
    )
    model_version: str | None = Field(description="Version of the model that answered.")
    latency_ms: int | None = Field(description="How long the answer took.")


class HealthResponse(BaseModel):
    """Whether predictions can be served now: the control plane's status and the model's answer.

    ``status`` is ok only when the model answered the probe. Answers are cached per function
    container for HEALTH_CACHE_TTL_S seconds (the probe's rate limit); ``checked_at`` says when
    this one was taken.
    """

    status: Literal["ok", "unavailable"]
    endpoint_status: str = Field(description="SageMaker's EndpointStatus, or NotFound/Unknown.")
    model_version: str | None = Field(
        description="The model version the endpoint's configuration serves (control plane)."
    )
    probe: ProbeReport
    checked_at: str = Field(description="When the check was made (UTC, ISO 8601).")


class FieldError(BaseModel):
    """Why one field was rejected: its path and pydantic's error type, never its value."""

    field: str = Field(description="Path of the field, e.g. instances.0.age_years.")
    reason: str = Field(description="Error type, e.g. missing, less_than_equal, literal_error.")


class ErrorResponse(BaseModel):
    """Every error: a stable code, the request id, and for bad input the fields at fault."""

    error: str = Field(description="Stable machine-readable error code.")
    request_id: str
    fields: list[str] | None = Field(
        default=None,
        description="Paths of the fields at fault (400 only); an unknown field shows as "
        "<unknown> under its parent. Never the values sent.",
    )
    details: list[FieldError] | None = Field(default=None, description="Per-field reasons (400).")
