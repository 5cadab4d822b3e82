"""Fitting the gradient-boosted trees the model blends with, and choosing the blend weight.

LightGBM fits them (``inference.trees.TreeTerm`` serves the booster as LightGBM's text model,
no pickle). The design is built by the serving code's own ``inference.trees.design``, so the
trees read exactly what they will read in production; each categorical's index column is split
natively (a node sends a set of categories left).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from inference.encoding import EncodedBatch
from inference.trees import TreeTerm, design, frequent_codes, tree_spec
from training.config import HyperParameters
from training.metrics import auroc

#: The network's weights tried for the blend (steps of 0.1; 1.0 is the network alone).
BLEND_WEIGHTS = tuple(step / 10 for step in range(11))
#: Training rows from which 10 % are held out to stop adding trees.
EARLY_STOPPING_MIN_ROWS = 1000
#: Fraction of the training rows held out for early stopping.
EARLY_STOPPING_FRACTION = 0.1
#: Rounds without improvement of the held-out log-loss after which no tree is added.
EARLY_STOPPING_ROUNDS = 40
#: The most categories split natively (the bins a numeric gets, as before with scikit-learn);
#: a categorical with more is split on as an ordered index.
MAX_NATIVE_CATEGORIES = 255


def batch_design(batch: EncodedBatch, bag: np.ndarray) -> np.ndarray:
    """The trees' design matrix of an encoded batch (float64): numerics, each categorical's
    index, the presence of each ``bag`` code token."""
    return design(
        torch.from_numpy(batch.numeric),
        torch.from_numpy(batch.categorical),
        torch.from_numpy(batch.code_ids),
        torch.from_numpy(batch.code_mask),
        torch.from_numpy(bag),
    )


def categorical_columns(numeric_width: int, cardinalities: Sequence[int]) -> list[int]:
    """The design columns LightGBM splits as categories: each categorical's index column.

    Native categorical splits ranked better than one-hot columns in patient-grouped
    cross-validation on UCI (docs/model.md).
    """
    return [
        numeric_width + i for i, size in enumerate(cardinalities) if size <= MAX_NATIVE_CATEGORIES
    ]


def lightgbm_params(hyper: HyperParameters) -> dict[str, Any]:
    """LightGBM's settings from the tree hyperparameters (the same names meant before)."""
    return {
        "objective": "binary",
        "learning_rate": hyper.tree_learning_rate,
        "num_leaves": hyper.tree_max_leaf_nodes,
        "min_data_in_leaf": hyper.tree_min_samples_leaf,
        "lambda_l2": 1.0,
        "max_bin": 255,
        "seed": hyper.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": hyper.cpu_threads or 0,
        "verbosity": -1,
    }


def fit_trees(
    batch: EncodedBatch, y: np.ndarray, cardinalities: Sequence[int], hyper: HyperParameters
) -> TreeTerm:
    """Fit LightGBM on the training split; early stopping on 10 % of it from 1,000 rows on.

    Validation stays untouched for choosing the blend and calibrating; smaller sets grow the
    full ``tree_max_iterations`` trees.
    """
    import lightgbm

    bag = frequent_codes(batch.code_ids, batch.code_mask, hyper.tree_bag_size)
    x = batch_design(batch, bag)
    numeric_width = batch.numeric.shape[1]
    categorical = categorical_columns(numeric_width, cardinalities)
    params = lightgbm_params(hyper)
    y = np.asarray(y, dtype=np.float64)
    fit_rows, stop_rows = _early_stopping_split(y, hyper.seed)
    train = lightgbm.Dataset(
        x[fit_rows], y[fit_rows], categorical_feature=categorical, params=params, free_raw_data=True
    )
    valid_sets: list[Any] = []
    callbacks: list[Any] = []
    if len(stop_rows):
        valid_sets = [train.create_valid(x[stop_rows], y[stop_rows])]
        callbacks = [lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)]
    booster = lightgbm.train(
        params,
        train,
        num_boost_round=hyper.tree_max_iterations,
        valid_sets=valid_sets,
        callbacks=callbacks,
    )
    if len(stop_rows):  # keep the trees up to the best round only
        booster = lightgbm.Booster(
            model_str=booster.model_to_string(num_iteration=booster.best_iteration)
        )
    return TreeTerm(booster, tree_spec(numeric_width, cardinalities, bag))


def _early_stopping_split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices to fit on and to stop on (stratified; none held out below 1,000 rows)."""
    rows = np.arange(len(y))
    if len(y) < EARLY_STOPPING_MIN_ROWS or len(np.unique(y)) < 2:
        return rows, rows[:0]
    from sklearn.model_selection import train_test_split

    fit, stop = train_test_split(
        rows, test_size=EARLY_STOPPING_FRACTION, stratify=y, random_state=seed
    )
    return np.sort(fit), np.sort(stop)


def choose_network_weight(
    y_validation: np.ndarray, network: np.ndarray, trees: np.ndarray, shift: float
) -> float:
    """The network's blend weight with the best validation AUROC (ties: the larger weight).

    Without both classes in validation there is nothing to choose on: the network alone.
    """
    scored = []
    for weight in BLEND_WEIGHTS:
        value = auroc(y_validation, weight * network + (1.0 - weight) * (trees + shift))
        if math.isnan(value):
            return 1.0
        scored.append((value, weight))
    return max(scored)[1]
