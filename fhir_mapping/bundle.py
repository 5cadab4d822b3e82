"""A FHIR Bundle's entries, checked and indexed so that references can be resolved.

A reference resolves to an entry when it equals the entry's ``fullUrl``, or names it as
``Type/id`` (relative, or absolute ending in ``/Type/id``), as FHIR R4 resolves references
inside a bundle (http://hl7.org/fhir/R4/bundle.html#references).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from contracts import fhir
from fhir_mapping.elements import fhir_id, optional
from fhir_mapping.errors import MappingError, Reason

BUNDLE = "Bundle"
#: Bundle types that carry a record to map (http://hl7.org/fhir/R4/valueset-bundle-type.html).
MAPPED_BUNDLE_TYPES = ("collection", "transaction")
#: What a prefetch answer may be besides a single resource (CDS Hooks 2.0, "Prefetch").
SEARCHSET = "searchset"


@dataclass(frozen=True)
class Entry:
    """One resource of the bundle, with the names other resources may reference it by."""

    resource_type: str
    resource: dict[str, Any]
    resource_id: str | None
    full_url: str | None

    @property
    def local_name(self) -> str | None:
        """``Type/id``, when the resource has an id."""
        return None if self.resource_id is None else f"{self.resource_type}/{self.resource_id}"

    @property
    def identity(self) -> str:
        """How the record and the answer name it: its id, else its fullUrl."""
        return self.resource_id or self.full_url or ""

    @property
    def reference(self) -> str:
        """A reference to this entry: ``Type/id``, else its fullUrl."""
        return self.local_name or self.full_url or ""


def entry_of(resource: Any, full_url: Any = None) -> Entry:
    """Check one resource's type and id and wrap it."""
    if not isinstance(resource, dict):
        raise MappingError(Reason.MALFORMED_BUNDLE, "Bundle.entry.resource")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise MappingError(Reason.MALFORMED_BUNDLE, "Bundle.entry.resource.resourceType")
    if resource_type not in fhir.RESOURCE_TYPES:
        raise MappingError(Reason.WRONG_RESOURCE_TYPE, "Bundle.entry.resource.resourceType")
    raw_id = resource.get("id")
    resource_id = None if raw_id is None else fhir_id(raw_id, f"{resource_type}.id")
    if full_url is not None and not isinstance(full_url, str):
        raise MappingError(Reason.MALFORMED_BUNDLE, "Bundle.entry.fullUrl")
    return Entry(resource_type, resource, resource_id, full_url or None)


def bundle_entries(document: Any) -> list[Entry]:
    """The entries of a collection or transaction Bundle."""
    if not isinstance(document, dict):
        raise MappingError(Reason.MALFORMED_BUNDLE, "Bundle")
    resource_type = document.get("resourceType")
    if not isinstance(resource_type, str):
        raise MappingError(Reason.MALFORMED_BUNDLE, "Bundle.resourceType")
    if resource_type != BUNDLE:
        raise MappingError(Reason.WRONG_RESOURCE_TYPE, "Bundle.resourceType")
    if document.get("type") not in MAPPED_BUNDLE_TYPES:
        raise MappingError(Reason.WRONG_RESOURCE_TYPE, "Bundle.type")
    return [entry_of(item.get("resource"), item.get("fullUrl")) for item in _entries(document)]


def _entries(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    try:
        items = optional(document, "entry", list, "Bundle") or []
    except MappingError:
        raise MappingError(Reason.MALFORMED_BUNDLE, "Bundle.entry") from None
    if not all(isinstance(item, dict) for item in items):
        raise MappingError(Reason.MALFORMED_BUNDLE, "Bundle.entry")
    return items


class EntryIndex:
    """The entries of one record, by every name a reference may use."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = list(entries)
        self._by_name: dict[str, Entry] = {}
        for entry in self.entries:
            for name in (entry.full_url, entry.local_name):
                if name is None:
                    continue
                if name in self._by_name:
                    raise MappingError(Reason.DUPLICATE_RESOURCE, f"{entry.resource_type}.id")
                self._by_name[name] = entry

    def of_type(self, resource_type: str) -> list[Entry]:
        """The entries of one resource type, in bundle order."""
        return [entry for entry in self.entries if entry.resource_type == resource_type]

    def resolve(self, reference: str, expected_type: str, location: str) -> Entry:
        """The entry ``reference`` names; ``DANGLING_REFERENCE`` when none of ``expected_type``."""
        entry = self._by_name.get(reference)
        if entry is None:
            parts = reference.rstrip("/").split("/")
            if len(parts) >= 2:
                entry = self._by_name.get("/".join(parts[-2:]))
        if entry is None or entry.resource_type != expected_type:
            raise MappingError(Reason.DANGLING_REFERENCE, location)
        return entry
