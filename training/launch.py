"""Start the training job in SageMaker: ``python -m training.launch --stage dev|prod ...``.

Built on the SageMaker SDK v3 ``ModelTrainer`` with the ``Torchrun`` distribution, so that every
GPU of every instance runs ``training/train.py`` (the same module as ``python -m
training.train``) under torchrun. ``build_model_trainer`` is pure apart from the session it is
given, which lets the tests drive it against moto.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.metrics import METRIC_DEFINITIONS

REPO_ROOT = Path(__file__).resolve().parent.parent

#: PyTorch 2.6 is the newest SageMaker PyTorch training image whose CUDA 12.6 build still ships
#: Volta (sm_70) kernels for ml.p3, and the oldest that transformers 5 accepts (torch>=2.6).
#: See docs/model.md.
FRAMEWORK_VERSION = "2.6.0"
PY_VERSION = "py312"
#: Where SageMaker mounts the ``code`` channel; on PYTHONPATH so ``training`` imports as a package.
CONTAINER_CODE_DIR = "/opt/ml/input/data/code"
CONTAINER_CHECKPOINT_DIR = "/opt/ml/checkpoints"
ENTRY_SCRIPT = "training/train.py"
REQUIREMENTS = "training/requirements.txt"
SOURCE_PACKAGES = ("training", "inference", "contracts")
BASE_JOB_NAME = "readmission-train"


@dataclass(frozen=True)
class StageDefaults:
    instance_type: str
    instance_count: int
    use_spot: bool
    max_run_seconds: int


STAGES: dict[str, StageDefaults] = {
    "dev": StageDefaults("ml.p3.8xlarge", 1, use_spot=True, max_run_seconds=4 * 3600),
    "prod": StageDefaults("ml.p3.8xlarge", 2, use_spot=False, max_run_seconds=8 * 3600),
}


@dataclass(frozen=True)
class LaunchConfig:
    """Everything one training job needs; validated on construction."""

    stage: str
    region: str
    role_arn: str
    data_s3_uri: str  # the ETL output's features/ prefix (holding split=train|validation|test)
    output_s3_uri: str
    instance_type: str
    instance_count: int
    use_spot: bool
    max_run_seconds: int
    protected_s3_uri: str = ""  # the ETL output's protected/ prefix, for subgroup metrics
    checkpoint_s3_uri: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    volume_size_gb: int = 50
    processes_per_node: int | None = None  # None: one per GPU
    base_job_name: str = BASE_JOB_NAME

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {sorted(STAGES)}")
        for name in ("data_s3_uri", "output_s3_uri"):
            if not getattr(self, name).startswith("s3://"):
                raise ValueError(f"{name} must be an s3:// URI")
        for name in ("protected_s3_uri", "checkpoint_s3_uri"):
            value = getattr(self, name)
            if value and not value.startswith("s3://"):
                raise ValueError(f"{name} must be an s3:// URI")
        if not self.role_arn.startswith("arn:"):
            raise ValueError("role_arn must be an IAM role ARN")
        if self.instance_count < 1 or self.max_run_seconds < 60:
            raise ValueError("instance_count must be >= 1 and max_run_seconds >= 60")
        if self.use_spot and not self.checkpoint_s3_uri:
            raise ValueError("spot training needs checkpoint_s3_uri so that it can resume")

    @classmethod
    def for_stage(cls, stage: str, **overrides: Any) -> LaunchConfig:
        """The stage's defaults with explicit (non-``None``) overrides."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {sorted(STAGES)}")
        defaults = STAGES[stage]
        values: dict[str, Any] = {
            "instance_type": defaults.instance_type,
            "instance_count": defaults.instance_count,
            "use_spot": defaults.use_spot,
            "max_run_seconds": defaults.max_run_seconds,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(stage=stage, **values)


def training_image_uri(region: str, instance_type: str) -> str:
    """The region's PyTorch training image of ``FRAMEWORK_VERSION``, as the SDK resolves it."""
    from sagemaker.core import image_uris

    return str(
        image_uris.retrieve(
            "pytorch",
            region=region,
            version=FRAMEWORK_VERSION,
            py_version=PY_VERSION,
            instance_type=instance_type,
            image_scope="training",
        )
    )


def stage_source(destination: str | Path) -> Path:
    """Copy only the packages the job imports (not data, venvs or node_modules)."""
    destination = Path(destination)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in SOURCE_PACKAGES:
        shutil.copytree(
            REPO_ROOT / package, destination / package, ignore=ignore, dirs_exist_ok=True
        )
    return destination


def input_channels(config: LaunchConfig) -> list[Any]:
    """The train/validation/test channels (and protected attributes for subgroup metrics)."""
    from sagemaker.core.training.configs import InputData

    features = config.data_s3_uri.rstrip("/")
    channels = [
        InputData(channel_name=split, data_source=f"{features}/split={split}/")
        for split in ("train", "validation", "test")
    ]
    if config.protected_s3_uri:
        protected = config.protected_s3_uri.rstrip("/")
        channels.append(InputData(channel_name="protected", data_source=f"{protected}/split=test/"))
    return channels


def build_model_trainer(config: LaunchConfig, session: Any, source_dir: str | Path) -> Any:
    """Build the ``ModelTrainer`` of one job (nothing is sent until ``train`` is called)."""
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        MetricDefinition,
        OutputDataConfig,
        SourceCode,
        StoppingCondition,
    )
    from sagemaker.train.distributed import Torchrun
    from sagemaker.train.model_trainer import ModelTrainer

    stopping = StoppingCondition(max_runtime_in_seconds=config.max_run_seconds)
    if config.use_spot:
        stopping = StoppingCondition(
            max_runtime_in_seconds=config.max_run_seconds,
            max_wait_time_in_seconds=2 * config.max_run_seconds,
        )
    checkpoint = (
        CheckpointConfig(s3_uri=config.checkpoint_s3_uri, local_path=CONTAINER_CHECKPOINT_DIR)
        if config.checkpoint_s3_uri
        else None
    )
    trainer = ModelTrainer(
        sagemaker_session=session,
        role=config.role_arn,
        base_job_name=f"{config.base_job_name}-{config.stage}",
        training_image=training_image_uri(config.region, config.instance_type),
        source_code=SourceCode(
            source_dir=str(source_dir), entry_script=ENTRY_SCRIPT, requirements=REQUIREMENTS
        ),
        distributed=Torchrun(process_count_per_node=config.processes_per_node),
        compute=Compute(
            instance_type=config.instance_type,
            instance_count=config.instance_count,
            volume_size_in_gb=config.volume_size_gb,
            enable_managed_spot_training=config.use_spot,
        ),
        stopping_condition=stopping,
        checkpoint_config=checkpoint,
        output_data_config=OutputDataConfig(s3_output_path=config.output_s3_uri),
        hyperparameters=dict(config.hyperparameters),
        environment={
            "PYTHONPATH": CONTAINER_CODE_DIR,
            "SM_CHECKPOINT_DIR": CONTAINER_CHECKPOINT_DIR,
        },
        tags=[{"key": "project", "value": "readmission"}, {"key": "stage", "value": config.stage}],
    )
    definitions = [MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in METRIC_DEFINITIONS]
    return trainer.with_metric_definitions(definitions)


def launch(config: LaunchConfig, session: Any, wait: bool = False) -> str:
    """Start the job and return its name."""
    with tempfile.TemporaryDirectory(prefix="readmission-source-") as tmp:
        trainer = build_model_trainer(config, session, stage_source(tmp))
        trainer.train(input_data_config=input_channels(config), wait=wait, logs=wait)
        return str(trainer._latest_training_job.training_job_name)


def parse_args(argv: Sequence[str] | None = None) -> LaunchConfig:
    parser = argparse.ArgumentParser(prog="python -m training.launch", description=__doc__)
    parser.add_argument("--stage", required=True, choices=sorted(STAGES))
    parser.add_argument("--region", required=True)
    parser.add_argument("--role-arn", required=True)
    parser.add_argument("--data-s3-uri", required=True)
    parser.add_argument("--output-s3-uri", required=True)
    parser.add_argument("--protected-s3-uri", default="")
    parser.add_argument("--checkpoint-s3-uri", default="")
    parser.add_argument("--instance-type")
    parser.add_argument("--instance-count", type=int)
    parser.add_argument(
        "--spot", dest="use_spot", action=argparse.BooleanOptionalAction, default=None
    )
    parser.add_argument("--max-run-seconds", type=int)
    parser.add_argument("--hyperparameters", default="{}", help="JSON object")
    parser.add_argument("--wait", action="store_true")
    args = vars(parser.parse_args(argv))
    args.pop("wait")
    hyperparameters = json.loads(args.pop("hyperparameters"))
    if not isinstance(hyperparameters, dict):
        raise ValueError("--hyperparameters must be a JSON object")
    return LaunchConfig.for_stage(args.pop("stage"), hyperparameters=hyperparameters, **args)


def main(argv: Sequence[str] | None = None) -> str:
    import boto3
    from sagemaker.core.helper.session_helper import Session

    config = parse_args(argv)
    wait = bool(argv and "--wait" in argv)
    session = Session(boto_session=boto3.Session(region_name=config.region))
    name = launch(config, session, wait=wait)
    print(f"started training job {name}")
    return name


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
