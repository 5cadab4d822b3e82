"""Each function's environment is exactly what its settings module says its stack sets.

The names live in ``lambdas/<function>/settings.py`` (``ENVIRONMENT``); the stacks build the
environment through it. This test reads the synthesized templates, so a variable added to a
function any other way (a misspelt name, a stray ``add_environment``) fails here too.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from lambdas.environment import PLATFORM_NAMES, EnvironmentNames, SettingsError
from tests.stacks.conftest import Synthesized

HANDLER = re.compile(r"^lambdas\.(\w+)\.app\.lambda_handler$")
LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
#: Every function folder (one with an ``app.py``): each must be deployed and declared.
FUNCTION_FOLDERS = sorted(path.parent.name for path in LAMBDAS.glob("*/app.py"))


def _platform_functions(synthesized: Synthesized) -> dict[str, list[dict[str, Any]]]:
    """Folder -> the environment variables of each function deployed from it."""
    found: dict[str, list[dict[str, Any]]] = {}
    for template in synthesized.templates.values():
        for resource in template.find_resources("AWS::Lambda::Function").values():
            properties = resource["Properties"]
            match = HANDLER.match(str(properties.get("Handler", "")))
            if match is None:
                continue  # CDK's own providers (custom resources), not ours
            variables = properties.get("Environment", {}).get("Variables", {})
            found.setdefault(match.group(1), []).append(variables)
    return found


def _declared(folder: str) -> EnvironmentNames:
    settings = importlib.import_module(f"lambdas.{folder}.settings")
    names = settings.ENVIRONMENT
    assert isinstance(names, EnvironmentNames), folder
    return names


def test_every_function_of_the_dev_stage_sets_exactly_its_declared_names(
    dev: Synthesized,
) -> None:
    functions = _platform_functions(dev)
    assert sorted(functions) == FUNCTION_FOLDERS
    for folder, environments in functions.items():
        declared = _declared(folder)
        for variables in environments:
            own = set(variables) - PLATFORM_NAMES
            assert set(variables) >= PLATFORM_NAMES, folder
            assert declared.required <= own, (folder, sorted(declared.required - own))
            assert own <= declared.names, (folder, sorted(own - declared.names))


def test_the_builder_refuses_a_misspelt_or_forgotten_name() -> None:
    names = EnvironmentNames.of(required=("TABLE", "KEY"), optional=("ORIGIN",))
    assert names.environment({"TABLE": "t", "KEY": "k"}) == {"TABLE": "t", "KEY": "k"}
    with pytest.raises(SettingsError, match="unknown \\['TABEL'\\]"):
        names.environment({"TABEL": "t", "KEY": "k"})
    with pytest.raises(SettingsError, match="missing \\['KEY'\\]"):
        names.environment({"TABLE": "t"})
    assert names.subset({"ORIGIN": "o"}) == {"ORIGIN": "o"}
    with pytest.raises(SettingsError, match="ORIGN"):
        names.subset({"ORIGN": "o"})


def test_a_name_cannot_be_both_required_and_optional_or_a_platform_name() -> None:
    with pytest.raises(SettingsError, match="TABLE"):
        EnvironmentNames.of(required=("TABLE",), optional=("TABLE",))
    with pytest.raises(SettingsError, match="POWERTOOLS_SERVICE_NAME"):
        EnvironmentNames.of(required=("POWERTOOLS_SERVICE_NAME",))
