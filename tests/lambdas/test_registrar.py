"""The registrar against moto: evaluation out of model.tar.gz, the quality gate, registration.

moto stores what it is sent and drops what it does not model (``ModelCard``,
``ModelLifeCycle``): every request is also checked by :mod:`lambdas.registrar.validation`
against botocore's service model, which is what these tests rely on for those fields.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from contracts.model_artifact import EVALUATION_FILE, SERVING_ENTRY
from lambdas.registrar import app as registrar_app
from lambdas.registrar import registration, validation
from lambdas.registrar.settings import RegistrarSettings, SettingsError
from tests.lambdas import registrar_fixtures as fx
from tests.lambdas.conftest import REGION

BUCKET = "artifacts"
CURATED = "curated"
MANIFEST_URI = f"s3://{CURATED}/manifest.json"
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
    "MANIFEST_S3_URI": MANIFEST_URI,
    "TRAINING_IMAGE_TAG": "2.6.0-cpu-py312-0123456789abcdef",
    "SOURCE_REPOSITORY": "example-org/readmission-platform",
    "SOURCE_COMMIT": "0123456789abcdef0123456789abcdef01234567",
}
SETTINGS = RegistrarSettings.from_env(ENV)


def evaluation(test_auroc: float | None = 0.71, baseline_auroc: float | None = 0.66) -> dict:
    """training/evaluation.py's report with the gate's two figures set."""
    report: dict[str, Any] = fx.full_evaluation()
    report["test"]["auroc"] = test_auroc
    report["baseline"]["auroc"] = baseline_auroc
    if baseline_auroc is None:
        del report["baseline"]
    return report


@pytest.fixture
def s3(mocked_aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    client.create_bucket(Bucket=CURATED)
    client.put_object(Bucket=CURATED, Key="manifest.json", Body=json.dumps(fx.manifest()))
    return client


@pytest.fixture
def sagemaker(mocked_aws: None) -> Any:
    client = boto3.client("sagemaker", region_name=REGION)
    client.create_model_package_group(ModelPackageGroupName=GROUP)
    return client


def put_model(
    s3: Any, report: dict | None, *, prefix: str = "./", without: tuple[str, ...] = ()
) -> None:
    files = fx.model_files(report, prefix=prefix, without=without)
    s3.put_object(Bucket=BUCKET, Key=MODEL_KEY, Body=fx.archive(files))


def test_evaluation_is_read_from_the_archive_and_stored_beside_it(s3: Any) -> None:
    put_model(s3, evaluation())
    result = registration.evaluate(s3, SETTINGS, MODEL_URL, "readmission-dev-train-1")
    found = result.pop("evidence")
    assert found["omitted"] == []
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
    result = registration.register(sagemaker, s3, SETTINGS, gated, REGION)
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
    first = registration.register(sagemaker, s3, SETTINGS, gated, REGION)
    second = registration.register(sagemaker, s3, SETTINGS, gated, REGION)
    assert second == {"model_package_arn": first["model_package_arn"], "created": False}
    listed = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    assert len(listed) == 1


def test_register_refuses_a_model_that_failed_the_gate(s3: Any, sagemaker: Any) -> None:
    put_model(s3, evaluation(0.55, 0.6))
    gated = registration.evaluate(s3, SETTINGS, MODEL_URL, "readmission-dev-train-1")
    assert gated["passed"] is False
    with pytest.raises(registration.RegistrationError, match="did not pass the quality gate"):
        registration.register(sagemaker, s3, SETTINGS, gated, REGION)
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
        ({"MANIFEST_S3_URI": ""}, "MANIFEST_S3_URI is not set"),
        ({"MANIFEST_S3_URI": "curated/manifest.json"}, "MANIFEST_S3_URI must be an s3:// URI"),
        ({"TRAINING_IMAGE_TAG": ""}, "TRAINING_IMAGE_TAG is not set"),
    ],
)
def test_settings_fail_naming_the_variable(change: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        RegistrarSettings.from_env({**ENV, **change})


# ----- the evidence a registered version carries -----


def sent_requests(sagemaker: Any) -> list[dict[str, Any]]:
    """The CreateModelPackage parameters as boto3 sends them (moto drops ModelCard)."""
    sent: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        sent.append(json.loads(json.dumps(params)))

    sagemaker.meta.events.register("provide-client-params.sagemaker.CreateModelPackage", capture)
    return sent


def read_json(s3: Any, uri: str) -> Any:
    bucket, key = registration.split_s3_uri(uri)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def register_model(
    s3: Any, sagemaker: Any, report: dict, without: tuple[str, ...] = ()
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Evaluate and register; return the gate output, the request sent and the card."""
    put_model(s3, report, without=without)
    sent = sent_requests(sagemaker)
    gated = registration.evaluate(s3, SETTINGS, MODEL_URL, "readmission-dev-train-1")
    registration.register(sagemaker, s3, SETTINGS, gated, REGION)
    (request,) = sent
    return gated, request, json.loads(request["ModelCard"]["ModelCardContent"])


def test_a_version_carries_its_card_reports_baseline_lineage_and_sample(
    s3: Any, sagemaker: Any
) -> None:
    gated, request, card = register_model(s3, sagemaker, evaluation())
    found = gated["evidence"]
    assert request["ModelCard"]["ModelCardStatus"] == "PendingReview"
    assert request["ModelLifeCycle"]["Stage"] == "Development"
    assert (request["Domain"], request["Task"]) == ("MACHINE_LEARNING", "CLASSIFICATION")
    folder = f"s3://{BUCKET}/training/readmission-dev-train-1/output"
    assert request["ModelMetrics"] == {
        "ModelQuality": {"Statistics": {"ContentType": "application/json",
                                        "S3Uri": f"{folder}/evaluation.json"}},
        "Bias": {"Report": {"ContentType": "application/json",
                            "S3Uri": f"{folder}/bias_report.json"}},
        "Explainability": {"Report": {"ContentType": "application/json",
                                      "S3Uri": f"{folder}/explainability_report.json"}},
    }  # fmt: skip
    baseline_uri = request["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"]
    assert read_json(s3, baseline_uri) == fx.drift_baseline()
    assert request["MetadataProperties"] == {
        "CommitId": ENV["SOURCE_COMMIT"],
        "Repository": ENV["SOURCE_REPOSITORY"],
        "GeneratedBy": "SageMaker training job readmission-dev-train-1 (readmission training "
        "pipeline)",
    }
    metadata = request["CustomerMetadataProperties"]
    manifest_bytes = s3.get_object(Bucket=CURATED, Key="manifest.json")["Body"].read()
    assert metadata["features_manifest_s3_uri"] == MANIFEST_URI
    assert metadata["features_manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    assert metadata["contract_version"] == "3.0"
    assert metadata["training_image_tag"] == ENV["TRAINING_IMAGE_TAG"]
    assert metadata["evidence_omitted"] == "none"
    # The card in the request is the one stored beside the report, linking the HTML card.
    assert read_json(s3, found["model_card_s3_uri"]) == card
    details = card["additional_information"]["custom_details"]
    assert details["html_model_card"] == f"{folder}/model_card.html"
    html = s3.get_object(Bucket=BUCKET, Key=details["html_model_card"].split("/", 3)[3])
    assert html["ContentType"] == "text/html"
    assert html["ServerSideEncryption"] == "aws:kms"
    assert card["model_overview"]["model_artifact"] == [MODEL_URL]
    assert card["intended_uses"]["risk_rating"] == "High"
    # moto keeps what it models: the same fields, back from DescribeModelPackage.
    described = sagemaker.describe_model_package(
        ModelPackageName=sagemaker.list_model_packages(ModelPackageGroupName=GROUP)[
            "ModelPackageSummaryList"
        ][0]["ModelPackageArn"]
    )
    assert described["SamplePayloadUrl"] == f"{folder}/sample_payload.tar.gz"
    assert described["ModelMetrics"] == request["ModelMetrics"]


def test_the_sample_payload_is_one_synthetic_request_the_api_accepts(
    s3: Any, sagemaker: Any
) -> None:
    from inference.payload import parse_request

    _, request, _ = register_model(s3, sagemaker, evaluation())
    bucket, key = registration.split_s3_uri(request["SamplePayloadUrl"])
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        (member,) = archive.getmembers()
        payload = archive.extractfile(member).read()  # type: ignore[union-attr]
    batch = parse_request(payload, "application/json")  # raises on what the API refuses
    (record,) = batch.records
    assert record["encounter_key"] == "sample-typical-training-patient"
    assert not {"patient_id", "encounter_id", "note_text"} & set(record)


def test_metric_groups_carry_overall_and_subgroup_figures_with_intervals(
    s3: Any, sagemaker: Any
) -> None:
    report = evaluation()
    _, _, card = register_model(s3, sagemaker, report)
    (details,) = card["evaluation_details"]
    groups = {group["name"]: group["metric_data"] for group in details["metric_groups"]}
    assert set(groups) == {
        "overall (test split)", "alert budget (test split)", "subgroup: age_band",
        "subgroup: sex",
    }  # fmt: skip
    overall = {metric["name"]: metric for metric in groups["overall (test split)"]}
    assert overall["AUROC"]["value"] == pytest.approx(
        report["intervals"]["overall"]["auroc"]["value"]
    )
    lower = report["intervals"]["overall"]["auroc"]["lower"]
    assert f"95% CI {lower:.3f} to " in overall["AUROC"]["notes"]
    assert overall["decision threshold"]["value"] == fx.THRESHOLD
    assert "joins the alert worklist" in overall["decision threshold"]["notes"]
    sex = {metric["name"]: metric for metric in groups["subgroup: sex"]}
    female = report["subgroups"]["sex"]["groups"]["F"]
    assert sex["F AUROC"]["value"] == pytest.approx(female["auroc"])
    assert sex["F AUROC"]["notes"].startswith("95% CI")
    assert "largest auroc gap" in sex
    assert "0.71" in details["evaluation_observation"]  # the headline names the test AUROC


def test_a_subgroup_too_small_to_report_is_named_but_not_counted(s3: Any, sagemaker: Any) -> None:
    gated, _, card = register_model(s3, sagemaker, evaluation())
    sex = next(
        group for group in card["evaluation_details"][0]["metric_groups"]
        if group["name"] == "subgroup: sex"
    )  # fmt: skip
    small = [metric for metric in sex["metric_data"] if metric["name"] == "X"]
    assert small == [
        {"name": "X", "type": "string", "value": "not reported: fewer than 30 patients"}
    ]
    assert not any(metric["name"].startswith("X ") for metric in sex["metric_data"])
    bias = read_json(s3, gated["evidence"]["bias_s3_uri"])
    assert bias["attributes"]["sex"]["groups"]["X"] == {
        "reported": False,
        "note": "not reported: fewer than 30 patients",
    }
    assert bias["attributes"]["sex"]["groups"]["F"]["metrics"]["n"] == fx.SEX_GROUPS["F"]


BIAS_GONE = "bias report and subgroup metric groups (evaluation.json"
EXPLAINABILITY_GONE = "explainability report (evaluation.json"


def _set_section(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda report: report.update({name: value})


def _drop_section(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda report: report.pop(name)


@pytest.mark.parametrize(
    ("change", "absent", "omission"),
    [
        (_drop_section("subgroups"), "Bias", f"{BIAS_GONE} has no subgroups section)"),
        (_set_section("subgroups", []), "Bias", f"{BIAS_GONE}'s subgroups section is malformed)"),
        (
            _set_section("subgroups", {"sex": {"groups": {"F": 0.7}}}),
            "Bias",
            f"{BIAS_GONE}'s subgroups section is malformed)",
        ),
        (
            _drop_section("explainability"),
            "Explainability",
            f"{EXPLAINABILITY_GONE} has no explainability section)",
        ),
        (
            _set_section("explainability", {"factors": "age"}),
            "Explainability",
            f"{EXPLAINABILITY_GONE}'s explainability section is malformed)",
        ),
        (
            _drop_section("intervals"),
            None,
            "bootstrap intervals (evaluation.json has no intervals section)",
        ),
        (
            _set_section("intervals", "wide"),
            None,
            "bootstrap intervals (evaluation.json's intervals section is malformed)",
        ),
        (
            _drop_section("alert_budget"),
            None,
            "alert budget figures (evaluation.json has no alert_budget section)",
        ),
    ],
)
def test_a_missing_or_malformed_report_section_is_left_off_and_said_so(
    s3: Any,
    sagemaker: Any,
    change: Callable[[dict[str, Any]], None],
    absent: str | None,
    omission: str,
) -> None:
    report = evaluation()
    change(report)
    gated, request, card = register_model(s3, sagemaker, report)
    if absent is not None:
        assert absent not in request["ModelMetrics"]
    assert gated["evidence"]["omitted"] == [omission]
    information = card["additional_information"]
    assert information["custom_details"]["evidence_omitted"] == omission
    assert omission in information["caveats_and_recommendations"]
    assert request["CustomerMetadataProperties"]["evidence_omitted"] != "none"
    assert validation.card_errors(card) == []


@pytest.mark.parametrize(
    ("missing", "omission"),
    [
        ("model_card.html", "HTML model card (model_card.html not in the archive)"),
        ("metadata.json", "training details (metadata.json not in the archive)"),
    ],
)
def test_a_missing_optional_document_is_said_on_the_card(
    s3: Any, sagemaker: Any, missing: str, omission: str
) -> None:
    gated, _, card = register_model(s3, sagemaker, evaluation(), without=(missing,))
    assert gated["evidence"]["omitted"] == [omission]
    assert omission in card["additional_information"]["caveats_and_recommendations"]


def test_an_unreadable_manifest_is_said_on_the_card(s3: Any, sagemaker: Any) -> None:
    s3.delete_object(Bucket=CURATED, Key="manifest.json")
    gated, request, _ = register_model(s3, sagemaker, evaluation())
    assert gated["evidence"]["omitted"] == ["ETL manifest lineage (the manifest could not be read)"]
    assert request["CustomerMetadataProperties"]["features_manifest_sha256"] == "not attached"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_drop_section("threshold"), "lacks threshold"),
        (_drop_section("binary_classification_metrics"), "lacks binary_classification_metrics"),
        (_drop_section("test"), r"test\.auroc must be"),
        (_set_section("threshold", 1.5), r"threshold must be a number in \(0, 1\)"),
        (_set_section("threshold", "0.3"), "threshold must be a number"),
        (_set_section("binary_classification_metrics", []), "must be JSON objects"),
    ],
)
def test_a_report_without_a_usable_required_section_is_not_registered(
    s3: Any, sagemaker: Any, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    report = evaluation()
    change(report)
    put_model(s3, report)
    with pytest.raises(registration.RegistrationError, match=message):
        registration.evaluate(s3, SETTINGS, MODEL_URL, "readmission-dev-train-1")
    assert (
        sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"] == []
    )


def test_an_archive_without_a_drift_baseline_is_not_registered(s3: Any) -> None:
    put_model(s3, evaluation(), without=("drift_baseline.json",))
    with pytest.raises(registration.RegistrationError, match=r"holds no drift_baseline\.json"):
        registration.evaluate(s3, SETTINGS, MODEL_URL, "readmission-dev-train-1")


def test_a_gate_output_without_evidence_is_not_registered(s3: Any, sagemaker: Any) -> None:
    put_model(s3, evaluation())
    gated = registration.evaluate(s3, SETTINGS, MODEL_URL, "readmission-dev-train-1")
    del gated["evidence"]
    with pytest.raises(registration.RegistrationError, match="carries no evidence"):
        registration.register(sagemaker, s3, SETTINGS, gated, REGION)


def many_subgroups(report: dict[str, Any], count: int) -> dict[str, Any]:
    """``count`` scored wards, each with the female group's figures."""
    figures = report["subgroups"]["sex"]["groups"]["F"]
    report["subgroups"]["ward"] = {
        "groups": {f"ward-{i:05d}": dict(figures) for i in range(count)},
        "largest_gaps": {},
    }
    return report


def test_a_card_over_the_size_limit_drops_subgroup_groups_and_says_where_they_are(
    s3: Any, sagemaker: Any
) -> None:
    report = many_subgroups(evaluation(), 600)
    gated, request, card = register_model(s3, sagemaker, report)
    assert len(request["ModelCard"]["ModelCardContent"]) <= 100_000
    names = [group["name"] for group in card["evaluation_details"][0]["metric_groups"]]
    assert names == ["overall (test split)", "alert budget (test split)"]
    (omitted,) = gated["evidence"]["omitted"]
    assert omitted.startswith("subgroup metric groups (over the card size limit; see s3://")
    assert "ward-00599" in json.dumps(read_json(s3, gated["evidence"]["bias_s3_uri"]))


def test_a_card_that_cannot_fit_is_refused_with_the_reason(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.registrar import validation

    monkeypatch.setattr(validation, "max_content_chars", lambda: 2000)
    put_model(s3, evaluation())
    with pytest.raises(registration.RegistrationError, match="over SageMaker's 2000-character"):
        registration.evaluate(s3, SETTINGS, MODEL_URL, "readmission-dev-train-1")


def test_without_a_commit_the_version_says_so(s3: Any, sagemaker: Any) -> None:
    settings = RegistrarSettings.from_env({**ENV, "SOURCE_COMMIT": ""})
    put_model(s3, evaluation())
    sent = sent_requests(sagemaker)
    gated = registration.evaluate(s3, settings, MODEL_URL, "readmission-dev-train-1")
    registration.register(sagemaker, s3, settings, gated, REGION)
    assert "CommitId" not in sent[0]["MetadataProperties"]
    assert gated["evidence"]["omitted"] == ["source commit (SOURCE_COMMIT not set)"]


def test_the_registrar_runs_with_only_what_the_lambda_runtime_has() -> None:
    """The asset is lambdas/registrar plus contracts; the runtime adds boto3 and Powertools. The
    SDK's card shapes, ``regex``, pydantic and numpy are not there: importing and checking a
    card must not need them (validation then keeps the overview and service-model checks)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'sagemaker', 'regex', 'pydantic', 'numpy', 'torch',"
        " 'training', 'inference', 'stacks'}:\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from lambdas.registrar import app, validation\n"
        "errors = validation.card_errors({'model_overview': {'model_name': 'm'}})\n"
        "assert errors == ['ModelCardContent.model_overview.model_name: not in the model "
        "package card schema'], errors\n"
        "assert validation.max_content_chars() == 100000\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
