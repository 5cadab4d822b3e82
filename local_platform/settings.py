"""What the demo runs: its options, the training profile and the names of the resources.

Names come from the same places the stacks take them (``cdk.json`` through
``stacks.config.load_stage_config`` and ``stacks.naming.ResourceNames``), so the local run
addresses the endpoint, model package group and alarms by their deployed names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from contracts import deployment
from stacks.config import StageConfig, load_stage_config
from stacks.naming import ResourceNames

REPO_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = REPO_ROOT / "cdk.json"
DEMO_STAGE = "dev"

SOURCE_UCI = "uci_diabetes"
SOURCE_MIMIC = "mimic3"
SOURCE_SYNTHETIC = "synthetic"
SOURCES = (SOURCE_UCI, SOURCE_MIMIC, SOURCE_SYNTHETIC)

#: Bundled data of each real source (data/README.md); synthetic data is generated per run.
BUNDLED_DATA = {
    SOURCE_UCI: REPO_ROOT / "data" / "uci-diabetes",
    SOURCE_MIMIC: REPO_ROOT / "data" / "mimic3-demo",
}
#: The ETL job reads synthetic tables through its MIMIC-III reader (glue_jobs.readers).
ETL_SOURCE = {SOURCE_UCI: SOURCE_UCI, SOURCE_MIMIC: SOURCE_MIMIC, SOURCE_SYNTHETIC: SOURCE_MIMIC}

DEFAULT_SYNTHETIC_ADMISSIONS = 20_000
SYNTHETIC_SEED = 7

#: Key prefixes as the stacks define them (stacks/components/model_registry.py).
TRAINING_PREFIX = "training"
CAPTURE_PREFIX = "capture"
VARIANT_NAME = deployment.VARIANT_NAME
#: Stand-in for the PyTorch inference image: locally ``inference.serve`` is the container.
LOCAL_INFERENCE_IMAGE = "000000000000.dkr.ecr.us-east-1.amazonaws.com/readmission-inference:local"
TRAINING_PROCESSES = 2


@dataclass(frozen=True)
class TrainingProfile:
    """Hyperparameters of the demo's training run, passed to ``training.train``."""

    epochs: int
    max_steps: int
    batch_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    fusion_size: int
    tabular_hidden_size: int
    learning_rate: float
    log_every: int

    def arguments(self) -> list[str]:
        """The command-line flags of ``python -m training.train``."""
        values = {
            "epochs": self.epochs,
            "max-steps": self.max_steps,
            "batch-size": self.batch_size,
            "hidden-size": self.hidden_size,
            "num-layers": self.num_layers,
            "num-heads": self.num_heads,
            "fusion-size": self.fusion_size,
            "tabular-hidden-size": self.tabular_hidden_size,
            "learning-rate": self.learning_rate,
            "log-every": self.log_every,
        }
        return [part for name, value in values.items() for part in (f"--{name}", str(value))]


#: Sized so that the whole default run stays near ten minutes on 2 cores.
DEMO_PROFILE = TrainingProfile(
    epochs=3,
    max_steps=0,
    batch_size=256,
    hidden_size=64,
    num_layers=2,
    num_heads=4,
    fusion_size=64,
    tabular_hidden_size=128,
    learning_rate=1e-3,
    log_every=50,
)
#: ``--quick``: a small model for a few thousand admissions (the end-to-end test).
QUICK_PROFILE = TrainingProfile(
    epochs=4,
    max_steps=0,
    batch_size=64,
    hidden_size=64,
    num_layers=1,
    num_heads=4,
    fusion_size=32,
    tabular_hidden_size=64,
    learning_rate=2e-3,
    log_every=50,
)


@dataclass(frozen=True)
class DemoConfig:
    """One demo run's options (``python -m local_platform.demo --help``)."""

    source: str = SOURCE_UCI
    admissions: int = DEFAULT_SYNTHETIC_ADMISSIONS
    run_dir: Path | None = None
    serve: bool = False
    quick: bool = False
    traffic_requests: int = 0  # 0: the profile's default
    stage: StageConfig = field(default_factory=lambda: load_stage(DEMO_STAGE))

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}")
        if self.admissions < 1:
            raise ValueError("admissions must be at least 1")
        if self.traffic_requests < 0:
            raise ValueError("traffic_requests must not be negative")

    @property
    def profile(self) -> TrainingProfile:
        return QUICK_PROFILE if self.quick else DEMO_PROFILE

    @property
    def day_of_traffic(self) -> int:
        """Encounters replayed as one day of traffic in step 6."""
        if self.traffic_requests:
            return self.traffic_requests
        return 400 if self.quick else 1200

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.stage.prefix)


def load_stage(stage: str) -> StageConfig:
    """The stage's configuration from ``cdk.json``, exactly as ``app.py`` reads it."""
    context = json.loads(CDK_JSON.read_text())["context"]
    return load_stage_config(context, stage)


@dataclass(frozen=True)
class BucketNames:
    """The data lake's buckets (CDK generates physical names; locally they are fixed)."""

    raw: str
    curated: str
    artifacts: str
    capture: str

    @classmethod
    def for_prefix(cls, prefix: str) -> BucketNames:
        return cls(
            raw=f"{prefix}-raw",
            curated=f"{prefix}-curated",
            artifacts=f"{prefix}-artifacts",
            capture=f"{prefix}-capture",
        )

    def all(self) -> tuple[str, ...]:
        return (self.raw, self.curated, self.artifacts, self.capture)
