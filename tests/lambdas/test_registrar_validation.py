"""What SageMaker would refuse is refused before it is sent: the service model and the card schema.

moto accepts any ``CreateModelPackage`` request; these tests mutate a valid request, one field
at a time, into one the service rejects (wrong type, unknown key, a string over its maximum,
a value outside its enum or pattern, a card key the model card schema does not define) and
expect :func:`lambdas.registrar.validation.check_request` to name it. Limits are those of
``botocore/data/sagemaker/2017-07-24/service-2.json`` (the API Reference's CreateModelPackage
page: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html) and
of the SDK's ``sagemaker.core.shapes.model_card_shapes``.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest

from lambdas.registrar import evidence, registration, validation
from lambdas.registrar.settings import RegistrarSettings
from tests.lambdas import registrar_fixtures as fx

FOLDER = "s3://artifacts/training/job-1/output"
MODEL_URL = f"{FOLDER}/model.tar.gz"
SETTINGS = RegistrarSettings.from_env(
    {
        "MODEL_PACKAGE_GROUP_NAME": "readmission-dev-models",
        "INFERENCE_IMAGE_URI": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serving:tag",
        "ENDPOINT_INSTANCE_TYPE": "ml.m5.large",
        "MIN_TEST_AUROC": "0.6",
        "KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/1",
        "MANIFEST_S3_URI": "s3://curated/manifest.json",
        "TRAINING_IMAGE_TAG": "2.6.0-cpu-py312-0123456789abcdef",
        "SOURCE_REPOSITORY": "example-org/readmission-platform",
        "SOURCE_COMMIT": "0" * 40,
    }
)
LINKS = evidence.EvidenceLinks(
    model_data_url=MODEL_URL,
    evaluation=f"{FOLDER}/evaluation.json",
    html_card=f"{FOLDER}/model_card.html",
    bias=f"{FOLDER}/bias_report.json",
    explainability=f"{FOLDER}/explainability_report.json",
    manifest="s3://curated/manifest.json",
    training_image_tag=SETTINGS.training_image_tag,
)


def card(report: dict[str, Any] | None = None, omitted: tuple[str, ...] = ()) -> dict[str, Any]:
    built = evidence.build_card(
        fx.full_evaluation() if report is None else report,
        fx.metadata(),
        fx.manifest(),
        LINKS,
        "job-1",
        list(omitted),
    )
    return built.content


def valid_request(content: dict[str, Any] | None = None) -> dict[str, Any]:
    gated = {
        "training_job_name": "job-1",
        "test_auroc": 0.71,
        "baseline_auroc": 0.66,
        "model_data_url": MODEL_URL,
        "evaluation_s3_uri": LINKS.evaluation,
        "evidence": {
            "bias_s3_uri": LINKS.bias,
            "explainability_s3_uri": LINKS.explainability,
            "drift_baseline_s3_uri": f"{FOLDER}/drift_baseline.json",
            "sample_payload_s3_uri": f"{FOLDER}/sample_payload.tar.gz",
            "manifest_s3_uri": LINKS.manifest,
            "manifest_sha256": "ab" * 32,
            "contract_version": "3.0",
            "omitted": [],
        },
    }
    text = registration.card_text(card() if content is None else content)
    return registration.package_request(SETTINGS, gated, "us-east-1", text)


def test_the_registrars_request_is_one_sagemaker_accepts() -> None:
    validation.check_request(valid_request())


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = request
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = request
        for part in parents:
            target = target[part]
        del target[last]

    return change


def _metadata(entries: dict[str, str]) -> Callable[[dict[str, Any]], None]:
    return lambda request: request["CustomerMetadataProperties"].update(entries)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("ModelMetrics.Bias.Report.S3Uri", 42), "Invalid type for parameter"),
        (_set("ModelMetrics.Fairness", {}), "Unknown parameter in ModelMetrics"),
        (_drop("DriftCheckBaselines.ModelDataQuality.Statistics.ContentType"), "Missing required"),
        (_set("ClientToken", ""), "Invalid length for parameter ClientToken"),
        (_set("ModelCard.ModelCardStatus", "Pending"), "ModelCardStatus: must be one of"),
        (_set("ModelCard.ModelCardContent", "{}" + " " * 100_000), "longer than 100000"),
        (_set("ModelLifeCycle.Stage", "dev stage"), "ModelLifeCycle.Stage: does not match"),
        (_set("ModelLifeCycle.StageDescription", "x" * 1025), "longer than 1024"),
        (_set("MetadataProperties.CommitId", "c" * 1025), "CommitId: longer than 1024"),
        (_set("SamplePayloadUrl", "ftp://bucket/sample.tar.gz"), "SamplePayloadUrl: does not"),
        (_set("ModelPackageDescription", "d" * 1025), "longer than 1024"),
        (_metadata({"k" * 129: "v"}), "longer than 128"),
        (_metadata({"key": "v" * 257}), "longer than 256"),
        (_metadata({"key": "a,b"}), "does not match the pattern"),
        (_metadata({f"extra_{i}": "v" for i in range(45)}), "more than 50 entries"),
    ],
)
def test_a_field_sagemaker_would_refuse_is_named(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    request = copy.deepcopy(valid_request())
    change(request)
    with pytest.raises(validation.RequestInvalidError, match=message):
        validation.check_request(request)


def _card_change(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    content = card()
    change(content)
    return content


def _metric_groups(content: dict[str, Any]) -> list[dict[str, Any]]:
    return content["evaluation_details"][0]["metric_groups"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(model_package_details={}), "model_package_details: not in the"),
        (lambda c: c["model_overview"].update(model_name="m"), "model_overview.model_name"),
        (lambda c: c["intended_uses"].update(risk_rating="Severe"), "risk_rating"),
        (lambda c: c["intended_uses"].update(intended_uses="u" * 2049), "at most 2048"),
        (lambda c: _metric_groups(c)[0].update(name="g" * 64), "name: must be 1 to 63"),
        (lambda c: _metric_groups(c)[0]["metric_data"][0].update(unit="x"), "unit: not in"),
        (lambda c: _metric_groups(c)[0]["metric_data"][0].update(value=[1]), "value"),
        (
            lambda c: c["training_details"]["training_job_details"]["hyper_parameters"].append(
                {"name": "h", "value": "v" * 256}
            ),
            "value: must be 0 to 255",
        ),
    ],
)
def test_a_card_the_schema_refuses_is_named(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    request = valid_request(_card_change(change))
    with pytest.raises(validation.RequestInvalidError, match=message):
        validation.check_request(request)


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r,
        lambda r: r.pop("subgroups"),
        lambda r: r.pop("intervals"),
        lambda r: r.pop("alert_budget"),
        lambda r: r["subgroups"].clear(),
        lambda r: r["test"].update(auroc=None, recall=None),
        lambda r: r["subgroups"]["sex"]["groups"].update({"y" * 300: {"scored": False}}),
    ],
)
def test_every_card_the_registrar_builds_follows_the_schema(edit: Callable[..., Any]) -> None:
    report = fx.full_evaluation()
    edit(report)
    content = card(report, omitted=("bias_report.json (no subgroups)",))
    assert validation.card_errors(content) == []
    validation.check_request(valid_request(content))


def test_the_sdk_shapes_are_installed_so_the_schema_check_runs() -> None:
    """Removing the SDK would quietly reduce the card check to its overview keys."""
    import sagemaker.core.shapes.model_card_shapes  # noqa: F401

    assert validation.card_errors({"intended_uses": {"risk_rating": "Severe"}})


def test_without_the_regex_module_unicode_patterns_are_left_to_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    validation._compiled.cache_clear()
    monkeypatch.setitem(sys.modules, "regex", None)
    try:
        assert validation._compiled(r"[\p{L}\p{N}]*") is None
        assert validation._compiled("(https|s3)://([^/]+)/?(.*)").fullmatch("s3://b/k")
        request = valid_request()
        request["CustomerMetadataProperties"]["key"] = "a,b"
        validation.check_request(request)  # the Lambda runtime: no regex, left to SageMaker
    finally:
        validation._compiled.cache_clear()


def test_the_content_limit_is_read_from_the_service_model() -> None:
    assert validation.max_content_chars() == 100_000
    assert json.loads(valid_request()["ModelCard"]["ModelCardContent"])["model_overview"]
