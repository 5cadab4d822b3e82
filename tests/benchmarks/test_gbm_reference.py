"""The pure parts of the gradient-boosting reference benchmark."""

from __future__ import annotations

import numpy as np

from benchmarks.gbm_reference import choose_blend, code_presence, standardised
from inference.encoding import CLS_ID


def test_code_presence_marks_bag_tokens_under_the_mask_only() -> None:
    ids = np.array([[CLS_ID, 7, 9, 9], [CLS_ID, 11, 7, 9]])
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]])  # row 1's 7 and 9 are padding
    presence = code_presence(ids, mask, np.array([9, 7, 13]))
    assert presence.tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]


def test_standardised_uses_the_reference_statistics() -> None:
    reference = np.array([1.0, 3.0])
    assert standardised(np.array([2.0, 5.0]), reference).tolist() == [0.0, 3.0]


def test_choose_blend_finds_the_informative_model() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    informative = y + rng.normal(0, 0.5, 400)
    noise = rng.normal(0, 1, 400)
    assert choose_blend(y, informative, noise) == 1.0
    assert choose_blend(y, noise, informative) == 0.0
    both = choose_blend(y, y + rng.normal(0, 1, 400), y + rng.normal(0, 1, 400))
    assert 0.0 < both < 1.0  # two independent, equally noisy views: the blend beats either
