"""The pure parts of the gradient-boosting reference benchmark.

Its design, categorical columns and blend weight are the served trees' own
(``training.trees``), tested beside them.
"""

from __future__ import annotations

import numpy as np

from benchmarks.gbm_reference import standardised


def test_standardised_uses_the_reference_statistics() -> None:
    reference = np.array([1.0, 3.0])
    assert standardised(np.array([2.0, 5.0]), reference).tolist() == [0.0, 3.0]
