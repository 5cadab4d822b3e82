"""Each stage's app, synthesized once per session with cdk-nag attached, and its templates.

Synthesis is the slow part of a CDK test (about half a minute per stage here), so the
compliance test and every per-stack test share one synthesis per stage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, cx_api
from aws_cdk.assertions import Match, Template

from app import build_app
from stacks.config import StageConfig, load_stage_config
from tests.stacks.cdk_helpers import app_for_stage, cdk_context


@dataclass(frozen=True)
class Synthesized:
    """One stage's app, its cloud assembly and each stack's template by short name."""

    app: App
    assembly: cx_api.CloudAssembly
    templates: dict[str, Template]

    def __getitem__(self, name: str) -> Template:
        return self.templates[name]


def synthesize(stage: str, outdir: Path) -> Synthesized:
    """Build the stage as ``cdk synth`` does (cdk-nag included) and synthesize it once."""
    app = build_app(app_for_stage(stage, str(outdir)))
    assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
    prefix = f"Readmission-{stage}-"
    templates = {
        stack.stack_name.removeprefix(prefix): Template.from_json(stack.template)
        for stack in assembly.stacks
    }
    return Synthesized(app, assembly, templates)


@pytest.fixture(scope="session")
def dev_config() -> StageConfig:
    return load_stage_config(cdk_context(), "dev")


@pytest.fixture(scope="session")
def prod_config() -> StageConfig:
    return load_stage_config(cdk_context(), "prod")


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize("dev", tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize("prod", tmp_path_factory.mktemp("cdk-prod"))


def only(template: Template, resource_type: str, props: dict[str, Any] | None = None) -> Any:
    """The properties of the single resource of ``resource_type`` (matching ``props``)."""
    found = template.find_resources(
        resource_type, {"Properties": Match.object_like(props)} if props else None
    )
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return next(iter(found.values())).get("Properties", {})


def flatten(value: Any) -> str:
    """A CloudFormation value as text: ``Fn::Join`` joined, other intrinsics as ``<ref>``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return str(value["Fn::Sub"])
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return str(delimiter).join(flatten(part) for part in parts)
    return "<ref>"


def state_machine_definition(template: Template) -> dict[str, Any]:
    """The parsed Amazon States Language definition of the template's state machine."""
    machine = only(template, "AWS::StepFunctions::StateMachine")
    return json.loads(flatten(machine["DefinitionString"]))


def as_list(value: Any) -> list[Any]:
    """A policy element (``Action``, ``Resource``) that may be one value or a list, as a list."""
    return value if isinstance(value, list) else [value]


def statements(template: Template, role_logical_id_part: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to roles whose logical id contains the part."""
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = [r.get("Ref", "") for r in policy["Properties"].get("Roles", [])]
        if any(role_logical_id_part in role for role in roles):
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found
