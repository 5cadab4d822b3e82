"""A discharge hook request (CDS Hooks 2.0, "Calling a CDS Service",
https://cds-hooks.hl7.org/2.0/#calling-a-cds-service) and the FHIR record its prefetch holds.

The body is validated strictly for what the service reads (extensions and unknown members are
allowed, as the spec allows them); the prefetch becomes one patient's resources for
``fhir_mapping``. A prefetch key the EHR did not send, or sent as an OperationOutcome (the
spec's way of saying it failed to prefetch), leaves the service without the data it needs:
``412 Precondition Failed``, as the spec prescribes when the service does not fetch the data
itself (https://cds-hooks.hl7.org/2.0/#http-status-codes). This service does not use
``fhirServer``/``fhirAuthorization``: it never calls back into the EHR.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from fhir_mapping.bundle import SEARCHSET, Entry, entry_of
from fhir_mapping.errors import MappingError, Reason
from lambdas.cds_hooks.service import HOOK, PREFETCH, REQUIRED_PREFETCH
from lambdas.predict.errors import ApiError

OPERATION_OUTCOME = "OperationOutcome"
_FhirId = Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-.]+$")]


class HookContext(BaseModel):
    """The ``encounter-discharge`` context."""

    model_config = ConfigDict(extra="allow", strict=True)

    userId: StrictStr = Field(min_length=1)  # noqa: N815 - the spec's name
    patientId: _FhirId  # noqa: N815
    encounterId: _FhirId  # noqa: N815


class HookRequest(BaseModel):
    """What the service reads of a hook request."""

    model_config = ConfigDict(extra="allow", strict=True)

    hook: Literal["encounter-discharge"]
    hookInstance: StrictStr = Field(min_length=1, max_length=128)  # noqa: N815
    fhirServer: StrictStr | None = None  # noqa: N815
    fhirAuthorization: dict[str, Any] | None = None  # noqa: N815
    context: HookContext
    prefetch: dict[str, Any] | None = None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Only the hook's name and instance. Powertools formats the route's arguments into a
        debug line on every call (``_registered_api_adapter``), logged or not: the default
        repr would walk the whole prefetch each time (~0.2 ms for one stay) and, were debug
        logging on, write the patient's record to the log."""
        yield "hook", self.hook
        yield "hookInstance", self.hookInstance


assert HOOK == "encounter-discharge"  # the Literal above is this constant


class PrefetchMissingError(ApiError):
    """The request lacks prefetch data the service needs (412); names the keys, which are the
    service's own."""

    status_code = 412
    code = "prefetch_missing"

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"prefetch missing: {', '.join(keys)}")
        self.keys = keys


def _resources(value: Any, key: str) -> list[Entry]:
    """The resources of one prefetch value: a resource, or a Bundle of them (searchset)."""
    if not isinstance(value, dict):
        raise MappingError(Reason.MALFORMED_BUNDLE, f"prefetch.{key}")
    if value.get("resourceType") == "Bundle":
        if value.get("type") not in (SEARCHSET, "collection"):
            raise MappingError(Reason.WRONG_RESOURCE_TYPE, f"prefetch.{key}")
        items = value.get("entry") or []
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise MappingError(Reason.MALFORMED_BUNDLE, f"prefetch.{key}")
        return [
            entry_of(item.get("resource"), item.get("fullUrl"))
            for item in items
            if not (
                isinstance(item.get("resource"), dict)
                and item["resource"].get("resourceType") == OPERATION_OUTCOME
            )
        ]
    return [entry_of(value)]


def prefetch_entries(prefetch: Mapping[str, Any] | None) -> list[Entry]:
    """Every resource of the prefetch, each once (a resource in two keys is one resource)."""
    prefetch = prefetch or {}
    missing = [
        key
        for key in PREFETCH
        if key not in prefetch
        or (
            isinstance(prefetch[key], dict)
            and prefetch[key].get("resourceType") == OPERATION_OUTCOME
        )
        or (key in REQUIRED_PREFETCH and prefetch[key] is None)
    ]
    if missing:
        raise PrefetchMissingError(missing)
    entries: dict[str, Entry] = {}
    for key in PREFETCH:
        if prefetch[key] is None:
            continue
        for entry in _resources(prefetch[key], key):
            name = entry.local_name or entry.full_url or str(id(entry))
            entries.setdefault(name, entry)
    return list(entries.values())
