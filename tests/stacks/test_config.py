"""The stage configuration: both stages load, and every bad key fails fast by its path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stacks.config import ConfigError, load_stage_config
from tests.stacks.cdk_helpers import cdk_context


@pytest.fixture
def context() -> dict[str, Any]:
    return copy.deepcopy(cdk_context())


def test_dev_and_prod_load_with_the_documented_training_compute(context: dict[str, Any]) -> None:
    dev = load_stage_config(context, "dev")
    prod = load_stage_config(context, "prod")
    assert dev.training.instance_type == prod.training.instance_type == "ml.p3.8xlarge"
    assert (dev.training.instance_count, prod.training.instance_count) == (1, 4)
    assert dev.prefix == "readmission-dev"
    assert prod.retention.retain_data_on_delete is True
    assert (dev.training.min_test_auroc, prod.training.min_test_auroc) == (0.6, 0.65)
    assert (dev.etl.worker_count, prod.etl.worker_count) == (2, 10)
    assert dev.etl.source == prod.etl.source == "mimic3"
    assert (dev.images.keep_last, prod.images.keep_last) == (5, 20)
    assert dev.images.build_timeout_minutes == prod.images.build_timeout_minutes == 90


def test_config_is_frozen(context: dict[str, Any]) -> None:
    config = load_stage_config(context, "dev")
    with pytest.raises(AttributeError):
        config.stage = "prod"  # type: ignore[misc]


def test_unknown_stage_names_the_known_ones(context: dict[str, Any]) -> None:
    with pytest.raises(
        ConfigError, match=r"context\.stages\.qa is missing \(known stages: dev, prod\)"
    ):
        load_stage_config(context, "qa")


def test_missing_key_is_reported_with_its_full_path(context: dict[str, Any]) -> None:
    del context["stages"]["prod"]["training"]["instance_count"]
    with pytest.raises(
        ConfigError, match=r"^context\.stages\.prod\.training\.instance_count is missing$"
    ):
        load_stage_config(context, "prod")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("training", "instance_count"), "4", "must be int, got str"),
        (("training", "instance_count"), True, "must be int, got bool"),
        (("training", "instance_count"), 0, r"=0 is outside \[1, 64\]"),
        (("training", "instance_type"), "p3.8xlarge", "does not match"),
        (("endpoint", "data_capture_sampling_percent"), 101, "outside"),
        (("alarms", "feature_psi"), -1, "outside"),
        (("api", "auth"), "none", "must be one of"),
        (("notification_email",), "not-an-email", "does not match"),
        (("retraining_schedule",), "every sunday", "does not match"),
        (("retention", "retain_data_on_delete"), "yes", "must be bool, got str"),
        (("training", "min_test_auroc"), 0.4, r"=0.4 is outside \[0.5, 1.0\]"),
        (("etl", "source"), "synthetic", "must be one of"),
        (("etl", "worker_count"), 1, r"=1 is outside \[2, 299\]"),
        (("etl", "timeout_minutes"), "60", "must be int, got str"),
        (("images", "keep_last"), 1, r"=1 is outside \[2, 1000\]"),
        (("images", "build_timeout_minutes"), 4, r"=4 is outside \[5, 2160\]"),
    ],
)
def test_bad_values_fail_fast(
    context: dict[str, Any], path: tuple[str, ...], value: object, message: str
) -> None:
    section = context["stages"]["dev"]
    for key in path[:-1]:
        section = section[key]
    section[path[-1]] = value
    with pytest.raises(ConfigError, match=message) as error:
        load_stage_config(context, "dev")
    assert f"context.stages.dev.{'.'.join(path)}" in str(error.value)


def test_burst_below_rate_is_rejected(context: dict[str, Any]) -> None:
    context["stages"]["dev"]["api"]["throttle_burst"] = 1
    with pytest.raises(ConfigError, match="throttle_burst must be >= throttle_rate_per_second"):
        load_stage_config(context, "dev")
