"""The SageMaker training job's ``sourcedir.tar.gz``, packed deterministically.

Defined by :mod:`training.source_archive` (the training job's own contract, which the
operator's launcher packs too without importing the stacks); this is the stacks' name for it.
"""

from __future__ import annotations

from training.source_archive import ARCHIVE_NAME, build_training_source_archive

__all__ = ["ARCHIVE_NAME", "build_training_source_archive"]
