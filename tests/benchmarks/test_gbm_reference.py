"""The pure parts of the gradient-boosting reference benchmark.

Its code-presence columns and blend weight are the served trees' own (``inference.trees``,
``training.trees``), tested beside them.
"""

from __future__ import annotations

import numpy as np

from benchmarks.gbm_reference import standardised, tree_design
from inference.encoding import CLS_ID, PAD_ID, EncodedBatch


def test_tree_design_is_numerics_then_category_indices_then_code_presence() -> None:
    ids = np.array([[CLS_ID, 7, 9, PAD_ID], [CLS_ID, 11, 7, 9]])
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])  # row 1's 7 and 9 are masked out
    batch = EncodedBatch(
        code_ids=ids,
        code_types=np.zeros_like(ids),
        code_mask=mask,
        categorical=np.array([[2, 0], [1, 3]]),
        numeric=np.array([[0.5, 0.0], [-1.0, 1.0]], dtype=np.float32),
    )
    x = tree_design(batch, np.array([9, 7, 13]))
    assert x.tolist() == [[0.5, 0.0, 2, 0, 1, 1, 0], [-1.0, 1.0, 1, 3, 0, 0, 0]]


def test_standardised_uses_the_reference_statistics() -> None:
    reference = np.array([1.0, 3.0])
    assert standardised(np.array([2.0, 5.0]), reference).tolist() == [0.0, 3.0]
