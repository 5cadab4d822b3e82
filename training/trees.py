"""Fitting the gradient-boosted trees the model blends with, and choosing the blend weight.

scikit-learn fits them (training only); ``inference.trees.from_sklearn`` turns them into
tensors that serve inside the model. The design is built by the serving code's own
``inference.trees.design``, so the trees read exactly what they will read in production.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from inference.encoding import EncodedBatch
from inference.trees import TreeEnsemble, design, frequent_codes, from_sklearn
from training.config import HyperParameters
from training.metrics import auroc

#: The network's weights tried for the blend (steps of 0.1; 1.0 is the network alone).
BLEND_WEIGHTS = tuple(step / 10 for step in range(11))
#: Training rows from which 10 % are held out to stop adding trees.
EARLY_STOPPING_MIN_ROWS = 1000
#: The most categories scikit-learn splits natively on (its ``max_bins``); a categorical
#: with more is split on as an ordered index.
MAX_NATIVE_CATEGORIES = 255


def batch_design(batch: EncodedBatch, cardinalities: Sequence[int], bag: np.ndarray) -> np.ndarray:
    """The trees' design matrix of an encoded batch (float64, as scikit-learn fits in):
    each categorical as its index column, split natively (``categorical_mask``)."""
    x = design(
        torch.from_numpy(batch.numeric),
        torch.from_numpy(batch.categorical),
        torch.from_numpy(batch.code_ids),
        torch.from_numpy(batch.code_mask),
        cardinalities,
        torch.from_numpy(bag),
    )
    return x.numpy()


def fit_trees(
    batch: EncodedBatch, y: np.ndarray, cardinalities: Sequence[int], hyper: HyperParameters
) -> TreeEnsemble:
    """Fit ``HistGradientBoostingClassifier`` on the training split and export it.

    Early stopping holds out 10 % of the training rows from 1,000 rows on (scikit-learn's own
    ``auto`` waits for 10,000, and smaller sets would then always grow the full
    ``tree_max_iterations`` trees, each one serving cost); validation stays untouched for
    choosing the blend and calibrating.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    bag = frequent_codes(batch.code_ids, batch.code_mask, hyper.tree_bag_size)
    model = HistGradientBoostingClassifier(
        categorical_features=categorical_mask(batch.numeric.shape[1], cardinalities, len(bag)),
        learning_rate=hyper.tree_learning_rate,
        max_leaf_nodes=hyper.tree_max_leaf_nodes,
        min_samples_leaf=hyper.tree_min_samples_leaf,
        l2_regularization=1.0,
        max_iter=hyper.tree_max_iterations,
        early_stopping=len(y) >= EARLY_STOPPING_MIN_ROWS,
        n_iter_no_change=40,
        random_state=hyper.seed,
    )
    model.fit(batch_design(batch, cardinalities, bag), y)
    return from_sklearn(model, batch.numeric.shape[1], cardinalities, bag)


def categorical_mask(numeric_width: int, cardinalities: Sequence[int], bag_size: int) -> np.ndarray:
    """The design columns scikit-learn treats as categorical: each categorical's index column.

    Native categorical splits (a node sends a set of categories left) ranked better than
    one-hot columns in patient-grouped cross-validation on UCI (docs/model.md).
    """
    mask = np.zeros(numeric_width + len(cardinalities) + bag_size, dtype=bool)
    native = np.asarray(cardinalities, dtype=np.int64) <= MAX_NATIVE_CATEGORIES
    mask[numeric_width : numeric_width + len(cardinalities)] = native
    return mask


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
