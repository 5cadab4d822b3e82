"""The registrar against moto: evaluation out of model.tar.gz, the quality gate, registration."""

from __future__ import annotations

import io
import json
import re
import tarfile
from typing import Any

import boto3
import pytest

from contracts.model_artifact import CODE_DIR, EVALUATION_FILE, SERVING_ENTRY, WEIGHTS_FILE
from lambdas.registrar import app as registrar_app
from lambdas.registrar import registration
from lambdas.registrar.settings import RegistrarSettings, SettingsError
from tests.lambdas.conftest import REGION

BUCKET = "artifacts"
MODEL_KEY = "training/readmission-dev-train-1/output/model.tar.gz"
MODEL_URL = f"s3://{BUCKET}/{MODEL_KEY}"
GROUP = "readmission-dev-models"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
ENV = {
    "MODEL_PACKAGE_GROUP_NAME": GROUP,
    "INFERENCE_IMAGE_URI": IMAGE,
    "ENDPOINT_INSTANCE_TYPE": "ml.m5.large",
    "MIN_TEST_AUROC": "0.6",
    "KMS_KEY_ARN": KEY_ARN,
}
SETTINGS = RegistrarSettings.from_env(ENV)


def evaluation(test_auroc: float | None = 0.71, baseline_auroc: float | None = 0.66) -> dict:
    """The parts of training/evaluation.py's report the gate reads, plus a registry block."""
    report: dict[str, Any] = {
        "binary_classification_metrics": {"auc": {"value": test_auroc}},
        "test": {"auroc": test_auroc, "n": 1200},
        "threshold": 0.31,
    }
    if baseline_auroc is not None:
        report["baseline"] = {"model": "logistic_regression", "auroc": baseline_auroc}
    return report


def model_archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def s3(mocked_aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def sagemaker(mocked_aws: None) -> Any:
    client = boto3.client("sagemaker", region_name=REGION)
    client.create_model_package_group(ModelPackageGroupName=GROUP)
    return client


def put_model(s3: Any, report: dict | None, *, prefix: str = "./") -> None:
    files = {
        f"{prefix}{WEIGHTS_FILE}": b"\x00" * 64,
        f"{prefix}{CODE_DIR}/{SERVING_ENTRY}": b"pass\n",
    }
    if report is not None:
        files[f"{prefix}{EVALUATION_FILE}"] = json.dumps(report).encode()
    s3.put_object(Bucket=BUCKET, Key=MODEL_KEY, Body=model_archive(files))


def test_evaluation_is_read_from_the_archive_and_stored_beside_it(s3: Any) -> None:
    put_model(s3, evaluation())
    result = registration.evaluate(s3, SETTINGS, MODEL_URL, "readmission-dev-train-1")
    assert result == {
        "passed": True,
        "test_auroc": 0.71,
        "baseline_auroc": 0.66,
        "min_test_auroc": 0.6,
        "reasons": [],
        "evaluation_s3_uri": f"s3://{BUCKET}/training/readmission-dev-train-1/output/{EVALUATION_FILE}",
        "model_data_url": MODEL_URL,
        "training_job_name": "readmission-dev-train-1",
    }
    stored = s3.get_object(
        Bucket=BUCKET, Key=f"training/readmission-dev-train-1/output/{EVALUATION_FILE}"
    )
    assert json.loads(stored["Body"].read()) == evaluation()
    assert stored["ContentType"] == "application/json"
    assert stored["ServerSideEncryption"] == "aws:kms"


def test_archive_members_without_a_dot_prefix_are_found(s3: Any) -> None:
    put_model(s3, evaluation(), prefix="")
    assert registration.read_evaluation(s3, MODEL_URL) == evaluation()


@pytest.mark.parametrize(
    ("test_auroc", "baseline_auroc", "reasons"),
    [
        (0.71, 0.66, ()),
        (0.6, 0.55, ()),
        (0.59, 0.55, ("test AUROC 0.5900 is below the minimum 0.6000",)),
        (0.65, 0.65, ("test AUROC 0.6500 does not beat the logistic baseline 0.6500",)),
        (
            0.58,
            0.61,
            (
                "test AUROC 0.5800 is below the minimum 0.6000",
                "test AUROC 0.5800 does not beat the logistic baseline 0.6100",
            ),
        ),
    ],
)
def test_quality_gate(test_auroc: float, baseline_auroc: float, reasons: tuple[str, ...]) -> None:
    verdict = registration.quality_gate(evaluation(test_auroc, baseline_auroc), 0.6)
    assert verdict.passed is (not reasons)
    assert verdict.reasons == reasons


@pytest.mark.parametrize(
    ("report", "field"),
    [
        (evaluation(test_auroc=None), "test.auroc"),
        (evaluation(baseline_auroc=None), "baseline.auroc"),
        ({"test": {"auroc": "0.7"}, "baseline": {"auroc": 0.6}}, "test.auroc"),
        ({"test": {"auroc": float("nan")}, "baseline": {"auroc": 0.6}}, "test.auroc"),
        ({"test": {"auroc": True}, "baseline": {"auroc": 0.6}}, "test.auroc"),
    ],
)
def test_an_unusable_report_fails_naming_the_field(report: dict, field: str) -> None:
    with pytest.raises(
        registration.RegistrationError, match=rf"{re.escape(EVALUATION_FILE)}: {field} must"
    ):
        registration.quality_gate(report, 0.6)


def test_an_archive_without_a_report_is_refused(s3: Any) -> None:
    put_model(s3, None)
    with pytest.raises(registration.RegistrationError, match=r"holds no evaluation\.json"):
        registration.read_evaluation(s3, MODEL_URL)


def test_a_corrupt_archive_is_refused(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=MODEL_KEY, Body=b"not a tarball")
    with pytest.raises(registration.RegistrationError, match=r"not a readable tar\.gz"):
        registration.read_evaluation(s3, MODEL_URL)


def test_register_creates_a_pending_version_with_the_report_as_quality_metrics(
    s3: Any, sagemaker: Any
) -> None:
    put_model(s3, evaluation())
    gated = registration.evaluate(s3, SETTINGS, MODEL_URL, "readmission-dev-train-1")
    result = registration.register(sagemaker, SETTINGS, gated, REGION)
    assert result["created"] is True
    package = sagemaker.describe_model_package(ModelPackageName=result["model_package_arn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["ModelPackageGroupName"] == GROUP
    (container,) = package["InferenceSpecification"]["Containers"]
    assert container["Image"] == IMAGE
    assert container["ModelDataUrl"] == MODEL_URL
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == SERVING_ENTRY
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"] == {
        "ContentType": "application/json",
        "S3Uri": gated["evaluation_s3_uri"],
    }
    assert package["CustomerMetadataProperties"]["test_auroc"] == "0.710000"


def test_register_twice_for_one_job_creates_one_version(s3: Any, sagemaker: Any) -> None:
    put_model(s3, evaluation())
    gated = registration.evaluate(s3, SETTINGS, MODEL_URL, "readmission-dev-train-1")
    first = registration.register(sagemaker, SETTINGS, gated, REGION)
    second = registration.register(sagemaker, SETTINGS, gated, REGION)
    assert second == {"model_package_arn": first["model_package_arn"], "created": False}
    listed = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    assert len(listed) == 1


def test_register_refuses_a_model_that_failed_the_gate(s3: Any, sagemaker: Any) -> None:
    put_model(s3, evaluation(0.55, 0.6))
    gated = registration.evaluate(s3, SETTINGS, MODEL_URL, "readmission-dev-train-1")
    assert gated["passed"] is False
    with pytest.raises(registration.RegistrationError, match="did not pass the quality gate"):
        registration.register(sagemaker, SETTINGS, gated, REGION)
    assert (
        sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"] == []
    )


def test_handler_runs_both_steps_as_the_state_machine_calls_them(
    s3: Any, sagemaker: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_REGION", REGION)
    put_model(s3, evaluation())
    gated = registrar_app.lambda_handler(
        {"action": "evaluate", "model_data_url": MODEL_URL, "training_job_name": "job-1"},
        lambda_context,
    )
    assert gated["passed"] is True
    registered = registrar_app.lambda_handler(
        {"action": "register", "evaluation": gated}, lambda_context
    )
    assert registered["model_package_arn"].startswith("arn:aws:sagemaker:us-east-1:")
    with pytest.raises(registration.RegistrationError, match="action must be"):
        registrar_app.lambda_handler({"action": "deploy"}, lambda_context)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"MIN_TEST_AUROC": "high"}, "MIN_TEST_AUROC must be a number"),
        ({"MIN_TEST_AUROC": "0.4"}, r"MIN_TEST_AUROC must lie in \[0.5, 1\]"),
        ({"INFERENCE_IMAGE_URI": ""}, "INFERENCE_IMAGE_URI is not set"),
        ({"MIN_TEST_AUROC": ""}, "MIN_TEST_AUROC is not set"),
    ],
)
def test_settings_fail_naming_the_variable(change: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        RegistrarSettings.from_env({**ENV, **change})
