"""The stage configuration refuses keys it does not know, at every level, by their full path.

A misspelled ``trainng`` used to load (its section read as missing only if required, an
optional key's typo was silently ignored); now every unknown key fails synthesis naming it.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from stacks.config import (
    ConfigError,
    FairnessConfig,
    FederationConfig,
    TrainingConfig,
    load_pipeline_config,
    load_stage_config,
)
from tests.stacks.cdk_helpers import cdk_context

CONTEXT = cdk_context()


def _sections(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every object (mapping) under ``value``, lists' items included."""
    if isinstance(value, dict):
        yield path
        for key, child in value.items():
            yield from _sections(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _sections(child, (*path, index))


SECTIONS = [
    (stage, path) for stage in ("dev", "prod") for path in _sections(CONTEXT["stages"][stage])
]


def _at(context: dict[str, Any], stage: str, path: tuple[str | int, ...]) -> Any:
    section = context["stages"][stage]
    for key in path:
        section = section[key]
    return section


def _dotted(stage: str, path: tuple[str | int, ...], key: str) -> str:
    return ".".join(["context", "stages", stage, *map(str, path), key]).replace(".", r"\.")


def test_every_level_of_both_stages_is_covered() -> None:
    paths = {path for _, path in SECTIONS}
    assert {(), ("training",), ("rollout", "shadow", "bounds"), ("cds_hooks", "issuers", 0)} <= (
        paths
    )
    assert ("worklist", "federation") in paths  # prod's SAML federation
    assert len(SECTIONS) > 30


@pytest.mark.parametrize(("stage", "path"), SECTIONS)
def test_an_unknown_key_is_refused_at_every_level(stage: str, path: tuple[str | int, ...]) -> None:
    context = copy.deepcopy(CONTEXT)
    _at(context, stage, path)["unexpected_setting"] = 1
    with pytest.raises(
        ConfigError, match=rf"^{_dotted(stage, path, 'unexpected_setting')} is not a known key"
    ):
        load_stage_config(context, stage)


@pytest.mark.parametrize(("stage", "path"), SECTIONS)
def test_a_misspelled_key_is_named_with_the_key_it_stands_for(
    stage: str, path: tuple[str | int, ...]
) -> None:
    """Misspell the section's first key (drop its second letter): the error names the typo,
    not only the now-missing key, and suggests the right one."""
    context = copy.deepcopy(CONTEXT)
    section = _at(context, stage, path)
    key = next(iter(section))
    typo = key[0] + key[2:]
    section[typo] = section.pop(key)
    with pytest.raises(ConfigError, match=rf"^{_dotted(stage, path, typo)} is not a known key"):
        load_stage_config(context, stage)
    with pytest.raises(ConfigError, match=rf"did you mean '{key}'\?$"):
        load_stage_config(context, stage)


def test_the_issue_example_trainng_is_refused() -> None:
    context = copy.deepcopy(CONTEXT)
    context["stages"]["dev"]["trainng"] = context["stages"]["dev"].pop("training")
    with pytest.raises(
        ConfigError,
        match=r"^context\.stages\.dev\.trainng is not a known key \(known: .*training.*\); "
        r"did you mean 'training'\?$",
    ):
        load_stage_config(context, "dev")


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ((), "project"),
        ((), "stage"),
        ((), "registry_reader_accounts"),
        (("batch_scoring",), "budget_share"),
        (("cds_hooks",), "worklist_page_url"),
    ],
)
def test_keys_derived_from_elsewhere_are_not_settings_of_the_file(
    path: tuple[str, ...], key: str
) -> None:
    context = copy.deepcopy(CONTEXT)
    _at(context, "dev", path)[key] = "x"
    with pytest.raises(ConfigError, match=rf"{_dotted('dev', path, key)} is not a setting"):
        load_stage_config(context, "dev")


def test_the_worklist_page_url_is_checked_where_it_is_set() -> None:
    context = copy.deepcopy(CONTEXT)
    context["stages"]["dev"]["worklist"]["page_url"] = "http://worklist"
    with pytest.raises(
        ConfigError, match=r"^context\.stages\.dev\.worklist\.page_url='http://worklist' does"
    ):
        load_stage_config(context, "dev")
    context["stages"]["dev"]["worklist"]["page_url"] = "https://worklist.example.org/list"
    config = load_stage_config(context, "dev")
    assert config.cds_hooks is not None
    assert config.cds_hooks.worklist_page_url == "https://worklist.example.org/list"


@pytest.mark.parametrize(
    ("federation", "message"),
    [
        ({"type": "saml", "name": "H"}, r"federation\.metadata_url is missing"),
        (
            {"type": "saml", "name": "H", "metadata_url": "https://idp/m", "client_id": "c"},
            r"federation\.client_id is not a key of saml federation",
        ),
        (
            {"type": "oidc", "name": "H", "issuer_url": "https://idp", "client_id": "c"},
            r"federation\.client_secret_name is missing",
        ),
        ({"type": "saml", "name": "H", "metadata": "https://idp/m"}, r"federation\.metadata is"),
    ],
)
def test_a_federation_holds_the_keys_of_its_type(federation: dict[str, Any], message: str) -> None:
    context = copy.deepcopy(CONTEXT)
    context["stages"]["prod"]["worklist"]["federation"] = federation
    with pytest.raises(ConfigError, match=rf"^context\.stages\.prod\.worklist\.{message}"):
        load_stage_config(context, "prod")


def test_an_object_where_a_value_belongs_and_back_are_refused() -> None:
    context = copy.deepcopy(CONTEXT)
    context["stages"]["dev"]["training"] = ["ml.p3.8xlarge"]
    with pytest.raises(
        ConfigError, match=r"^context\.stages\.dev\.training must be an object, got list$"
    ):
        load_stage_config(context, "dev")
    context = copy.deepcopy(CONTEXT)
    context["stages"]["dev"]["training"]["instance_type"] = {"type": "ml.p3.8xlarge"}
    with pytest.raises(ConfigError, match=r"instance_type must be str, got dict$"):
        load_stage_config(context, "dev")


def test_the_pipeline_section_refuses_unknown_keys_even_while_off() -> None:
    context = copy.deepcopy(CONTEXT)
    context["pipeline"]["brnach"] = "main"
    with pytest.raises(ConfigError, match=r"^context\.pipeline\.brnach is not a known key"):
        load_pipeline_config(context)
    context = copy.deepcopy(CONTEXT)
    context["pipeline"]["dev"]["acount"] = "111111111111"
    context["pipeline"].update(
        enabled=True,
        connection_arn="arn:aws:codeconnections:eu-west-1:111111111111:connection/"
        "00000000-0000-0000-0000-000000000000",
        prod={"account": "222222222222", "region": "eu-west-1"},
    )
    with pytest.raises(ConfigError, match=r"^context\.pipeline\.dev\.acount is not a known key"):
        load_pipeline_config(context)


def test_sections_validate_on_construction_and_stay_frozen() -> None:
    """Code that builds a section (a test, the local platform) gets the same checks."""
    training = load_stage_config(CONTEXT, "dev").training
    assert dataclasses.replace(training, instance_count=2).instance_count == 2
    with pytest.raises(ValueError, match="outside"):
        dataclasses.replace(training, instance_count=0)
    with pytest.raises(ValueError, match="int"):
        TrainingConfig("ml.m5.large", "2", True, 1, 0.6, 0.1)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        training.instance_count = 2  # type: ignore[misc]
    with pytest.raises(ValueError, match="metadata_url is missing"):
        FederationConfig("saml", "Hospital")


def test_fairness_minimums_are_a_rule_of_the_stage_not_of_the_class() -> None:
    """The demo builds a small population on purpose; a stage may not deploy one."""
    small = FairnessConfig(30, 0.1, 0.05, 0.1, min_patients=100, min_outcomes=10)
    assert small.min_outcomes == 10
    context = copy.deepcopy(CONTEXT)
    context["stages"]["dev"]["fairness"]["min_outcomes"] = 10
    with pytest.raises(ConfigError, match=r"fairness\.min_outcomes=10 is below"):
        load_stage_config(context, "dev")
