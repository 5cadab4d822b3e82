"""Arguments: SM_* defaults, SM_HPS, command-line precedence and validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.etl_manifest import MANIFEST_FILE
from training.config import SAGEMAKER_CHECKPOINT_DIR, parse_args


@pytest.fixture
def splits(tmp_path: Path) -> Path:
    for split in ("train", "validation", "test"):
        (tmp_path / "features" / f"split={split}").mkdir(parents=True)
    (tmp_path / "protected" / "split=test").mkdir(parents=True)
    (tmp_path / MANIFEST_FILE).write_text("{}")
    return tmp_path


def test_sagemaker_environment_fills_paths_and_hyperparameters(
    splits: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    features = splits / "features"
    monkeypatch.setenv("SM_TRAINING_ENV", "{}")
    monkeypatch.delenv("SM_CHECKPOINT_DIR", raising=False)
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(features / "split=train"))
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", str(features / "split=validation"))
    monkeypatch.setenv("SM_CHANNEL_TEST", str(features / "split=test"))
    monkeypatch.setenv("SM_MODEL_DIR", "/opt/ml/model")
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")
    monkeypatch.setenv(
        "SM_HPS", json.dumps({"epochs": "3", "batch_size": "512", "baseline": "false"})
    )
    data, hyper = parse_args(["--epochs", "4"])  # the command line wins over SM_HPS
    assert data.train_dir == str(features / "split=train")
    assert data.model_dir == "/opt/ml/model"
    assert data.output_dir == "/opt/ml/output/data"
    assert data.checkpoint_dir == SAGEMAKER_CHECKPOINT_DIR
    assert (hyper.epochs, hyper.batch_size, hyper.baseline) == (4, 512, False)


def test_data_dir_fills_the_three_splits_protected_and_manifest(
    splits: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SM_CHANNEL_TRAIN", "SM_CHANNEL_VALIDATION", "SM_CHANNEL_TEST", "SM_HPS"):
        monkeypatch.delenv(name, raising=False)
    data, _ = parse_args(["--data-dir", str(splits / "features"), "--batch_size", "128"])
    assert data.validation_dir == str(splits / "features" / "split=validation")
    assert data.protected_dir == str(splits / "protected" / "split=test")
    assert data.manifest_path == str(splits / MANIFEST_FILE)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "epochs"),
        (["--threshold-target", "accuracy"], "threshold_target"),
        (["--threshold-target", "alert_rate"], "threshold_target"),  # now --alert-budget
        (["--alert-budget", "0"], "alert_budget"),
        (["--alert-budget", "1.5"], "alert_budget"),
        (["--alert-budget", "ten"], "alert_budget"),
        (["--bootstrap-resamples", "1"], "bootstrap_resamples"),
        (["--batch-size", "many"], "batch_size"),
        (["--baseline", "maybe"], "baseline"),
    ],
)
def test_bad_hyperparameters_are_rejected_by_name(
    splits: Path, argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SM_HPS", raising=False)
    with pytest.raises(ValueError, match=message):
        parse_args(["--data-dir", str(splits / "features"), *argv])


def test_missing_splits_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SM_CHANNEL_TRAIN", "SM_CHANNEL_VALIDATION", "SM_CHANNEL_TEST"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="train_dir is not set"):
        parse_args([])
    with pytest.raises(ValueError, match="train_dir does not exist"):
        parse_args(["--data-dir", str(tmp_path / "nowhere")])


def test_alert_budget_is_the_default_rule_and_sensitivity_an_option(
    splits: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SM_HPS", raising=False)
    features = ["--data-dir", str(splits / "features")]
    _, hyper = parse_args(features)
    assert (hyper.threshold_target, hyper.alert_budget) == ("alert_budget", 0.1)
    assert hyper.threshold_target_value == 0.1
    _, hyper = parse_args([*features, "--alert-budget", "0.2"])
    assert hyper.threshold_target_value == 0.2
    _, hyper = parse_args([*features, "--threshold-target", "sensitivity"])
    assert hyper.threshold_target_value == 0.8  # --threshold-value, the sensitivity target
    assert hyper.alert_budget == 0.1  # still reported at the budget


def test_the_stage_budget_arrives_through_sm_hps(
    splits: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline passes the stage's budget as a string hyperparameter (job_spec)."""
    from training import job_spec

    passed = job_spec.hyperparameters("s.tar.gz", "eu-west-1", job_spec.stage_hyperparameters(0.2))
    user = {k: v for k, v in passed.items() if not k.startswith(job_spec.TOOLKIT_PREFIX)}
    assert user == {"alert_budget": "0.2"}
    monkeypatch.setenv("SM_HPS", json.dumps(user))
    _, hyper = parse_args(["--data-dir", str(splits / "features")])
    assert hyper.alert_budget == 0.2


@pytest.fixture
def features(splits: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.delenv("SM_HPS", raising=False)
    return ["--data-dir", str(splits / "features")]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], (True, True)),
        (["--baseline"], (True, True)),  # a bare flag turns it on
        (["--baseline", "false"], (False, True)),
        (["--baseline", "0", "--tree-blend", "no"], (False, False)),
        (["--no-baseline", "--no_tree_blend"], (False, False)),
        (["--tree_blend", "TRUE"], (True, True)),
    ],
)
def test_boolean_flags_take_text_a_bare_flag_or_a_no_flag(
    features: list[str], argv: list[str], expected: tuple[bool, bool]
) -> None:
    _, hyper = parse_args([*features, *argv])
    assert (hyper.baseline, hyper.tree_blend) == expected


def test_sm_hps_values_are_parsed_as_the_command_line_is(
    features: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SageMaker passes strings; a JSON number or boolean reads the same."""
    monkeypatch.setenv(
        "SM_HPS",
        json.dumps({"baseline": False, "epochs": 3, "learning-rate": "0.002", "tree_blend": "no"}),
    )
    _, hyper = parse_args(features)
    assert (hyper.baseline, hyper.epochs, hyper.learning_rate, hyper.tree_blend) == (
        False,
        3,
        0.002,
        False,
    )
    _, hyper = parse_args([*features, "--baseline", "--epochs", "5"])
    assert (hyper.baseline, hyper.epochs) == (True, 5)  # the command line wins


@pytest.mark.parametrize(
    ("hps", "message"),
    [
        ({"epochs": "3.5"}, "epochs"),
        ({"baseline": "maybe"}, "baseline"),
        ({"threshold_target": "accuracy"}, "threshold_target"),
        ({"epochz": "3"}, r"unknown hyperparameters in SM_HPS: \['epochz'\]"),
    ],
)
def test_bad_sm_hps_values_are_rejected_by_name(
    features: list[str], monkeypatch: pytest.MonkeyPatch, hps: dict[str, str], message: str
) -> None:
    monkeypatch.setenv("SM_HPS", json.dumps(hps))
    with pytest.raises(ValueError, match=message):
        parse_args(features)


def test_the_threshold_target_is_one_of_its_choices(features: list[str]) -> None:
    from training.calibration import THRESHOLD_TARGETS

    for target in THRESHOLD_TARGETS:
        _, hyper = parse_args([*features, "--threshold_target", target])
        assert hyper.threshold_target == target
    with pytest.raises(ValueError, match=r"invalid choice: 'ALERT_BUDGET'"):
        parse_args([*features, "--threshold-target", "ALERT_BUDGET"])


@pytest.mark.parametrize(
    "argv", [["--epoch", "3"], ["--learning-rat", "0.1"], ["--unknown"], ["stray"]]
)
def test_an_unknown_flag_is_refused_by_name(features: list[str], argv: list[str]) -> None:
    with pytest.raises(ValueError, match=r"not used by the HfArgumentParser: \[" + f"'{argv[0]}'"):
        parse_args([*features, *argv])


def test_every_field_keeps_both_spellings_of_its_flag(features: list[str]) -> None:
    """The hand-made bridge accepted --name and --na-me for every field; so does the parser."""
    import dataclasses
    import typing

    from training.config import DataArguments, HyperParameters

    checked = 0
    for position, cls in enumerate((DataArguments, HyperParameters)):
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if hints[field.name] not in (int, float, str) or field.name == "data_dir":
                continue
            default = getattr(parse_args(features)[position], field.name)
            for flag in {f"--{field.name}", f"--{field.name.replace('_', '-')}"}:
                assert getattr(
                    parse_args([*features, flag, str(default)])[position], field.name
                ) == (default), flag
            checked += 1
    assert checked > 40
