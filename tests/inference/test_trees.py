"""The tree term: LightGBM's booster over the encoded design, saved as its text model, and the
category classes that occlusion averages with are exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inference.encoding import CLS_ID, PAD_ID, UNK_ID, EncodedBatch
from inference.trees import (
    TREES_FILE,
    LegacyTreesError,
    TreeSpec,
    TreeTerm,
    design,
    frequent_codes,
)
from training.config import HyperParameters
from training.trees import fit_trees

CARDINALITIES = (3, 7)
NUMERIC_WIDTH = 4


def _batch(n: int, seed: int) -> EncodedBatch:
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(n, NUMERIC_WIDTH)).astype(np.float32)
    categorical = np.stack([rng.integers(0, c, n) for c in CARDINALITIES], axis=1)
    lengths = rng.integers(1, 6, n)
    code_ids = np.zeros((n, 7), dtype=np.int64)
    for row, length in enumerate(lengths):
        code_ids[row, 0] = CLS_ID
        code_ids[row, 1 : 1 + length] = rng.integers(CLS_ID + 1, 20, length)  # may repeat
    code_ids[:, 1][code_ids[:, 1] == 19] = UNK_ID  # some rows hold a rare code
    return EncodedBatch(
        code_ids=code_ids,
        code_types=np.zeros_like(code_ids),
        code_mask=(code_ids != PAD_ID).astype(np.int64),
        categorical=categorical,
        numeric=numeric,
    )


def _labels(batch: EncodedBatch, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    signal = (
        batch.numeric[:, 0]
        + np.isin(batch.categorical[:, 1], (2, 5))
        - (batch.categorical[:, 1] == 4)
        + (batch.code_ids == 7).any(axis=1)
    )
    return (signal + rng.normal(0, 0.5, len(signal)) > 0.8).astype(int)


def _tensors(batch: EncodedBatch) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in batch.arrays().items()}


@pytest.fixture(scope="module")
def fitted() -> TreeTerm:
    batch = _batch(3000, 0)
    # The last category of the second field never occurs in training.
    batch.categorical[batch.categorical[:, 1] == CARDINALITIES[1] - 1, 1] = 0
    hyper = HyperParameters(
        tree_min_samples_leaf=20, tree_max_iterations=40, tree_max_leaf_nodes=15, tree_bag_size=10
    )
    return fit_trees(batch, _labels(batch, 1), CARDINALITIES, hyper)


def test_frequent_codes_orders_by_count_then_id_and_skips_padding_and_cls() -> None:
    ids = np.array([[CLS_ID, 7, 9, 9, PAD_ID], [CLS_ID, 9, 7, UNK_ID, 11]])
    mask = (ids != PAD_ID).astype(np.int64)
    assert frequent_codes(ids, mask, 10).tolist() == [9, 7, UNK_ID, 11]
    assert frequent_codes(ids, mask, 2).tolist() == [9, 7]


def test_design_reads_presence_under_the_mask_only() -> None:
    ids = torch.tensor([[CLS_ID, 7, 9, 9], [CLS_ID, 11, 7, 9]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])  # row 1's 7 and 9 are masked out
    numeric, categorical, bag = (
        torch.zeros(2, 1),
        torch.tensor([[2], [0]]),
        torch.tensor([9, 7, 13]),
    )
    x = design(numeric, categorical, ids, mask, bag)
    assert x.dtype == np.float64
    assert x.tolist() == [[0, 2, 1, 1, 0], [0, 0, 0, 0, 0]]


def test_the_trees_split_categoricals_natively_and_learn(fitted: TreeTerm) -> None:
    dump = fitted.booster.dump_model()
    stack = [t["tree_structure"] for t in dump["tree_info"]]
    categorical_splits = 0
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            stack.extend((node["left_child"], node["right_child"]))
            if node["decision_type"] == "==":
                assert node["split_feature"] in fitted.spec.categorical_columns
                categorical_splits += 1
    assert categorical_splits > 0
    assert fitted.splits > 0
    rows = _batch(500, 2)
    scores = fitted(**{k: v for k, v in _tensors(rows).items() if k != "code_types"})
    assert scores.dtype == torch.float64
    assert float(scores.std()) > 0.1  # the trees learned something


def test_the_text_model_round_trips_through_the_model_directory(
    fitted: TreeTerm, tmp_path: Path
) -> None:
    fitted.save(tmp_path)
    text = (tmp_path / TREES_FILE).read_text()
    assert text.startswith("tree\nversion=")  # LightGBM's public text format, not a pickle
    reloaded = TreeTerm.load(tmp_path, TreeSpec.from_dict(fitted.spec.to_dict()))
    x = fitted.design(**{k: v for k, v in _tensors(_batch(200, 3)).items() if k != "code_types"})
    np.testing.assert_array_equal(reloaded.score(x), fitted.score(x))
    assert reloaded.spec == fitted.spec


def test_a_tree_spec_written_by_scikit_learn_exports_is_refused() -> None:
    legacy = {  # model_config.json "trees" as the scikit-learn export wrote it
        "n_trees": 120, "n_nodes": 63, "depth": 9, "numeric_width": 24,
        "category_cardinalities": [3, 9], "bag_size": 400, "categorical_splits": True,
    }  # fmt: skip
    with pytest.raises(LegacyTreesError, match="scikit-learn"):
        TreeSpec.from_dict(legacy)


def test_a_booster_on_another_design_is_refused(fitted: TreeTerm) -> None:
    spec = TreeSpec(NUMERIC_WIDTH + 1, CARDINALITIES, fitted.spec.bag)
    with pytest.raises(ValueError, match="design"):
        TreeTerm(fitted.booster, spec)


def test_categories_of_one_class_score_alike_on_any_row(fitted: TreeTerm) -> None:
    x = fitted.design(**{k: v for k, v in _tensors(_batch(300, 5)).items() if k != "code_types"})
    classes = fitted.category_classes()
    assert [len(c) for c in classes] == list(CARDINALITIES)
    for field, class_of in enumerate(classes):
        column = NUMERIC_WIDTH + field
        scores = []
        for category in range(CARDINALITIES[field]):
            variant = x.copy()
            variant[:, column] = category
            scores.append(fitted.score(variant))
        for a in range(CARDINALITIES[field]):
            for b in range(CARDINALITIES[field]):
                same = np.array_equal(scores[a], scores[b])
                if class_of[a] == class_of[b]:
                    assert same, (field, a, b)
        # classes are as coarse as the trees allow, and finer than one class per field
        assert len(set(class_of.tolist())) > 1
