"""Trees as tensors: the torch traversal gives scikit-learn's scores; it refuses what it can't.

Both designs: categoricals as index columns with native categorical splits (what training
fits) and one-hot columns with numeric splits only (ensembles exported before).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from inference.encoding import CLS_ID, PAD_ID, UNK_ID
from inference.trees import TreeEnsemble, TreeShape, design, frequent_codes, from_sklearn

CARDINALITIES = (3, 5)
NUMERIC_WIDTH = 4


def _batch(n: int, seed: int) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(n, NUMERIC_WIDTH)).astype(np.float32)
    categorical = np.stack([rng.integers(0, c, n) for c in CARDINALITIES], axis=1)
    lengths = rng.integers(1, 6, n)
    code_ids = np.zeros((n, 7), dtype=np.int64)
    for row, length in enumerate(lengths):
        code_ids[row, 0] = CLS_ID
        code_ids[row, 1 : 1 + length] = rng.integers(CLS_ID + 1, 20, length)  # may repeat
    code_ids[:, 1][code_ids[:, 1] == 19] = UNK_ID  # some rows hold a rare code
    code_mask = (code_ids != PAD_ID).astype(np.int64)
    return {
        "numeric": torch.from_numpy(numeric),
        "categorical": torch.from_numpy(categorical),
        "code_ids": torch.from_numpy(code_ids),
        "code_mask": torch.from_numpy(code_mask),
    }


def _labels(batch: dict[str, torch.Tensor], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    signal = (
        batch["numeric"][:, 0].numpy()
        + (batch["categorical"][:, 1].numpy() == 2)
        + (batch["code_ids"] == 7).any(dim=1).numpy()
    )
    return (signal + rng.normal(0, 0.5, len(signal)) > 0.8).astype(int)


def _fitted(
    batch: dict[str, torch.Tensor], categorical_splits: bool = True
) -> tuple[TreeEnsemble, HistGradientBoostingClassifier]:
    bag = frequent_codes(batch["code_ids"].numpy(), batch["code_mask"].numpy(), 10)
    x = design(
        **batch, cardinalities=CARDINALITIES, bag=torch.from_numpy(bag),
        categorical_splits=categorical_splits,
    ).numpy()  # fmt: skip
    categorical = None
    if categorical_splits:
        categorical = np.zeros(x.shape[1], dtype=bool)
        categorical[NUMERIC_WIDTH : NUMERIC_WIDTH + len(CARDINALITIES)] = True
    model = HistGradientBoostingClassifier(
        max_iter=40, max_leaf_nodes=15, random_state=0, categorical_features=categorical
    )
    model.fit(x, _labels(batch, 1))
    exported = from_sklearn(model, NUMERIC_WIDTH, CARDINALITIES, bag, categorical_splits)
    return exported, model


both_designs = pytest.mark.parametrize(
    "categorical_splits", [True, False], ids=["native", "one-hot"]
)


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
    x = design(numeric, categorical, ids, mask, (3,), bag, categorical_splits=False)
    assert x.tolist() == [[0, 0, 0, 1, 1, 1, 0], [0, 1, 0, 0, 0, 0, 0]]
    x = design(numeric, categorical, ids, mask, (3,), bag)  # categoricals as their index
    assert x.tolist() == [[0, 2, 1, 1, 0], [0, 0, 0, 0, 0]]


@both_designs
def test_torch_traversal_equals_scikit_learn_on_unseen_rows(categorical_splits: bool) -> None:
    batch = _batch(3000, 0)
    # The last category of each field never occurs in training: scikit-learn routes it as
    # missing, and so must the export.
    for j, size in enumerate(CARDINALITIES):
        batch["categorical"][batch["categorical"][:, j] == size - 1, j] = 0
    ensemble, model = _fitted(batch, categorical_splits)
    if categorical_splits:
        assert ensemble.categorical.any()  # the comparison covers categorical splits
    unseen = _batch(500, 2)
    assert (unseen["categorical"] == torch.tensor(CARDINALITIES) - 1).all(dim=1).any()
    x = ensemble.design(**unseen)
    expected = model.decision_function(x.numpy())
    with torch.inference_mode():
        got = ensemble(**unseen).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    assert np.std(expected) > 0.1  # the trees learned something to compare


@both_designs
def test_state_dict_and_shape_round_trip(categorical_splits: bool) -> None:
    ensemble, _ = _fitted(_batch(2000, 0), categorical_splits)
    rebuilt = TreeEnsemble(TreeShape.from_dict(ensemble.shape.to_dict()))
    rebuilt.load_state_dict(ensemble.state_dict())
    rows = _batch(50, 3)
    with torch.inference_mode():
        assert torch.equal(rebuilt(**rows), ensemble(**rows))


def test_a_shape_recorded_before_categorical_splits_reads_as_one_hot() -> None:
    ensemble, _ = _fitted(_batch(2000, 0), categorical_splits=False)
    recorded = ensemble.shape.to_dict()
    del recorded["categorical_splits"]  # model_config.json written before the field existed
    rebuilt = TreeEnsemble(TreeShape.from_dict(recorded))
    rebuilt.load_state_dict(ensemble.state_dict())  # strict: the same buffers
    rows = _batch(50, 3)
    with torch.inference_mode():
        assert torch.equal(rebuilt(**rows), ensemble(**rows))


def test_refuses_categorical_splits_off_the_index_columns_and_foreign_designs() -> None:
    batch = _batch(500, 0)
    bag = frequent_codes(batch["code_ids"].numpy(), batch["code_mask"].numpy(), 10)
    y = _labels(batch, 1)
    one_hot = design(
        **batch, cardinalities=CARDINALITIES, bag=torch.from_numpy(bag), categorical_splits=False
    ).numpy()
    native = HistGradientBoostingClassifier(max_iter=5, categorical_features=[NUMERIC_WIDTH])
    native.fit(one_hot, y)  # a one-hot column declared categorical
    with pytest.raises(ValueError, match="categorical splits"):
        from_sklearn(native, NUMERIC_WIDTH, CARDINALITIES, bag, categorical_splits=False)
    indexed = design(**batch, cardinalities=CARDINALITIES, bag=torch.from_numpy(bag)).numpy()
    on_a_numeric = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0])
    on_a_numeric.fit(np.abs(np.round(indexed)), y)
    with pytest.raises(ValueError, match="categorical splits"):
        from_sklearn(on_a_numeric, NUMERIC_WIDTH, CARDINALITIES, bag)
    plain = HistGradientBoostingClassifier(max_iter=5).fit(one_hot, y)
    with pytest.raises(ValueError, match="design"):
        from_sklearn(plain, NUMERIC_WIDTH + 1, CARDINALITIES, bag, categorical_splits=False)
    with pytest.raises(ValueError, match="design"):  # a one-hot fit exported as indexed
        from_sklearn(plain, NUMERIC_WIDTH, CARDINALITIES, bag)


def test_splits_counts_split_nodes_only() -> None:
    ensemble, model = _fitted(_batch(2000, 0))
    expected = sum(int((p[0].nodes["is_leaf"] == 0).sum()) for p in model._predictors)
    assert ensemble.splits == expected > 0
    assert TreeEnsemble(ensemble.shape).splits == 0  # unfitted: every node a leaf


@both_designs
def test_variant_scores_equal_scoring_each_variant_whole(categorical_splits: bool) -> None:
    ensemble, _ = _fitted(_batch(3000, 0), categorical_splits)
    first_code = NUMERIC_WIDTH + ensemble.shape.categorical_width
    original = ensemble.design(**_batch(6, 4))
    width = original.shape[1]
    rng = np.random.default_rng(9)
    owners = torch.from_numpy(rng.integers(0, 6, 300))
    columns = torch.full((300, 3), width, dtype=torch.int64)  # padding
    values = torch.zeros(300, 3, dtype=torch.float64)
    variants = original.index_select(0, owners).clone()
    for row in range(300):  # 0 to 3 changed columns, as occlusion does
        picked = rng.choice(width, rng.integers(0, 4), replace=False).tolist()
        for i, column in enumerate(picked):
            if column < NUMERIC_WIDTH:
                value = float(rng.normal())
            elif column < first_code and categorical_splits:  # a category index
                value = float(rng.integers(0, CARDINALITIES[column - NUMERIC_WIDTH]))
            else:  # a one-hot or code-presence column
                value = float(rng.integers(0, 2))
            columns[row, i], values[row, i] = column, value
            variants[row, column] = value
    leaves, tested = ensemble.walk(original, record_paths=True)
    assert tested is not None
    got = ensemble.variant_scores(original, leaves, tested, owners, columns, values)
    torch.testing.assert_close(got, ensemble.score(variants), rtol=0, atol=1e-12)


def test_category_averages_equal_scoring_every_category_whole() -> None:
    ensemble, _ = _fitted(_batch(3000, 0))
    rows = _batch(40, 5)
    original = ensemble.design(**rows)
    leaves, tested = ensemble.walk(original, record_paths=True)
    assert tested is not None
    rng = np.random.default_rng(4)
    weights = [torch.from_numpy(rng.dirichlet(np.ones(size))) for size in CARDINALITIES]
    classes = [ensemble.category_classes(field, w) for field, w in enumerate(weights)]
    got = ensemble.category_averages(original, leaves, tested, classes)
    for field, size in enumerate(CARDINALITIES):
        assert classes[field].representative.shape[1] < size  # some trees route alike
        expected = torch.zeros(len(original), dtype=torch.float64)
        for category in range(size):
            variant = original.clone()
            variant[:, NUMERIC_WIDTH + field] = category
            expected += weights[field][category] * ensemble.score(variant)
        torch.testing.assert_close(got[:, field], expected, rtol=0, atol=1e-12)
