"""Coded clinical concepts: every code carries the system it comes from.

From contract 2.0 on, the code-sequence fields hold *system-tagged* codes, ``<system>:<code>``,
for example ``icd10cm:I509`` or ``icd9cm:4280``: one patient's record may mix eras (ICD-9-CM
before October 2015, ICD-10-CM/PCS after), so a bare code is ambiguous (``4019`` and ``E119``
exist in both eras with unrelated meanings). Codes are stored normalised: upper case, without
dots or spaces.

A code without a tag is read as the field's legacy system (ICD-9-CM), which is what every
source and request of contract 1.x carried; see ``docs/data-contract.md``.

Standard library only, like the rest of ``contracts``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

#: Separates the system from the code in a tagged code.
SEPARATOR = ":"


class CodeSystem(StrEnum):
    """The code systems the contract knows, by their tag."""

    #: ICD-9-CM diagnoses (volumes 1-2), US coding until 30 September 2015.
    ICD9CM = "icd9cm"
    #: ICD-9-CM procedures (volume 3).
    ICD9PCS = "icd9pcs"
    #: ICD-10-CM diagnoses, US coding from 1 October 2015.
    ICD10CM = "icd10cm"
    #: ICD-10-PCS inpatient procedures, US coding from 1 October 2015.
    ICD10PCS = "icd10pcs"
    #: National Drug Code (11 digits, 5-4-2, without hyphens).
    NDC = "ndc"
    #: RxNorm concept unique identifier.
    RXNORM = "rxnorm"


#: Systems each code-sequence field may carry, and the system a code without a tag is read as.
FIELD_SYSTEMS: dict[str, tuple[CodeSystem, ...]] = {
    "diagnosis_codes": (CodeSystem.ICD9CM, CodeSystem.ICD10CM),
    "procedure_codes": (CodeSystem.ICD9PCS, CodeSystem.ICD10PCS),
    "medication_codes": (CodeSystem.NDC, CodeSystem.RXNORM),
}
LEGACY_SYSTEM: dict[str, CodeSystem] = {
    "diagnosis_codes": CodeSystem.ICD9CM,
    "procedure_codes": CodeSystem.ICD9PCS,
}

#: The first date on which US inpatient claims are coded in ICD-10-CM/PCS.
ICD10_EFFECTIVE_DATE = "2015-10-01"

# What a normalised code of each system looks like (a shape check, not a code-set lookup).
# ASCII: a Unicode digit (Arabic-Indic, full-width) is no digit of a code.
_SHAPES: dict[CodeSystem, re.Pattern[str]] = {
    CodeSystem.ICD9CM: re.compile(r"^(?:\d{3,5}|V\d{2,4}|E\d{3,4})$", re.ASCII),
    CodeSystem.ICD9PCS: re.compile(r"^\d{2,4}$", re.ASCII),
    CodeSystem.ICD10CM: re.compile(r"^[A-Z]\d[0-9A-Z]{1,5}$", re.ASCII),
    CodeSystem.ICD10PCS: re.compile(r"^[0-9A-HJ-NP-Z]{7}$", re.ASCII),
    CodeSystem.NDC: re.compile(r"^\d{11}$", re.ASCII),
    CodeSystem.RXNORM: re.compile(r"^\d{1,10}$", re.ASCII),
}
_STRIP = re.compile(r"[.\s]")


class CodeError(ValueError):
    """A code that names an unknown system or does not have its system's shape.

    The message names the field and the system, never the code itself (codes are patient data).
    """


@dataclass(frozen=True)
class Code:
    """One code with its system."""

    system: CodeSystem
    code: str

    @property
    def tagged(self) -> str:
        """The contract's string form, ``<system>:<code>``."""
        return f"{self.system}{SEPARATOR}{self.code}"


def normalise(system: CodeSystem, code: str) -> str:
    """Return ``code`` as the contract stores it: upper case, no dots or spaces.

    NDCs also lose their hyphens (the 11-digit form is assumed: a 10-digit NDC's padding
    depends on its 4-4-2/5-3-2/5-4-1 layout, which the hyphens carry; callers convert first).
    """
    value = _STRIP.sub("", code).upper()
    if system is CodeSystem.NDC:
        value = value.replace("-", "")
    return value


def is_well_formed(code: Code) -> bool:
    """Whether a normalised code has its system's shape."""
    return bool(_SHAPES[code.system].match(code.code))


def parse(field_name: str, value: str, *, strict: bool = True) -> Code:
    """Return the code of one entry of a code-sequence field.

    ``icd10cm:I50.9`` gives ``Code(ICD10CM, "I509")``; an entry without a tag is read as the
    field's legacy system (ICD-9). A tag that is not a system of ``field_name`` raises
    ``CodeError``; so does a code without its system's shape, when ``strict``.
    """
    allowed = FIELD_SYSTEMS.get(field_name)
    if allowed is None:
        raise CodeError(f"{field_name} does not hold coded values")
    tag, separator, rest = value.partition(SEPARATOR)
    if separator:
        try:
            system = CodeSystem(tag.strip().lower())
        except ValueError:
            raise CodeError(f"{field_name}: unknown code system") from None
        raw = rest
    else:
        if field_name not in LEGACY_SYSTEM:
            raise CodeError(f"{field_name}: a code must name its system")
        system, raw = LEGACY_SYSTEM[field_name], value
    if system not in allowed:
        raise CodeError(f"{field_name}: code system {system.value} is not allowed here")
    code = Code(system, normalise(system, raw))
    if strict and not is_well_formed(code):
        raise CodeError(f"{field_name}: not a well-formed {system.value} code")
    return code


def tag(system: CodeSystem, code: str) -> str:
    """Return the tagged, normalised form of a code of a known system."""
    return Code(system, normalise(system, code)).tagged
