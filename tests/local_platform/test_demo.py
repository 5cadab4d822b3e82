"""The whole demo on a small synthetic source: every step, checked while the platform is up.

One run (a few minutes on 2 cores: Spark, torchrun, the model server) serves every assertion;
the checks that need the live control plane and API run in ``on_ready``, before shutdown.
"""

from __future__ import annotations

import io
import json
import socket
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from contracts.deidentify import ENCOUNTER_NAMESPACE, PATIENT_NAMESPACE, keyed_hash
from contracts.drift import baseline_s3_key
from contracts.model_artifact import DRIFT_BASELINE_FILE, MODEL_CARD_FILE
from local_platform import ehr, steps, traffic
from local_platform.control_plane import patched_environment
from local_platform.demo import SUMMARY_FILE, DemoResult, LivePlatform, run_demo
from local_platform.processes import process_exists
from local_platform.settings import DemoConfig
from training import artifact

ADMISSIONS = 8000
TRAFFIC = 400


def _capture_text(run_dir: Path) -> str:
    return "".join(path.read_text() for path in sorted((run_dir / "capture").rglob("*.jsonl")))


def _live_checks(live: LivePlatform, seen: dict[str, Any]) -> None:
    """Everything that needs the platform up: control plane, API, capture, metrics."""
    config = DemoConfig()
    with patched_environment(live.environment):
        sagemaker = boto3.client("sagemaker")
        packages = sagemaker.list_model_packages(
            ModelPackageGroupName=config.names.model_package_group
        )["ModelPackageSummaryList"]
        seen["approval"] = [package["ModelApprovalStatus"] for package in packages]
        endpoint = sagemaker.describe_endpoint(EndpointName=config.names.endpoint)
        seen["endpoint_status"] = endpoint["EndpointStatus"]
        s3 = boto3.client("s3")
        capture_bucket = f"{config.stage.prefix}-capture"
        seen["baseline"] = json.loads(
            s3.get_object(Bucket=capture_bucket, Key=baseline_s3_key(config.names.endpoint))[
                "Body"
            ].read()
        )
        seen["metrics"] = steps.read_drift_metrics(config.names.endpoint)
    seen["health"] = traffic.call(f"{live.api_url}/health")
    seen["predict"] = traffic.call(f"{live.api_url}/predict", "POST", traffic.EXAMPLE_REQUEST)
    seen["capture"] = _capture_text(live.run_dir)
    # What a `make demo-serve` user runs from another terminal (docs/api.md, CDS Hooks).
    seen["ehr_script"] = ehr.main(["--run-dir", str(live.run_dir)])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, dict[str, Any], str]:
    seen: dict[str, Any] = {}
    printed = io.StringIO()
    config = DemoConfig(
        source="synthetic",
        admissions=ADMISSIONS,
        quick=True,
        run_dir=tmp_path_factory.mktemp("demo") / "run",
        traffic_requests=TRAFFIC,
    )
    result = run_demo(config, on_ready=lambda live: _live_checks(live, seen), stream=printed)
    return result, seen, printed.getvalue()


pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_manifest_counts_reconcile(demo: tuple[DemoResult, dict[str, Any], str]) -> None:
    data = demo[0].summary["data"]
    assert data["rows_in"] == ADMISSIONS
    assert data["reconciled"] is True
    assert data["rows_in"] == (
        data["rows_out"]
        + data["rows_excluded"]
        + data["rows_quarantined"]
        + data["duplicates_dropped"]
    )
    assert sum(data["rows_out_by_split"].values()) == data["rows_out"]
    assert set(data["rows_out_by_split"]) == {"train", "validation", "test"}


def test_model_package_was_registered_then_approved_and_deployed(
    demo: tuple[DemoResult, dict[str, Any], str],
) -> None:
    result, seen, _ = demo
    assert seen["approval"] == ["Approved"]
    assert seen["endpoint_status"] == "InService"
    assert 1 <= result.summary["deployment"]["deployer_deliveries"] <= 3
    assert result.summary["model"]["test"]["auroc"] > result.summary["model"]["baseline_test_auroc"]
    # The deployer copied the served model's drift baseline next to the capture.
    assert seen["baseline"]["record_count"] == result.summary["data"]["rows_out_by_split"]["train"]


def test_api_answers_through_the_gateway_and_only_hashed_keys_reach_the_server(
    demo: tuple[DemoResult, dict[str, Any], str],
) -> None:
    _, seen, _ = demo
    assert seen["health"].status == 200
    assert seen["health"].body["status"] == "ok"
    reply = seen["predict"]
    assert reply.status == 200
    (prediction,) = reply.body["predictions"]
    assert 0.0 <= prediction["probability"] <= 1.0
    key = steps.DEID_KEY
    assert prediction["encounter_key"] == keyed_hash(key, ENCOUNTER_NAMESPACE, "ADM-0001")
    capture = seen["capture"]
    assert keyed_hash(key, PATIENT_NAMESPACE, "MRN-0001") in capture
    assert keyed_hash(key, PATIENT_NAMESPACE, "demo-patient-0") in capture
    assert "MRN-0001" not in capture
    assert "ADM-0001" not in capture
    assert "demo-patient-" not in capture


def test_the_demo_ehr_gets_a_card_and_a_replayed_token_is_refused(
    demo: tuple[DemoResult, dict[str, Any], str],
) -> None:
    result, seen, printed = demo
    cds = result.summary["api"]["cds_hooks"]
    assert (cds["discovery_status"], cds["status"]) == (200, 200)
    assert cds["indicator"] in ("info", "warning", "critical")
    assert "readmission risk:" in cds["summary"]
    assert cds["replayed_token_status"] == 401
    assert cds["summary"] in printed
    assert seen["ehr_script"] == 0
    assert (result.run_dir / "ehr" / "identity.json").is_file()


def test_drift_flags_the_shifted_features_and_only_those(
    demo: tuple[DemoResult, dict[str, Any], str],
) -> None:
    result, seen, _ = demo
    threshold = result.summary["drift"]["feature_psi_threshold"]
    feature_psi = seen["metrics"]["feature_psi"]
    sent = TRAFFIC + steps.SAMPLE_REQUESTS + steps.SAMPLE_BATCH + ehr.SCORED_HOOK_CALLS
    assert seen["metrics"]["records_analysed"] == sent
    over = sorted(name for name, psi in feature_psi.items() if psi > threshold)
    assert over == sorted(traffic.SHIFTED_FEATURES)
    assert result.summary["drift"]["features_over_threshold"] == over
    assert len(feature_psi) > len(over) + 10


def test_the_injected_subgroup_shift_fires_the_sex_fairness_alarms(
    demo: tuple[DemoResult, dict[str, Any], str],
) -> None:
    """local_platform/fairness.py: women's outcomes stop following their scores."""
    result, _, printed = demo
    fairness = result.summary["fairness"]
    assert fairness["groups_compared"]["sex"] == ["F", "M"]
    assert {"sex-auroc", "sex-calibration_in_the_large"} <= set(fairness["alarms"])
    assert "sex-alert_rate" not in fairness["alarms"]
    assert "FairnessGap sex-auroc" in printed


def test_run_folder_holds_summary_model_card_archive_and_log(
    demo: tuple[DemoResult, dict[str, Any], str],
) -> None:
    result, _, printed = demo
    run_dir = result.run_dir
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    assert summary["data"] == result.summary["data"]
    assert summary["api"]["latency"]["requests"] == steps.SAMPLE_REQUESTS
    assert summary["api"]["latency"]["p50_ms"] <= summary["api"]["latency"]["p95_ms"]
    assert "data:image/png;base64," in (run_dir / MODEL_CARD_FILE).read_text()
    assert (run_dir / "curated" / "features" / "split=train").is_dir()
    with tarfile.open(run_dir / steps.MODEL_ARCHIVE) as archive:
        names = set(archive.getnames())
    entry = f"{artifact.CODE_DIR}/{artifact.INFERENCE_ENTRY}"
    assert {artifact.EVALUATION_FILE, DRIFT_BASELINE_FILE, entry} <= names
    log = (run_dir / "demo.log").read_text()
    for number in range(1, 8):
        assert f"[{number}/7]" in printed
        assert f"[{number}/7]" in log
    assert "demo-patient-" not in printed + log
    # The only raw identifier in the log is the curl example's; the handlers logged none.
    assert [line for line in log.splitlines() if "MRN-0001" in line and "curl" not in line] == []


def test_every_started_process_and_port_is_stopped(
    demo: tuple[DemoResult, dict[str, Any], str],
) -> None:
    result = demo[0]
    # The ETL job, torchrun, the model server, the shadow candidate and the promoted candidate.
    assert len(result.pids) == 5
    assert not [pid for pid in result.pids if process_exists(pid)]
    assert len(result.ports) == 3  # control plane, model server, gateway
    for port in result.ports:
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))


def test_the_candidate_shadows_on_mirrored_traffic_then_is_promoted(
    demo: tuple[DemoResult, dict[str, Any], str],
) -> None:
    result, seen, printed = demo
    stage = result.summary["shadow"]
    assert stage["decision"] == "promote", stage["reasons"]
    assert stage["comparison"]["pairs"] == stage["mirrored_requests"]
    assert stage["comparison"]["pearson"] > 0.9
    assert "Shadow stage" in printed
    assert "captured pairs" in printed
    # After the promotion the API answers from the candidate.
    assert seen["predict"].status == 200
    assert seen["predict"].body["predictions"][0]["model_version"].endswith("-candidate")


def test_step_3_shows_what_the_approver_will_see_and_keeps_the_card(
    demo: tuple[DemoResult, dict[str, Any], str],
) -> None:
    from lambdas.registrar import validation

    result, _, printed = demo
    view = result.summary["model"]["approver_view"]
    card_path = Path(view["model_card"])
    assert card_path == result.run_dir / "model_card.json"
    card = json.loads(card_path.read_text())
    assert validation.card_errors(card) == []
    assert card["intended_uses"]["risk_rating"] == "High"
    step_3 = printed.split("[3/7]", 1)[1].split("[4/7]", 1)[0]
    assert view["headline"] in step_3
    assert {"overall (test split)", "subgroup: sex", "subgroup: age_band"} <= set(
        view["metric_groups"]
    )
    for name in view["metric_groups"]:
        assert name in step_3
    assert view["gaps"]
    assert view["gaps"][0] in step_3
