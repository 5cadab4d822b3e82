"""Smoke test of ``main()``: a tiny run writes a complete, loadable artifact and sane metrics."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from contracts.model_artifact import (
    CALIBRATION_FILE,
    DRIFT_BASELINE_FILE,
    EVALUATION_FILE,
    FEATURE_SPEC_FILE,
    METADATA_FILE,
    MODEL_CARD_FILE,
)
from inference.encoding import FeatureEncoder
from inference.model import load_model
from training import artifact
from training.calibration import calibrated
from training.data import read_records
from training.metrics import METRIC_DEFINITIONS, auroc
from training.train import main


@pytest.fixture(scope="module")
def smoke_run(
    notes_dataset: Path,
    run_args: Callable[..., list[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("smoke")
    main(run_args(notes_dataset, out, "--epochs", "2", "--max-steps", "6", "--batch-size", "32"))
    return notes_dataset, out


def test_artifact_is_complete(smoke_run: tuple[Path, Path]) -> None:
    _, out = smoke_run
    model_dir = out / "model"
    assert artifact.missing_files(model_dir) == []
    assert (model_dir / "notes_tokenizer.json").is_file()  # the notes encoder switched on
    assert (
        model_dir / "code" / artifact.INFERENCE_ENTRY
    ).read_text() == artifact.INFERENCE_ENTRY_SOURCE
    requirements = (model_dir / "code" / "requirements.txt").read_text()
    assert "transformers==5.23.0" in requirements
    spec = json.loads((model_dir / FEATURE_SPEC_FILE).read_text())
    assert spec["fields"]["text"] == ["note_text"]
    card = (model_dir / MODEL_CARD_FILE).read_text()
    assert card.count("data:image/png;base64,") == 4  # ROC, PR, calibration, decision curve
    assert "<h2>Alert budget</h2>" in card
    assert "<h2>Decision curve</h2>" in card
    assert "<script" not in card  # self-contained: no scripts, no links
    assert "http" not in card


def test_artifact_reloads_and_reproduces_the_reported_test_auroc(
    smoke_run: tuple[Path, Path],
) -> None:
    features, out = smoke_run
    model_dir = out / "model"
    encoder = FeatureEncoder.load(model_dir)
    model = load_model(model_dir)
    calibration = json.loads((model_dir / CALIBRATION_FILE).read_text())
    records = read_records(features / "split=test")
    import torch

    with torch.inference_mode():
        tensors = {k: torch.from_numpy(v) for k, v in encoder.encode(records).arrays().items()}
        logits = model(**tensors).numpy().astype(np.float64)
    p = calibrated(logits - calibration["logit_offset"], calibration["temperature"])
    y = np.array([r["readmitted_30d"] for r in records], dtype=float)
    evaluation = json.loads((model_dir / EVALUATION_FILE).read_text())
    assert auroc(y, p) == pytest.approx(evaluation["test"]["auroc"], abs=1e-6)
    assert evaluation["binary_classification_metrics"]["auc"]["value"] == pytest.approx(
        auroc(y, p), abs=1e-6
    )
    assert 0.0 < calibration["threshold"] < 1.0
    assert calibration["threshold_target"] == "alert_budget"  # the default rule
    assert calibration["threshold_target_value"] == calibration["alert_budget"] == 0.1


def test_metrics_and_evaluation_are_well_formed(smoke_run: tuple[Path, Path]) -> None:
    _, out = smoke_run
    metrics = json.loads((out / "output" / "metrics.json").read_text())
    assert set(metrics) >= {"validation", "test", "baseline", "threshold", "training"}
    for block in ("validation", "test", "baseline"):
        for name in ("auroc", "auprc", "brier", "ece", "precision", "recall", "f1", "alert_rate"):
            value = metrics[block][name]
            assert isinstance(value, float), (block, name)
            assert 0.0 <= value <= 1.0, (block, name)
    assert metrics["training"]["steps"] == 6
    evaluation = json.loads((out / "model" / EVALUATION_FILE).read_text())
    auc = evaluation["binary_classification_metrics"]["auc"]
    assert set(auc) == {"value", "standard_deviation"}
    assert auc["standard_deviation"] > 0
    assert set(evaluation["subgroups"]) == {"sex", "age_band", "race"}
    budget = evaluation["alert_budget"]
    assert budget["budget"] == 0.1
    assert budget["overall"]["alerts"] == math.ceil(0.1 * budget["overall"]["n"] - 1e-9)
    assert set(budget["subgroups"]) == set(evaluation["intervals"]["subgroups"]) == {
        "sex", "age_band", "race",
    }  # fmt: skip
    assert evaluation["intervals"]["resamples"] == 1000
    assert len(evaluation["decision_curve"]["model"]) == 50
    baseline = json.loads((out / "model" / DRIFT_BASELINE_FILE).read_text())
    train_rows = json.loads((out / "model" / METADATA_FILE).read_text())["training_data"]["rows"][
        "train"
    ]
    assert baseline["record_count"] == train_rows
    assert sum(baseline["prediction_score"]["counts"]) == train_rows


def test_printed_metrics_match_the_job_metric_definitions(
    notes_dataset: Path,
    run_args: Callable[..., list[str]],
    smoke_run: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out = smoke_run
    # Same settings and checkpoint folder: the finished run resumes and trains no further.
    result = main(
        run_args(notes_dataset, out, "--epochs", "2", "--max-steps", "6", "--batch-size", "32")
    )
    printed = capsys.readouterr().out
    assert result is not None
    assert result.outcome.resumed
    assert result.outcome.steps == 6
    assert "resumed from checkpoint" in printed
    found = {}
    for definition in METRIC_DEFINITIONS:
        for line in printed.splitlines():
            match = re.search(definition["Regex"], line)
            if match:
                found[definition["Name"]] = float(match.group(1))
    assert {"test:auroc", "test:brier", "baseline:auroc", "validation:auroc"} <= set(found)
    assert found["test:alert_budget_ppv"] == pytest.approx(
        json.loads((out / "model" / EVALUATION_FILE).read_text())["alert_budget"]["overall"]["ppv"],
        abs=1e-6,
    )
    assert found["test:auroc"] == pytest.approx(result.metrics["test"]["auroc"], abs=1e-6)
    assert all(math.isfinite(v) for v in found.values())


def test_serving_container_finds_the_hooks_the_way_the_toolkit_imports_them(
    smoke_run: tuple[Path, Path],
) -> None:
    """The PyTorch serving toolkit puts code/ on sys.path and imports SAGEMAKER_PROGRAM's stem."""
    import subprocess
    import sys

    from lambdas.registrar.registration import SERVING_ENVIRONMENT

    program = SERVING_ENVIRONMENT["SAGEMAKER_PROGRAM"]
    assert program == artifact.INFERENCE_ENTRY
    code_dir = smoke_run[1] / "model" / "code"
    probe = (
        "import importlib, sys; sys.path.insert(0, sys.argv[1]); "
        f"m = importlib.import_module({program.removesuffix('.py')!r}); "
        "hooks = ('model_fn', 'input_fn', 'predict_fn', 'output_fn'); "
        "print(sorted(h for h in hooks if callable(getattr(m, h, None))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(code_dir)],
        cwd=code_dir,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['input_fn', 'model_fn', 'output_fn', 'predict_fn']"


def test_evaluation_holds_the_global_factor_importance_of_the_validation_split(
    smoke_run: tuple[Path, Path],
) -> None:
    features, out = smoke_run
    explained = json.loads((out / "model" / "evaluation.json").read_text())["explainability"]
    validation_rows = len(read_records(features / "split=validation"))
    assert explained["split"] == "validation"
    assert explained["records_explained"] == min(validation_rows, 2000)
    factors = explained["factors"]
    assert factors, "the serving explanation found no factor over the validation split"
    sizes = [row["mean_absolute_contribution"] for row in factors]
    assert sizes == sorted(sizes, reverse=True)
    assert all(size > 0 for size in sizes)
    assert not any(" = " in row["factor"] for row in factors)  # no patient's value


def test_the_registrar_registers_this_model_with_a_card_sagemaker_accepts(
    smoke_run: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real training output, through the registrar, into a request botocore's service
    model and the SDK's card shapes accept (moto alone would accept anything)."""
    import tarfile

    import boto3
    from moto import mock_aws

    from lambdas.registrar import registration, validation
    from lambdas.registrar.settings import RegistrarSettings

    _, out = smoke_run
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted((out / "model").rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(out / "model").as_posix())
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    settings = RegistrarSettings.from_env(
        {
            "MODEL_PACKAGE_GROUP_NAME": "models",
            "INFERENCE_IMAGE_URI": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serving:t",
            "ENDPOINT_INSTANCE_TYPE": "ml.m5.large",
            "MIN_TEST_AUROC": "0.5",
            "KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/1",
            "MANIFEST_S3_URI": "s3://curated/manifest.json",
            "TRAINING_IMAGE_TAG": "2.6.0-cpu-py312-0123456789abcdef",
        }
    )
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        s3.upload_file(str(archive), "artifacts", "training/job-1/output/model.tar.gz")
        url = "s3://artifacts/training/job-1/output/model.tar.gz"
        gated = registration.evaluate(s3, settings, url, "job-1")
        # Six steps of training may not beat the baseline: the gate is not what is under test.
        documents = registration.read_documents(s3, url)
        found = registration.prepare_evidence(
            s3, settings, documents, json.loads(documents["evaluation.json"]),
            gated["evaluation_s3_uri"], url, "job-1",
        )  # fmt: skip
        gated["evidence"] = found
        assert found["bias_s3_uri"]
        assert found["explainability_s3_uri"]
        card = registration.read_card(s3, found["model_card_s3_uri"])
        request = registration.package_request(settings, gated, "us-east-1", card)
        validation.check_request(request)
        assert validation.card_errors(json.loads(card)) == []
