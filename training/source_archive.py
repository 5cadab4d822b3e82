"""The SageMaker training job's ``sourcedir.tar.gz``: which packages it holds, packed
deterministically.

The PyTorch training image's toolkit unpacks ``sagemaker_submit_directory`` (a tar.gz; in the
network-isolated job, the copy SageMaker brings in as the ``code`` channel) into
``/opt/ml/code``, would pip-install a top-level ``requirements.txt`` (there is none: the derived
training image already holds the packages, and the training subnets could not reach PyPI
anyway) and runs ``sagemaker_program``. Fixed mtimes, owners and order make the bytes (and so
the CDK asset hash) depend on the sources only.

The training job's own contract, like :mod:`training.job_spec`: the TrainingPipeline stack
(through ``stacks.training_source``) and the operator's launcher (:mod:`training.launch`) pack
the same archive with it, and nothing here imports the stacks. Standard library only.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import shutil
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_ROOT = REPO_ROOT / "build"
ARCHIVE_NAME = "sourcedir.tar.gz"
#: What the training job's source folder holds (``contracts`` travels with every artifact).
TRAINING_PACKAGES = ("training", "inference", "contracts")

#: Modules that only tests, benchmarks and the local demo run (the synthetic data generators,
#: the in-process endpoint server): no artifact carries them, this archive included (the stacks'
#: other artifacts read the same list through ``stacks.packaging``). Repo-relative globs.
LOCAL_ONLY_MODULES = (
    "glue_jobs/synthetic_*.py",
    "training/synthetic.py",
    "inference/local_endpoint.py",
    # The operator's launcher: it starts the job from a workstation and never runs inside it.
    "training/launch.py",
)

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")


def local_only(relative: str) -> bool:
    """Whether a repo-relative path is one of :data:`LOCAL_ONLY_MODULES`."""
    return any(fnmatch.fnmatchcase(relative, pattern) for pattern in LOCAL_ONLY_MODULES)


def _ignored_under(root: Path) -> Callable[[str, list[str]], set[str]]:
    """A ``copytree`` ignore: caches, bytecode and the local-only modules under ``root``."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        where = Path(directory).resolve().relative_to(root.resolve())
        skipped = set(_IGNORED(directory, names))
        return skipped | {name for name in names if local_only((where / name).as_posix())}

    return ignore


def stage_directory(packages: Iterable[str], destination: Path, root: Path = REPO_ROOT) -> Path:
    """Copy ``packages`` (repo-relative folders, local-only modules left out) into a fresh
    ``destination`` and return it. Every artifact is staged with it (``stacks.packaging``)."""
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    for package in packages:
        source = root / package
        if not (source / "__init__.py").is_file():
            raise FileNotFoundError(f"{package} is not a Python package under {root}")
        shutil.copytree(source, destination / package, ignore=_ignored_under(root))
    return destination


def stage_training_source(build_root: Path = BUILD_ROOT, root: Path = REPO_ROOT) -> Path:
    """Copy the training source's packages into a fresh ``<build_root>/training-source``.

    The packages' own files stay (``inference/requirements.txt`` is what
    ``training/artifact.py`` copies into the model's ``code/``).
    """
    return stage_directory(TRAINING_PACKAGES, build_root / "training-source", root)


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def build_training_source_archive(build_root: Path = BUILD_ROOT, root: Path = REPO_ROOT) -> Path:
    """Stage the training source and pack it as ``<build_root>/training/sourcedir.tar.gz``."""
    source = stage_training_source(build_root, root)
    target = build_root / "training" / ARCHIVE_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(source.rglob("*")):
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            archive.add(path, arcname=str(path.relative_to(source)), recursive=False, filter=_reset)
    with target.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(buffer.getvalue())
    return target
