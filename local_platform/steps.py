"""The demo's seven steps, in the order AWS runs them, each calling the code that deploys.

Every step takes the :class:`DemoRun` (options, run folder, progress, child processes, the
control plane's resources) and returns the facts the summary reports.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from contracts.deidentify import DEMO_DEIDENTIFICATION_KEY, PATIENT_NAMESPACE, keyed_hash
from contracts.drift import (
    DEFAULT_METRIC_NAMESPACE,
    DIMENSION_ENDPOINT,
    DIMENSION_FEATURE,
    METRIC_FEATURE_PSI,
    METRIC_PREDICTION_PSI,
    METRIC_RECORDS_ANALYSED,
)
from contracts.etl_manifest import MANIFEST_FILE
from contracts.model_artifact import DRIFT_BASELINE_FILE, EVALUATION_FILE
from glue_jobs.synthetic_ehr import generate
from lambdas.deployer import app as deployer_app
from lambdas.drift_monitor import app as drift_app
from lambdas.predict import app as predict_app
from lambdas.registrar import app as registrar_app
from local_platform import approver_view, ehr, report, resources, traffic
from local_platform.control_plane import free_port, patched_environment
from local_platform.deployment_queue import deliver_until_settled
from local_platform.gateway import LocalApiGateway, Route
from local_platform.lambda_runtime import LOCAL_REGION
from local_platform.processes import ProcessGroup, wait_for_http
from local_platform.report import Progress
from local_platform.resources import Resources
from local_platform.settings import (
    BUNDLED_DATA,
    ETL_SOURCE,
    REPO_ROOT,
    SOURCE_SYNTHETIC,
    SYNTHETIC_SEED,
    TRAINING_PREFIX,
    TRAINING_PROCESSES,
    VARIANT_NAME,
    DemoConfig,
)

#: The demo de-identifies with the public demo key; deployed jobs read theirs from a secret.
DEID_KEY = DEMO_DEIDENTIFICATION_KEY
MODEL_ARCHIVE = "model.tar.gz"
ENDPOINT_START_TIMEOUT_S = 180.0
SAMPLE_REQUESTS = 20
SAMPLE_BATCH = 5
#: Lines of training's output echoed to the terminal (the rest go to the log).
TRAINING_ECHO_PREFIXES = ("epoch=", "validation:auroc=", "test:auroc=", "baseline:auroc=")


class DemoError(RuntimeError):
    """A step cannot go on; the message says which and why (no patient data)."""


@dataclass
class DemoRun:
    """State shared by the steps of one run."""

    config: DemoConfig
    run_dir: Path
    progress: Progress
    processes: ProcessGroup
    environment: dict[str, str]
    resources: Resources | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    endpoint_url: str = ""
    api_url: str = ""

    @property
    def features_dir(self) -> Path:
        return self.run_dir / "curated" / "features"

    @property
    def model_dir(self) -> Path:
        return self.run_dir / "model"

    @property
    def capture_dir(self) -> Path:
        return self.run_dir / "capture"

    def require_resources(self) -> Resources:
        if self.resources is None:
            raise DemoError("the control plane has not been provisioned")
        return self.resources

    def child_environment(self) -> dict[str, str]:
        """A child's environment: ours with the control plane's, the repo importable, Spark on
        loopback, one OpenMP thread per process (the cores are shared)."""
        pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
        return {
            **os.environ,
            **self.environment,
            "PYTHONPATH": pythonpath,
            "OMP_NUM_THREADS": "1",
            "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
        }


def provision(run: DemoRun, control_plane_url: str) -> None:
    """Step 1: the stacks' buckets, key, topic and model package group in moto."""
    run.progress.step(1, "AWS control plane (moto) on loopback")
    run.progress.fact("endpoint", control_plane_url)
    run.resources = resources.provision(run.config)
    buckets = run.resources.buckets
    run.progress.fact("buckets", ", ".join(buckets.all()))
    run.progress.fact("model package group", run.resources.model_package_group)


def etl(run: DemoRun) -> dict[str, Any]:
    """Step 2: raw data into the raw bucket's layout, then the Glue job in Spark local mode."""
    config, progress = run.config, run.progress
    buckets = run.require_resources().buckets
    progress.step(2, f"Glue ETL ({config.source}) in Spark local mode")
    raw_dir = run.run_dir / "raw" / config.source
    if config.source == SOURCE_SYNTHETIC:
        rows = generate(config.admissions, SYNTHETIC_SEED, str(raw_dir))
        progress.fact("synthetic admissions generated", rows["ADMISSIONS"])
    else:
        shutil.copytree(BUNDLED_DATA[config.source], raw_dir)
    files = resources.upload_folder(boto3.client("s3"), raw_dir, buckets.raw, config.source)
    progress.fact("raw files", f"{files} in s3://{buckets.raw}/{config.source}/")
    curated = run.run_dir / "curated"
    run.processes.run(
        "the ETL job",
        [
            sys.executable,
            "-m",
            "glue_jobs.ehr_features",
            "--source",
            ETL_SOURCE[config.source],
            "--input",
            str(raw_dir),
            "--output",
            str(curated),
            "--deid-key",
            DEID_KEY,
        ],
        run.child_environment(),
    )
    manifest: dict[str, Any] = json.loads((curated / MANIFEST_FILE).read_text())
    resources.upload_folder(boto3.client("s3"), curated, buckets.curated, "")
    progress.fact(
        "rows",
        f"{manifest['rows_in']} in = {manifest['rows_out']} out + "
        f"{manifest['rows_excluded']} excluded + {manifest['rows_quarantined']} quarantined"
        f" + {manifest['duplicates_dropped']} duplicates dropped"
        f" (reconciled: {manifest['reconciled']})",
    )
    splits = manifest["rows_out_by_split"]
    progress.fact("splits", ", ".join(f"{name} {count}" for name, count in splits.items()))
    progress.fact("features", f"s3://{buckets.curated}/features/ (split=train|validation|test)")
    require_trainable(manifest)
    return manifest


def require_trainable(manifest: dict[str, Any]) -> None:
    """Stop before training when a split has no positive or no negative label.

    Calibration, the sensitivity threshold and AUROC all need both classes in the validation
    and test splits; the bundled MIMIC-III demo (100 patients, 11 positives) is too small for
    that, while its ETL run above is still complete and real.
    """
    counts = manifest.get("label_counts_by_split", {})
    short = [
        split
        for split in ("train", "validation", "test")
        if not (int(counts.get(split, {}).get("0", 0)) and int(counts.get(split, {}).get("1", 0)))
    ]
    if short:
        raise DemoError(
            f"the {', '.join(short)} split(s) lack a positive or a negative label, so a model "
            "cannot be calibrated or evaluated on this source; the ETL output above is complete. "
            "Run the full demo with --source uci_diabetes (default) or --source synthetic, or "
            "point the ETL at a full MIMIC-III extract."
        )


def train(run: DemoRun) -> dict[str, Any]:
    """Step 3: training under torchrun, the archive in S3, the registrar's gate and register."""
    config, progress = run.config, run.progress
    res = run.require_resources()
    progress.step(3, f"Training under torchrun ({TRAINING_PROCESSES} CPU processes, gloo)")
    job_name = f"{config.stage.prefix}-demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    argv = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(TRAINING_PROCESSES),
        "-m",
        "training.train",
        "--data-dir",
        str(run.features_dir),
        "--model-dir",
        str(run.model_dir),
        "--output-dir",
        str(run.run_dir / "training-output"),
        "--checkpoint-dir",
        str(run.run_dir / "checkpoints"),
        "--alert-budget",  # the stage's, as the pipeline passes it (training/job_spec.py)
        str(config.stage.training.alert_budget),
        *config.profile.arguments(),
    ]

    def echo(line: str) -> None:
        if line.startswith(TRAINING_ECHO_PREFIXES):
            progress.fact(line.replace("=", " ", 1) if line.startswith("epoch=") else line)

    run.processes.run("training", argv, run.child_environment(), on_line=echo)
    archive = pack_model(run.model_dir, run.run_dir / MODEL_ARCHIVE)
    key = f"{TRAINING_PREFIX}/{job_name}/output/{MODEL_ARCHIVE}"
    boto3.client("s3").upload_file(str(archive), res.buckets.artifacts, key)
    model_data_url = f"s3://{res.buckets.artifacts}/{key}"
    progress.fact("model", model_data_url)
    environment = resources.registrar_environment(config, res)
    with lambda_environment(run, environment):
        gate = resources.invoke(
            registrar_app.lambda_handler,
            {"action": "evaluate", "model_data_url": model_data_url, "training_job_name": job_name},
            config.names.function("registrar"),
        )
        progress.fact(
            "quality gate",
            f"test AUROC {gate['test_auroc']:.3f} vs minimum {gate['min_test_auroc']:.2f} and "
            f"logistic baseline {gate['baseline_auroc']:.3f}: "
            f"{'passed' if gate['passed'] else 'failed'}",
        )
        if not gate["passed"]:
            raise DemoError(
                "the model did not pass the quality gate: " + "; ".join(gate["reasons"])
            )
        registered = resources.invoke(
            registrar_app.lambda_handler,
            {"action": "register", "evaluation": gate},
            config.names.function("registrar"),
        )
    package_arn = str(registered["model_package_arn"])
    status = boto3.client("sagemaker").describe_model_package(ModelPackageName=package_arn)
    progress.fact("registered", f"{package_arn} ({status['ModelApprovalStatus']})")
    approver = approver_view.show(run, gate)
    evaluation = json.loads((run.model_dir / EVALUATION_FILE).read_text())
    return {
        "training_job_name": job_name,
        "model_data_url": model_data_url,
        "model_package_arn": package_arn,
        "test": _metrics(evaluation.get("test", {})),
        "validation": _metrics(evaluation.get("validation", {})),
        "baseline_test_auroc": gate["baseline_auroc"],
        "approver_view": approver,
    }


def _metrics(section: dict[str, Any]) -> dict[str, Any]:
    names = ("auroc", "auprc", "brier", "ece", "recall", "precision", "alert_rate")
    return {name: section.get(name) for name in names if name in section}


def pack_model(model_dir: Path, archive: Path) -> Path:
    """``model.tar.gz`` the SageMaker way: the model directory's contents at the root."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                tar.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False)
    return archive


def approve_and_deploy(run: DemoRun, package_arn: str) -> dict[str, Any]:
    """Step 4: approve as a Studio user, hand SageMaker's event to the deployer, start serving."""
    config, progress = run.config, run.progress
    res = run.require_resources()
    progress.step(4, "Approval, deployer Lambda, endpoint")
    sagemaker = boto3.client("sagemaker")
    sagemaker.update_model_package(ModelPackageArn=package_arn, ModelApprovalStatus="Approved")
    package = sagemaker.describe_model_package(ModelPackageName=package_arn)
    progress.fact("UpdateModelPackage", f"version {package['ModelPackageVersion']} Approved")
    event = model_package_state_change(package)
    with lambda_environment(run, resources.deployer_environment(config, res)):
        # EventBridge -> the deployer's FIFO queue -> the deployer, until the endpoint settles.
        deliveries = deliver_until_settled(
            boto3.client("sqs"),
            res.deployment_queue_url,
            event,
            res.model_package_group,
            deployer_app.lambda_handler,
            config.names.function("deployer"),
        )
    progress.fact(
        "deployer Lambda",
        f"version {package['ModelPackageVersion']} serving after {deliveries} deliveries",
    )
    endpoint = sagemaker.describe_endpoint(EndpointName=config.names.endpoint)
    progress.fact(
        "endpoint",
        f"{config.names.endpoint} ({endpoint['EndpointStatus']}) on config "
        f"{endpoint['EndpointConfigName']}",
    )
    run.capture_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = run.processes.start(
        [
            sys.executable,
            "-m",
            "inference.serve",
            "--model-dir",
            str(run.model_dir),
            "--port",
            str(port),
            "--capture-dir",
            str(run.capture_dir),
            "--endpoint-name",
            config.names.endpoint,
            "--variant-name",
            VARIANT_NAME,
        ],
        run.child_environment(),
        run.progress.log_path,
    )
    run.endpoint_url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{run.endpoint_url}/ping", ENDPOINT_START_TIMEOUT_S, server)
    progress.fact("model server", f"{run.endpoint_url} (inference.serve, pid {server.pid})")
    return {
        "endpoint_name": config.names.endpoint,
        "endpoint_status": endpoint["EndpointStatus"],
        "endpoint_config": endpoint["EndpointConfigName"],
        "deployer_deliveries": deliveries,
        "model_package_version": package["ModelPackageVersion"],
    }


def model_package_state_change(package: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge event SageMaker emits after an approval status change."""
    arn = package["ModelPackageArn"]
    account = arn.split(":")[4]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": LOCAL_REGION,
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": package["ModelPackageGroupName"],
            "ModelPackageVersion": package["ModelPackageVersion"],
            "ModelPackageArn": arn,
            "ModelApprovalStatus": package["ModelApprovalStatus"],
            "ModelPackageStatus": package.get("ModelPackageStatus", "Completed"),
            "CreationTime": int(package["CreationTime"].timestamp() * 1000),
        },
    }


def start_gateway(run: DemoRun) -> LocalApiGateway:
    """Step 5a: the REST API's two routes in front of the predict Lambda."""
    name = run.config.names.function("predict")
    predict_app.clients.clear()
    return LocalApiGateway(
        routes=[
            Route("POST", "/predict", predict_app.lambda_handler, name),
            Route("GET", "/health", predict_app.lambda_handler, name),
            *ehr.cds_routes(name),
        ]
    )


def sample_requests(run: DemoRun, gateway: LocalApiGateway) -> dict[str, Any]:
    """Step 5b: /health, single and batch predictions through the gateway, with latency."""
    progress = run.progress
    run.api_url = gateway.url
    progress.step(5, "API Gateway (local) -> predict Lambda -> endpoint")
    progress.fact("api", run.api_url)
    health = traffic.call(f"{run.api_url}/health")
    progress.fact("GET /health", f"{health.status} {json.dumps(health.body)}")
    records = traffic.read_split(run.features_dir, "test")
    requests = [traffic.as_request(records[i % len(records)], i) for i in range(SAMPLE_REQUESTS)]
    replies = [traffic.call(f"{run.api_url}/predict", "POST", body) for body in requests]
    ok = [reply for reply in replies if reply.status == 200]
    if len(ok) != len(replies):
        raise DemoError(f"{len(replies) - len(ok)} of {len(replies)} sample predictions failed")
    first = ok[0].body["predictions"][0]
    progress.fact(
        "POST /predict",
        f"200 probability {first['probability']:.3f} ({first['risk_band']}), "
        f"model {first['model_version']}",
    )
    batch = traffic.call(f"{run.api_url}/predict", "POST", {"instances": requests[:SAMPLE_BATCH]})
    progress.fact(
        "POST /predict batch", f"{batch.status}, {len(batch.body['predictions'])} predictions"
    )
    latency = report.latency_summary([reply.latency_ms for reply in ok])
    progress.fact(
        "latency",
        f"p50 {latency['p50_ms']} ms, p95 {latency['p95_ms']} ms over {latency['requests']} calls",
    )
    progress.fact("try it")
    for line in traffic.curl_lines(run.api_url, traffic.EXAMPLE_REQUEST):
        progress.line(f"{report.FACT_INDENT}  {line}")
    return {
        "health": health.body,
        "latency": latency,
        "first_prediction": {k: first[k] for k in ("probability", "risk_band", "model_version")},
        "hashed_patient_example": keyed_hash(DEID_KEY, PATIENT_NAMESPACE, "demo-patient-0"),
    }


def replay_and_monitor(run: DemoRun) -> dict[str, Any]:
    """Step 6: a day of traffic with a shift, the capture in S3, the drift Lambda, the metrics."""
    config, progress = run.config, run.progress
    res = run.require_resources()
    alarms = config.stage.alarms
    progress.step(6, "A day of traffic with an injected shift, then the drift monitor")
    baseline = json.loads((run.model_dir / DRIFT_BASELINE_FILE).read_text())
    new_code = traffic.new_diagnosis_code(baseline)
    records = traffic.read_split(run.features_dir, "test")
    day = traffic.day_of_traffic(records, config.day_of_traffic, new_code, SYNTHETIC_SEED)
    failures = 0
    for batch in traffic.batches(day, traffic.TRAFFIC_BATCH_SIZE):
        reply = traffic.call(f"{run.api_url}/predict", "POST", {"instances": batch})
        failures += reply.status != 200
    if failures:
        raise DemoError(f"{failures} replayed batches failed")
    shifted = len(day) - int(len(day) * traffic.UNSHIFTED_SHARE)
    progress.fact(
        "replayed",
        f"{len(day)} encounters; the last {shifted} shifted (age +{traffic.SHIFT_AGE_YEARS}y, "
        f"prior admissions +{traffic.SHIFT_PRIOR_ADMISSIONS}, new diagnosis category)",
    )
    files = resources.upload_folder(
        boto3.client("s3"), run.capture_dir, res.buckets.capture, resources.CAPTURE_PREFIX
    )
    progress.fact("capture", f"{files} files -> s3://{res.buckets.capture}/capture/")
    window_end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    event = {"window_end": window_end.strftime("%Y-%m-%dT%H:%M:%SZ")}
    with lambda_environment(run, resources.drift_environment(config, res)):
        result = resources.invoke(
            drift_app.lambda_handler, event, config.names.function("drift_monitor")
        )
    metrics = read_drift_metrics(config.names.endpoint)
    over = sorted(name for name, psi in metrics["feature_psi"].items() if psi > alarms.feature_psi)
    progress.fact("records analysed", int(metrics.get("records_analysed", 0)))
    for name, psi in sorted(metrics["feature_psi"].items(), key=lambda item: -item[1])[:6]:
        mark = "ALARM" if psi > alarms.feature_psi else "ok"
        progress.fact(f"  FeaturePSI {name}", f"{psi:.3f} (threshold {alarms.feature_psi}) {mark}")
    prediction_psi = metrics.get("prediction_psi")
    if prediction_psi is not None:
        mark = "ALARM" if prediction_psi > alarms.prediction_psi else "ok"
        progress.fact(
            "  PredictionPSI", f"{prediction_psi:.3f} (threshold {alarms.prediction_psi}) {mark}"
        )
    progress.fact("features over threshold", ", ".join(over) or "none")
    return {
        "window": result["window"],
        "records_analysed": result["records_analysed"],
        "new_diagnosis_category": new_code,
        "feature_psi": metrics["feature_psi"],
        "prediction_psi": prediction_psi,
        "features_over_threshold": over,
        "feature_psi_threshold": alarms.feature_psi,
        "prediction_psi_threshold": alarms.prediction_psi,
        "prediction_psi_over_threshold": (
            prediction_psi is not None and prediction_psi > alarms.prediction_psi
        ),
    }


def read_drift_metrics(endpoint_name: str) -> dict[str, Any]:
    """The drift metrics as CloudWatch holds them (what the alarms evaluate)."""
    cloudwatch = boto3.client("cloudwatch")
    listed = cloudwatch.list_metrics(Namespace=DEFAULT_METRIC_NAMESPACE)["Metrics"]
    queries = []
    labels: dict[str, tuple[str, str | None]] = {}
    for index, metric in enumerate(listed):
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        if dims.get(DIMENSION_ENDPOINT) != endpoint_name:
            continue
        query_id = f"m{index}"
        labels[query_id] = (metric["MetricName"], dims.get(DIMENSION_FEATURE))
        queries.append(
            {
                "Id": query_id,
                "MetricStat": {"Metric": metric, "Period": 86_400, "Stat": "Maximum"},
                "ReturnData": True,
            }
        )
    now = datetime.now(UTC)
    values: dict[str, float] = {}
    for start in range(0, len(queries), 500):
        data = cloudwatch.get_metric_data(
            MetricDataQueries=queries[start : start + 500],
            StartTime=now - timedelta(days=2),
            EndTime=now + timedelta(hours=1),
        )
        for item in data["MetricDataResults"]:
            if item["Values"]:
                values[item["Id"]] = max(item["Values"])
    feature_psi: dict[str, float] = {}
    out: dict[str, Any] = {"feature_psi": feature_psi}
    for query_id, value in values.items():
        name, feature = labels[query_id]
        if name == METRIC_FEATURE_PSI and feature is not None:
            feature_psi[feature] = value
        elif name == METRIC_PREDICTION_PSI:
            out["prediction_psi"] = value
        elif name == METRIC_RECORDS_ANALYSED:
            out["records_analysed"] = value
    return out


@contextlib.contextmanager
def lambda_environment(run: DemoRun, values: dict[str, str]) -> Iterator[None]:
    """The Lambda's variables in ``os.environ`` (handlers read them there) while it runs;
    its log lines and metrics go to the run's log."""
    with (
        patched_environment({**resources.lambda_base_environment(), **values}),
        resources.handler_output_to(run.progress.log_stream),
    ):
        yield
