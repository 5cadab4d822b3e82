"""Names two packages share are spelt out once, by their contract; everything else imports them.

A model-directory file name, the manifest's name, the endpoint's variant name or an API
identifier field typed a second time is a rename waiting to break one side.
"""

from __future__ import annotations

import ast
from pathlib import Path

from contracts import encounter, serving
from contracts import model_artifact as ma
from contracts.deployment import VARIANT_NAME
from contracts.drift import BASELINE_FILE_NAME
from contracts.etl_manifest import MANIFEST_FILE

ROOT = Path(__file__).resolve().parents[2]
SOURCE_PACKAGES = (
    "contracts",
    "training",
    "inference",
    "lambdas",
    "local_platform",
    "benchmarks",
    "scripts",
    "stacks",
    "glue_jobs",
    "worklist",
    "tools",
    "fhir_mapping",
)
#: Name -> the one module allowed to spell it out.
SHARED_NAMES = {
    **dict.fromkeys(
        (
            ma.CALIBRATION_FILE,
            ma.FEATURE_SPEC_FILE,
            ma.METADATA_FILE,
            ma.EVALUATION_FILE,
            ma.MODEL_CARD_FILE,
            ma.ENCODER_FILE,
            ma.NOTES_TOKENIZER_FILE,
            ma.MODEL_CONFIG_FILE,
            ma.WEIGHTS_FILE,
            ma.SERVING_ENTRY,
        ),
        "contracts/model_artifact.py",
    ),
    BASELINE_FILE_NAME: "contracts/drift.py",
    MANIFEST_FILE: "contracts/etl_manifest.py",
    VARIANT_NAME: "contracts/deployment.py",
}
#: The API's raw identifier fields. Not checked in ``glue_jobs`` (UCI's own ``encounter_id``
#: column is a source column of the same spelling) nor in ``scripts/smoke_test.py``, which runs
#: on its own outside the repository (its test validates its encounter against the API's model).
IDENTIFIER_FIELDS = {serving.PATIENT_ID, serving.ENCOUNTER_ID}
IDENTIFIER_EXEMPT = ("contracts/serving.py", "glue_jobs/", "scripts/smoke_test.py")
#: The de-identified keys, named by ``contracts.encounter``. The Spark transforms of
#: ``glue_jobs`` still spell them as column names (left to the ETL's owners; listed in the
#: report of this change).
KEY_FIELDS = {encounter.PATIENT_KEY, encounter.ENCOUNTER_KEY}
KEY_EXEMPT = ("contracts/encounter.py", "glue_jobs/")


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """String constants of a module that are not docstrings (f-string parts included)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _modules() -> list[tuple[str, Path]]:
    return [
        (path.relative_to(ROOT).as_posix(), path)
        for package in SOURCE_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    ]


def test_each_shared_name_is_spelt_out_only_by_its_contract() -> None:
    offenders = []
    for relative, path in _modules():
        for line, text in _string_literals(path):
            for name, owner in SHARED_NAMES.items():
                spelt = text == name or text.endswith((f"/{name}", f".{name}"))
                if spelt and relative != owner:
                    offenders.append(f"{relative}:{line} {text!r}")
    assert offenders == []


def _spelt_outside(names: set[str], exempt: tuple[str, ...]) -> list[str]:
    """Where a literal equal to one of ``names`` stands outside the ``exempt`` path prefixes."""
    return [
        f"{relative}:{line} {text!r}"
        for relative, path in _modules()
        if not relative.startswith(exempt)
        for line, text in _string_literals(path)
        if text in names
    ]


def test_the_api_identifier_fields_are_spelt_out_only_by_the_serving_contract() -> None:
    assert _spelt_outside(IDENTIFIER_FIELDS, IDENTIFIER_EXEMPT) == []


def test_lambda_variable_names_are_spelt_out_only_by_the_settings_that_read_them() -> None:
    """The stacks, the local platform and the benchmarks import them (``ENVIRONMENT``)."""
    import importlib

    folders = sorted(path.parent.name for path in (ROOT / "lambdas").glob("*/app.py"))
    variables = set().union(
        *(importlib.import_module(f"lambdas.{f}.settings").ENVIRONMENT.names for f in folders)
    )
    owners = (
        "lambdas/environment.py",
        "contracts/fairness.py",  # the drift monitor's fairness variables, with their builder
        "lambdas/cds_hooks/service.py",  # the CDS Hooks variables of the predict function
        *(f"lambdas/{folder}/settings.py" for folder in folders),
    )
    # The image build's own variable (CodeBuild -> containers/build.sh, a shell script's
    # contract), which holds the same tag the registrar records and so shares its name.
    other_processes = {("stacks/components/container_images.py", "TRAINING_IMAGE_TAG")}
    offenders = [
        f"{relative}:{line} {text!r}"
        for relative, path in _modules()
        if relative not in owners
        for line, text in _string_literals(path)
        if text in variables and (relative, text) not in other_processes
    ]
    assert offenders == []


def test_the_deidentified_key_fields_are_spelt_out_only_by_the_encounter_contract() -> None:
    assert _spelt_outside(KEY_FIELDS, KEY_EXEMPT) == []
