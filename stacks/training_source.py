"""The SageMaker training job's ``sourcedir.tar.gz``, packed deterministically.

The PyTorch training image's toolkit unpacks ``sagemaker_submit_directory`` (a tar.gz; in
the network-isolated job, the copy SageMaker brings in as the ``code`` channel) into
``/opt/ml/code``, would pip-install a top-level ``requirements.txt`` (there is none) and runs
``sagemaker_program``. The folder comes from :func:`stacks.packaging.stage_training_source`;
fixed mtimes, owners and order make the bytes (and so the CDK asset hash) depend on the
sources only.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from stacks.packaging import BUILD_ROOT, REPO_ROOT, stage_training_source

ARCHIVE_NAME = "sourcedir.tar.gz"


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
