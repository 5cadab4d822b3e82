"""The stage's alert budget: read from cdk.json, checked, and passed to the training job."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from stacks.components.training_pipeline import training_job_state
from stacks.config import ConfigError, load_stage_config
from tests.stacks.cdk_helpers import cdk_context
from training import job_spec
from training.config import HyperParameters


@pytest.fixture
def context() -> dict[str, Any]:
    return copy.deepcopy(cdk_context())


def test_both_stages_set_a_budget(context: dict[str, Any]) -> None:
    for stage in ("dev", "prod"):
        assert load_stage_config(context, stage).training.alert_budget == 0.1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, r"alert_budget=0\.0 is outside \[0\.001, 1\.0\]"),
        (1.2, r"alert_budget=1\.2 is outside"),
        ("10%", "alert_budget must be float, got str"),
        (True, "alert_budget must be float, got bool"),
    ],
)
def test_a_bad_budget_fails_synthesis_by_its_path(
    context: dict[str, Any], value: object, message: str
) -> None:
    context["stages"]["prod"]["training"]["alert_budget"] = value
    with pytest.raises(ConfigError, match=r"^context\.stages\.prod\.training\." + message):
        load_stage_config(context, "prod")
    del context["stages"]["prod"]["training"]["alert_budget"]
    with pytest.raises(ConfigError, match=r"training\.alert_budget is missing$"):
        load_stage_config(context, "prod")


def _train_state(context: dict[str, Any], budget: float) -> dict[str, Any]:
    training = dataclasses.replace(load_stage_config(context, "dev").training, alert_budget=budget)
    return training_job_state(
        image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/training:1",
        role_arn="arn:aws:iam::123456789012:role/training",
        source_uri="s3://artifacts/source/sourcedir.tar.gz",
        source_archive="sourcedir.tar.gz",
        region="eu-west-1",
        features_uri="s3://curated/features",
        protected_uri="s3://curated/protected",
        output_uri="s3://artifacts/training",
        key_arn="arn:aws:kms:eu-west-1:123456789012:key/1",
        training=training,
        subnet_ids=["subnet-0123456789abcdef0"],
        security_group_ids=["sg-0123456789abcdef0"],
    )


@pytest.mark.parametrize("budget", [0.1, 0.2])
def test_the_pipeline_passes_the_stage_budget_as_a_hyperparameter(
    context: dict[str, Any], budget: float
) -> None:
    """CreateTrainingJob's HyperParameters is a string-to-string map: the budget as text.

    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html
    """
    hyper = _train_state(context, budget)["Parameters"]["HyperParameters"]
    assert hyper[job_spec.ALERT_BUDGET_HYPERPARAMETER] == str(budget)
    assert all(isinstance(value, str) for value in hyper.values())


def test_the_hyperparameter_is_a_training_setting() -> None:
    names = {field.name for field in dataclasses.fields(HyperParameters)}
    assert job_spec.ALERT_BUDGET_HYPERPARAMETER in names
    with pytest.raises(ValueError, match="alert budget"):
        job_spec.stage_hyperparameters(0.0)
