"""Shared contracts of the readmission platform.

This package is the single source of truth for the canonical encounter schema, the
de-identification rule and the patient-level split. It has no third-party dependencies so
that it can be packaged unchanged into every artifact that needs it: the Glue job's
``--extra-py-files`` zip, the training source, the model's ``code/`` folder and each Lambda.
"""

from contracts.deidentify import keyed_hash, split_for_patient_key
from contracts.encounter import (
    ENCOUNTER_FIELDS,
    SCHEMA_VERSION,
    FieldKind,
    FieldSpec,
    field,
    model_input_fields,
)

__all__ = [
    "ENCOUNTER_FIELDS",
    "SCHEMA_VERSION",
    "FieldKind",
    "FieldSpec",
    "field",
    "keyed_hash",
    "model_input_fields",
    "split_for_patient_key",
]
