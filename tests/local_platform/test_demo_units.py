"""The demo's small units: run folders, training flags, the archive, the approval event, traffic."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts.drift import OTHER_BUCKET
from contracts.model_artifact import EVALUATION_FILE
from lambdas.deployer.events import ModelPackageStateChangeEvent
from lambdas.predict.schema import PredictRequest
from local_platform import report, steps, traffic
from local_platform.demo import RUN_MARKER, new_run_dir, parse_args
from local_platform.settings import DEMO_PROFILE, QUICK_PROFILE, DemoConfig, TrainingProfile
from training.config import parse_args as training_args

NOW = datetime(2026, 5, 1, 9, 30, 0, tzinfo=UTC)


def test_default_run_folders_never_collide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("local_platform.demo.RUNS_DIR", tmp_path)
    first = new_run_dir(None, NOW)
    second = new_run_dir(None, NOW)
    assert first == tmp_path / "20260501-093000"
    assert second == tmp_path / "20260501-093000-2"
    assert (first / RUN_MARKER).exists()


def test_requested_run_folder_is_reused_only_when_it_was_a_demo_run(tmp_path: Path) -> None:
    folder = new_run_dir(tmp_path / "run", NOW)
    (folder / "old.txt").write_text("from the last run")
    assert new_run_dir(folder, NOW) == folder
    assert sorted(p.name for p in folder.iterdir()) == [RUN_MARKER]
    foreign = tmp_path / "elsewhere"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("not ours")
    with pytest.raises(ValueError, match="run-dir"):
        new_run_dir(foreign, NOW)
    assert (foreign / "keep.txt").read_text() == "not ours"


def test_options(tmp_path: Path) -> None:
    config = parse_args(["--source", "synthetic", "--admissions", "500", "--quick", "--serve"])
    assert (config.source, config.admissions, config.quick, config.serve) == (
        "synthetic",
        500,
        True,
        True,
    )
    assert parse_args([]).source == "uci_diabetes"
    with pytest.raises(SystemExit):
        parse_args(["--source", "hl7"])
    with pytest.raises(ValueError, match="admissions"):
        DemoConfig(admissions=0)


@pytest.mark.parametrize("profile", [DEMO_PROFILE, QUICK_PROFILE])
def test_training_profiles_are_valid_training_arguments(
    tmp_path: Path, profile: TrainingProfile
) -> None:
    for split in ("train", "validation", "test"):
        (tmp_path / f"split={split}").mkdir()
    _, hyper = training_args(["--data-dir", str(tmp_path), *profile.arguments()])
    assert (hyper.epochs, hyper.max_steps, hyper.batch_size) == (
        profile.epochs,
        profile.max_steps,
        profile.batch_size,
    )
    assert (hyper.hidden_size, hyper.num_heads, hyper.learning_rate) == (
        profile.hidden_size,
        profile.num_heads,
        profile.learning_rate,
    )


def test_model_archive_has_the_model_directory_at_its_root(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "code" / "inference").mkdir(parents=True)
    (model / EVALUATION_FILE).write_text("{}")
    (model / "code" / "inference.py").write_text("")
    (model / "code" / "inference" / "__pycache__").mkdir()
    (model / "code" / "inference" / "__pycache__" / "x.pyc").write_bytes(b"")
    archive = steps.pack_model(model, tmp_path / "model.tar.gz")
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["code/inference.py", EVALUATION_FILE]


def test_approval_event_is_what_the_deployer_parses() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/readmission-dev-models/3"
    package = {
        "ModelPackageArn": arn,
        "ModelPackageGroupName": "readmission-dev-models",
        "ModelPackageVersion": 3,
        "ModelApprovalStatus": "Approved",
        "CreationTime": NOW,
    }
    event = steps.model_package_state_change(package)
    parsed = ModelPackageStateChangeEvent.model_validate(event)
    assert parsed.detail_type == "SageMaker Model Package State Change"
    assert parsed.source == "aws.sagemaker"
    assert parsed.account == "123456789012"
    assert parsed.detail.model_package_arn == arn
    assert parsed.detail.model_package_version == 3
    assert parsed.detail.model_approval_status == "Approved"


RECORD = {
    "age_years": 50,
    "sex": "M",
    "admission_type": "emergency",
    "admission_source": "emergency_department",
    "discharge_disposition": "home",
    "admitting_service": None,
    "length_of_stay_days": 3.0,
    "prior_admissions_12m": 1,
    "prior_ed_visits_12m": 0,
    "prior_outpatient_visits_12m": None,
    "days_since_last_discharge": None,
    "num_diagnoses": 2,
    "num_procedures": 0,
    "num_medications": 4,
    "num_lab_tests": 10,
    "num_abnormal_labs": 1,
    "hba1c_result": "not_measured",
    "max_glucose_result": "normal",
    "charlson_index": 2,
    "diagnosis_codes": ["4280", "25000"],
    "procedure_codes": [],
    "medications": ["insulin"],
    "abnormal_labs": [],
    "note_text": None,
}


def test_requests_validate_against_the_api_schema() -> None:
    request = traffic.as_request(RECORD, 7)
    assert request["patient_id"] == "demo-patient-7"
    assert "note_text" not in request
    PredictRequest.model_validate(request)
    PredictRequest.model_validate(traffic.EXAMPLE_REQUEST)
    PredictRequest.model_validate({"instances": [request, traffic.shifted(request, "E9479")]})


def test_the_shift_changes_age_prior_admissions_and_codes_only() -> None:
    request = traffic.as_request(RECORD, 0)
    moved = traffic.shifted(request, "E9479")
    assert moved["age_years"] == 75
    assert moved["prior_admissions_12m"] == 4
    assert moved["diagnosis_codes"] == ["4280", "25000", "E9479"]
    changed = {name for name in request if request[name] != moved[name]}
    assert changed == set(traffic.SHIFTED_FEATURES)
    assert traffic.shifted({**request, "age_years": 80}, "E9479")["age_years"] == 90


def test_a_day_shifts_its_later_part() -> None:
    day = traffic.day_of_traffic([RECORD], 10, "E9479", seed=1)
    assert [r["age_years"] for r in day] == [50] * 4 + [75] * 6
    assert [r["patient_id"] for r in day][:2] == ["demo-patient-0", "demo-patient-1"]


def test_new_diagnosis_code_avoids_categories_of_the_baseline() -> None:
    feature = {"grouping": "icd9_diagnosis_category", "buckets": ["428", "E947", OTHER_BUCKET]}
    assert traffic.new_diagnosis_code({"features": {"diagnosis_codes": feature}}) == "V8741"
    # A 2.0 baseline groups by clinical group: V8741 and V1588 share CCSR FAC021.
    feature = {
        "grouping": "clinical_diagnosis_group",
        "buckets": ["icd9cm:E9479", "CCSR:FAC021", OTHER_BUCKET],
    }
    assert traffic.new_diagnosis_code({"features": {"diagnosis_codes": feature}}) == "E9300"


def test_latency_percentiles_are_nearest_rank() -> None:
    latencies = [float(v) for v in range(1, 101)]
    assert report.latency_summary(latencies) == {
        "requests": 100,
        "p50_ms": 50.0,
        "p95_ms": 95.0,
        "max_ms": 100.0,
    }
    with pytest.raises(ValueError, match="empty"):
        report.percentile([], 50)


def test_progress_prints_steps_and_facts_and_logs_them(tmp_path: Path) -> None:
    out = io.StringIO()
    progress = report.Progress(tmp_path / "demo.log", out)
    progress.step(2, "Glue ETL")
    progress.fact("rows", 10)
    progress.log("subprocess line")
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[2/7] Glue ETL  (t+")
    assert lines[1] == "      rows: 10"
    log = (tmp_path / "demo.log").read_text()
    assert "[2/7] Glue ETL" in log
    assert log.rstrip().endswith("subprocess line")


def test_a_source_too_small_to_train_stops_before_training_with_the_reason() -> None:
    # The bundled MIMIC-III demo's real split: no positive in validation.
    manifest = {
        "label_counts_by_split": {
            "train": {"0": 51, "1": 8},
            "validation": {"0": 10},
            "test": {"0": 17, "1": 3},
        }
    }
    with pytest.raises(steps.DemoError, match=r"^the validation split\(s\) lack a positive"):
        steps.require_trainable(manifest)


def test_a_source_with_both_labels_in_every_split_may_train() -> None:
    both = {"0": 5, "1": 1}
    steps.require_trainable(
        {"label_counts_by_split": {"train": both, "validation": both, "test": both}}
    )
