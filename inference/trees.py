"""Gradient-boosted trees as tensors: a fitted ensemble evaluated in torch, saved with the model.

Why: on UCI the network and a gradient-boosting model over the same encoded inputs are
complementary (docs/model.md: a validation-chosen blend ranks +0.003 to +0.004 better on
validation with every seed). Holding the trees as buffers of an ``nn.Module`` keeps them in
``model.safetensors`` and the serving path free of scikit-learn and pickles; training fits
them with scikit-learn and exports them with ``from_sklearn``.

The trees read a design built from the encoded batch (``design``): the standardised numerics
and missing flags, each categorical's vocabulary index, and the presence of the most frequent
code tokens. A numeric split sends ``x <= threshold`` left; a categorical split (scikit-learn's
native categorical support, which ranked better than one-hot columns in patient-grouped
cross-validation: docs/model.md) sends the categories of its right set right, read from a
``(node, category)`` table. Either way the traversal is a few flat gathers per level: nodes
are numbered across all trees and a leaf's children are itself, so all rows step together
until none moves. Ensembles exported before categorical splits (one-hot categoricals,
``categorical_splits`` false) load and score as they did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from inference.encoding import CLS_ID, PAD_ID


@dataclass(frozen=True)
class TreeShape:
    """Sizes of the buffers, recorded in the model config so that loading rebuilds them."""

    n_trees: int
    n_nodes: int  # nodes of the largest tree; smaller trees are padded with self-loops
    depth: int
    numeric_width: int
    category_cardinalities: tuple[int, ...]
    bag_size: int
    # True: each categorical is one column (its index) and nodes may split on category sets;
    # False (configs written before): each categorical is one-hot, numeric splits only.
    categorical_splits: bool = False

    @property
    def categorical_width(self) -> int:
        """Design columns of the categoricals: one each, or one per category (one-hot)."""
        cardinalities = self.category_cardinalities
        return len(cardinalities) if self.categorical_splits else sum(cardinalities)

    @property
    def n_features(self) -> int:
        return self.numeric_width + self.categorical_width + self.bag_size

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "category_cardinalities": list(self.category_cardinalities)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TreeShape:
        return cls(**{**data, "category_cardinalities": tuple(data["category_cardinalities"])})


def frequent_codes(code_ids: np.ndarray, code_mask: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` most frequent code-token ids of a (training) batch, most frequent first.

    [PAD] and [CLS] are left out; [UNK] stays (it says "holds a code rarer than the floor").
    """
    ids = code_ids[code_mask.astype(bool)]
    ids = ids[(ids != PAD_ID) & (ids != CLS_ID)]
    values, counts = np.unique(ids, return_counts=True)
    order = np.lexsort((values, -counts))  # by count, ties by id: deterministic
    return values[order][:size].astype(np.int64)


def design(
    numeric: torch.Tensor,
    categorical: torch.Tensor,
    code_ids: torch.Tensor,
    code_mask: torch.Tensor,
    cardinalities: Sequence[int],
    bag: torch.Tensor,
    categorical_splits: bool = True,
) -> torch.Tensor:
    """The trees' input (float64): numerics, categoricals, code-token presence.

    A categorical is its vocabulary index (``categorical_splits``) or one-hot columns.
    """
    parts = [numeric.to(torch.float64)]
    if categorical_splits:
        parts.append(categorical.to(torch.float64))
    else:
        for j, size in enumerate(cardinalities):
            parts.append(nn.functional.one_hot(categorical[:, j], size).to(torch.float64))
    if bag.numel():
        hits = (code_ids.unsqueeze(-1) == bag) & code_mask.bool().unsqueeze(-1)
        parts.append(hits.any(dim=1).to(torch.float64))
    return torch.cat(parts, dim=1)


@dataclass(frozen=True)
class CategoryClasses:
    """One categorical field's categories grouped, per tree, by the way the tree routes them,
    with each class's share of the weights the field is averaged with."""

    column: int  # the field's design column
    class_of: torch.Tensor  # (trees, categories) int64: each category's class in each tree
    representative: torch.Tensor  # (trees, classes) int64: one category per class; -1 pads
    weight: torch.Tensor  # (trees, classes) float64: the summed weight of the class's categories
    total_weight: float  # all categories' weight


@dataclass(frozen=True)
class _CategoryPairs:
    """The (row, tree) walks of categorical averaging: the class's category and weight."""

    owner: torch.Tensor
    tree: torch.Tensor
    column: torch.Tensor
    value: torch.Tensor
    scale: torch.Tensor
    field: torch.Tensor


class TreeEnsemble(nn.Module):
    """Sum of the trees' leaf values plus the baseline: one raw logit per row."""

    feature: torch.Tensor
    threshold: torch.Tensor
    child_nodes: torch.Tensor
    value: torch.Tensor
    baseline: torch.Tensor
    bag: torch.Tensor
    goes_right: torch.Tensor

    def __init__(self, shape: TreeShape) -> None:
        super().__init__()
        self.shape = shape
        t, n = shape.n_trees, shape.n_nodes
        self.register_buffer("feature", torch.zeros(t, n, dtype=torch.int64))
        self.register_buffer("threshold", torch.full((t, n), torch.inf, dtype=torch.float64))
        # [left, right] of every node as a global node number (tree * n_nodes + node).
        self_loops = torch.arange(t * n, dtype=torch.int64).view(t, n, 1).repeat(1, 1, 2)
        self.register_buffer("child_nodes", self_loops)
        self.register_buffer("value", torch.zeros(t, n, dtype=torch.float64))
        self.register_buffer("baseline", torch.zeros((), dtype=torch.float64))
        self.register_buffer("bag", torch.zeros(shape.bag_size, dtype=torch.int64))
        if shape.categorical_splits:
            # The categories a categorical split sends right (all False at other nodes); such
            # a node's threshold is NaN, so that ``value > threshold`` is False there.
            widest = max(shape.category_cardinalities, default=1)
            self.register_buffer("goes_right", torch.zeros(t, n, widest, dtype=torch.bool))

    @property
    def splits(self) -> int:
        """Split nodes over all trees (0: every tree is one leaf, a constant)."""
        return int((self.threshold != torch.inf).sum())

    @property
    def categorical(self) -> torch.Tensor:
        """``(trees, nodes)``: which nodes split on a categorical's set of categories."""
        return torch.isnan(self.threshold)

    def design(
        self,
        numeric: torch.Tensor,
        categorical: torch.Tensor,
        code_ids: torch.Tensor,
        code_mask: torch.Tensor,
    ) -> torch.Tensor:
        shape = self.shape
        return design(
            numeric,
            categorical,
            code_ids,
            code_mask,
            shape.category_cardinalities,
            self.bag,
            shape.categorical_splits,
        )

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Raw logits ``(n,)`` of a design matrix ``(n, n_features)``."""
        return self.total(self.walk(x)[0])

    def total(self, leaves: torch.Tensor) -> torch.Tensor:
        """Raw logits from the leaf each row reached in each tree, ``(n, trees)``."""
        return self.value.view(-1).take(leaves).sum(dim=1) + self.baseline

    def walk(
        self, x: torch.Tensor, record_paths: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The leaf of every (row, tree) pair and, on request, the columns each path tested.

        All pairs step down one level at a time, as flat gathers over the global node
        numbers; a pair on a leaf stays there, and the walk ends when no pair moves. The
        paths come back as ``(rows, trees, n_features + 1)`` booleans (the extra column is
        never tested: ``variant_scores`` pads with it).
        """
        rows, width = x.shape
        roots = torch.arange(self.shape.n_trees, device=x.device) * self.shape.n_nodes
        node = roots.expand(rows, -1).contiguous()
        feature, threshold = self.feature.view(-1), self.threshold.view(-1)
        children = self.child_nodes.view(-1)
        tested = None
        if record_paths:
            tested = torch.zeros(rows, self.shape.n_trees, width + 1, dtype=torch.bool)
        for _ in range(self.shape.depth):
            columns = feature.take(node)
            bound = threshold.take(node)
            if tested is not None:  # a leaf tests nothing: it marks the extra column
                marked = torch.where(bound != torch.inf, columns, width).unsqueeze(-1)
                tested.scatter_(2, marked, True)
            moved = children.take(2 * node + self._goes_right(node, x.gather(1, columns), bound))
            if torch.equal(moved, node):
                break
            node = moved
        return node, tested

    def _goes_right(
        self, node: torch.Tensor, value: torch.Tensor, bound: torch.Tensor
    ) -> torch.Tensor:
        """Which (row, tree) pairs step right at ``node``, given the value each one tests."""
        right = value > bound  # False at a categorical node (NaN threshold)
        if not self.shape.categorical_splits:
            return right
        widest = self.goes_right.shape[-1]
        category = value.to(torch.int64).clamp_(0, widest - 1)
        return right | self.goes_right.view(-1).take(node * widest + category)

    def variant_scores(
        self,
        original: torch.Tensor,
        leaves: torch.Tensor,
        tested: torch.Tensor,
        owners: torch.Tensor,
        columns: torch.Tensor,
        values: torch.Tensor,
    ) -> torch.Tensor:
        """Raw logits of variants of the original rows, each given by the columns it changes.

        Variant ``v`` is row ``owners[v]`` with ``columns[v, i]`` set to ``values[v, i]``
        (distinct columns; padding: column ``n_features``). Exact and
        far cheaper than scoring whole rows: a variant's path can leave its original's only at
        a node testing a changed column, so only the trees whose original path tested one are
        walked again, and the variant's logit is its original's plus the leaf value changes.
        """
        scores, _ = self.variant_and_category_scores(
            original, leaves, tested, owners, columns, values, ()
        )
        return scores

    def category_averages(
        self,
        original: torch.Tensor,
        leaves: torch.Tensor,
        tested: torch.Tensor,
        classes: Sequence[CategoryClasses],
    ) -> torch.Tensor:
        """``(rows, fields)``: each row's raw logit with one categorical field set to each of
        its categories in turn, summed with the field's weights (``category_classes``), the
        rest of the row as it is.

        Exact: only trees whose original path tested the field can change, and in each of
        those one walk per class of categories stands for the class.
        """
        none = torch.zeros(0, dtype=torch.int64)
        _, averages = self.variant_and_category_scores(
            original, leaves, tested, none, none.view(0, 1), original.new_zeros(0, 1), classes
        )
        return averages

    def variant_and_category_scores(
        self,
        original: torch.Tensor,
        leaves: torch.Tensor,
        tested: torch.Tensor,
        owners: torch.Tensor,
        columns: torch.Tensor,
        values: torch.Tensor,
        classes: Sequence[CategoryClasses],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``variant_scores`` and ``category_averages`` at once: the (row, tree) pairs that
        either needs are walked again as one batch, since a walk costs a few small ops per
        level whatever the number of pairs."""
        totals = self.total(leaves)
        scores = totals.index_select(0, owners)
        averages = totals.unsqueeze(1) * torch.tensor(
            [grouped.total_weight for grouped in classes], dtype=totals.dtype
        )
        again = tested[owners.unsqueeze(1), :, columns].any(dim=1)  # (variants, trees)
        variant, tree = torch.nonzero(again, as_tuple=True)
        owner = owners.index_select(0, variant)
        pair_columns = columns.index_select(0, variant)
        pair_values = values.index_select(0, variant)
        category = self._category_pairs(original, tested, classes)
        if category is not None:  # a categorical pair changes one column: the rest is padding
            slots = pair_columns.shape[1]
            padding = (0, slots - 1)
            pair_columns = torch.cat(
                [
                    pair_columns,
                    nn.functional.pad(
                        category.column.unsqueeze(1), padding, value=original.shape[1]
                    ),
                ]
            )
            pair_values = torch.cat(
                [pair_values, nn.functional.pad(category.value.unsqueeze(1), padding, value=0.0)]
            )
            owner = torch.cat([owner, category.owner])
            tree = torch.cat([tree, category.tree])
        if not len(tree):
            return scores, averages
        # One contiguous vector per change slot: elementwise ops beat reducing tiny rows.
        node = self._walk_again(
            original,
            owner,
            tree,
            pair_columns.t().contiguous().unbind(),
            pair_values.to(original.dtype).t().contiguous().unbind(),
        )
        leaf_value = self.value.view(-1)
        delta = leaf_value.take(node) - leaf_value.take(leaves[owner, tree])
        scores = scores.index_add(0, variant, delta[: len(variant)])
        if category is not None:
            flat = averages.reshape(-1)  # (rows, fields) row-major
            cell = category.owner * len(classes) + category.field
            averages = flat.index_add(0, cell, delta[len(variant) :] * category.scale)
            averages = averages.view(len(totals), len(classes))
        return scores, averages

    def _category_pairs(
        self, original: torch.Tensor, tested: torch.Tensor, classes: Sequence[CategoryClasses]
    ) -> _CategoryPairs | None:
        """The (row, tree, class) walks that ``category_averages`` needs, all fields together.

        A row's own category's class ends in the row's own leaf: it needs no walk.
        """
        parts: list[tuple[torch.Tensor, ...]] = []
        for field, grouped in enumerate(classes):
            row, tree = torch.nonzero(tested[:, :, grouped.column], as_tuple=True)
            if not len(row):
                continue
            width = grouped.representative.shape[1]
            pair = torch.arange(len(row)).repeat_interleave(width)
            slot = torch.arange(width).repeat(len(row))
            pair_tree = tree.index_select(0, pair)
            category = grouped.representative[pair_tree, slot]
            own = original[:, grouped.column].to(torch.int64).index_select(0, row)
            own_class = grouped.class_of[tree, own].index_select(0, pair)
            walk = (category >= 0) & (slot != own_class)
            pair, slot, pair_tree = pair[walk], slot[walk], pair_tree[walk]
            category = category[walk]
            parts.append(
                (
                    row.index_select(0, pair),
                    pair_tree,
                    torch.full_like(pair, grouped.column),
                    category.to(original.dtype),
                    grouped.weight[pair_tree, slot],
                    torch.full_like(pair, field),
                )
            )
        if not parts:
            return None
        return _CategoryPairs(*(torch.cat(column) for column in zip(*parts, strict=True)))

    def category_classes(self, field: int, weights: torch.Tensor) -> CategoryClasses:
        """Group a categorical field's categories, per tree, by how the tree routes them, and
        sum ``weights`` (one per category, what ``category_averages`` averages with) per class.

        Two categories that go the same way at every node of a tree testing the field end in
        the same leaf of that tree, whatever the rest of the row: averaging a row over the
        field's categories needs one walk per class, not per category. Built once per model
        (``inference.attribution``); needs the categorical-splits design.
        """
        shape = self.shape
        column = shape.numeric_width + field
        size = shape.category_cardinalities[field]
        flat_feature, flat_threshold = self.feature.view(-1), self.threshold.view(-1)
        nodes = torch.nonzero((flat_feature == column) & (flat_threshold != torch.inf))
        nodes = nodes.view(-1, 1).expand(-1, size)
        categories = torch.arange(size, dtype=torch.float64).expand(nodes.shape[0], -1)
        routes = self._goes_right(nodes, categories, flat_threshold.take(nodes)).numpy()
        trees = (nodes[:, 0] // shape.n_nodes).numpy()
        class_of = np.zeros((shape.n_trees, size), dtype=np.int64)
        representatives: list[np.ndarray] = [np.zeros(1, dtype=np.int64)] * shape.n_trees
        for tree in np.unique(trees):
            signatures = routes[trees == tree].T  # (categories, this tree's nodes on the field)
            _, first, inverse = np.unique(
                signatures, axis=0, return_index=True, return_inverse=True
            )
            class_of[tree] = inverse.reshape(-1)
            representatives[tree] = first
        widest = max(len(r) for r in representatives)
        representative = np.full((shape.n_trees, widest), -1, dtype=np.int64)
        for tree, found in enumerate(representatives):
            representative[tree, : len(found)] = found
        class_of_tensor = torch.from_numpy(class_of)
        weights = weights.to(torch.float64)
        class_weight = torch.zeros(representative.shape, dtype=torch.float64)
        class_weight.scatter_add_(1, class_of_tensor, weights.expand(shape.n_trees, -1))
        return CategoryClasses(
            column=column,
            class_of=class_of_tensor,
            representative=torch.from_numpy(representative),
            weight=class_weight,
            total_weight=float(weights.sum()),
        )

    def _walk_again(
        self,
        original: torch.Tensor,
        owner: torch.Tensor,
        tree: torch.Tensor,
        changed_columns: Sequence[torch.Tensor],
        changed_values: Sequence[torch.Tensor],
    ) -> torch.Tensor:
        """The leaf each (row ``owner``, ``tree``) pair reaches with its changed columns.

        ``changed_columns[i][p]`` is set to ``changed_values[i][p]`` for pair ``p``.
        """
        width = original.shape[1]
        start = owner * width
        flat = original.contiguous().view(-1)
        feature, threshold = self.feature.view(-1), self.threshold.view(-1)
        children = self.child_nodes.view(-1)
        node = tree * self.shape.n_nodes
        for _ in range(self.shape.depth):
            column = feature.take(node)
            value = flat.take(start + column)
            for changed, changed_value in zip(changed_columns, changed_values, strict=True):
                value = torch.where(changed == column, changed_value, value)
            moved = children.take(2 * node + self._goes_right(node, value, threshold.take(node)))
            if torch.equal(moved, node):
                break
            node = moved
        return node

    def forward(
        self,
        numeric: torch.Tensor,
        categorical: torch.Tensor,
        code_ids: torch.Tensor,
        code_mask: torch.Tensor,
    ) -> torch.Tensor:
        return self.score(self.design(numeric, categorical, code_ids, code_mask))


def from_sklearn(
    model: Any,
    numeric_width: int,
    cardinalities: Sequence[int],
    bag: np.ndarray,
    categorical_splits: bool = True,
) -> TreeEnsemble:
    """Export a fitted binary ``HistGradientBoostingClassifier`` trained on ``design``.

    With ``categorical_splits`` the design holds each categorical as its index, and the model
    may treat those columns (only those) as categorical features; without, the design is
    one-hot and every split must be numeric. Refuses what the traversal does not implement
    (several trees per iteration, a foreign design); missing values never reach the trees (the
    encoder imputes), but a category the trees never saw in training is routed as scikit-learn
    routes it: as missing.
    """
    if getattr(model, "n_trees_per_iteration_", 1) != 1:
        raise ValueError("only binary classifiers (one tree per iteration) can be exported")
    predictors = [iteration[0] for iteration in model._predictors]
    shape = TreeShape(
        n_trees=len(predictors),
        n_nodes=max(len(p.nodes) for p in predictors),
        depth=max(int(p.nodes["depth"].max()) for p in predictors),
        numeric_width=numeric_width,
        category_cardinalities=tuple(int(c) for c in cardinalities),
        bag_size=len(bag),
        categorical_splits=categorical_splits,
    )
    if model.n_features_in_ != shape.n_features:
        raise ValueError("the model was not trained on this design's columns")
    columns, categories = _input_columns(model, shape)
    ensemble = TreeEnsemble(shape)
    t, n = shape.n_trees, shape.n_nodes
    feature = np.zeros((t, n), dtype=np.int64)
    threshold = np.full((t, n), np.inf)
    children = np.arange(t * n, dtype=np.int64).reshape(t, n, 1).repeat(2, axis=2)
    value = np.zeros((t, n))
    goes_right = np.zeros((t, n, max(cardinalities, default=1)), dtype=bool)
    for i, predictor in enumerate(predictors):
        nodes = predictor.nodes
        size = len(nodes)
        split = nodes["is_leaf"] == 0
        index = np.arange(size)
        feature[i, :size] = np.where(split, columns[nodes["feature_idx"]], 0)
        on_category = split & (nodes["is_categorical"] == 1)
        threshold[i, :size] = np.where(
            split, np.where(on_category, np.nan, nodes["num_threshold"]), np.inf
        )
        first = i * n  # this tree's first global node number
        children[i, :size, 0] = first + np.where(split, nodes["left"], index)
        children[i, :size, 1] = first + np.where(split, nodes["right"], index)
        value[i, :size] = np.where(split, 0.0, nodes["value"])
        for node in np.flatnonzero(on_category):
            field = int(columns[nodes["feature_idx"][node]]) - numeric_width
            goes_right[i, node] = ~_left_categories(
                predictor.raw_left_cat_bitsets[nodes["bitset_idx"][node]],
                categories[field],
                bool(nodes["missing_go_to_left"][node]),
                goes_right.shape[-1],
            )
    with torch.no_grad():
        ensemble.feature.copy_(torch.from_numpy(feature))
        ensemble.threshold.copy_(torch.from_numpy(threshold))
        ensemble.child_nodes.copy_(torch.from_numpy(children))
        ensemble.value.copy_(torch.from_numpy(value))
        ensemble.baseline.fill_(float(np.ravel(model._baseline_prediction)[0]))
        ensemble.bag.copy_(torch.from_numpy(np.asarray(bag, dtype=np.int64)))
        if categorical_splits:
            ensemble.goes_right.copy_(torch.from_numpy(goes_right))
    return ensemble


def _input_columns(model: Any, shape: TreeShape) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Map the fitted trees' feature numbers to design columns; each categorical's categories.

    With categorical features scikit-learn reorders the columns (categoricals first) and
    renumbers each one's categories by sorted value (``OrdinalEncoder``); the nodes and their
    category bitsets speak that internal language. Returns the design column of every
    internal feature, and per categorical field the design values (category indices) the
    trees know, in internal order.
    """
    width = shape.n_features
    is_categorical = getattr(model, "is_categorical_", None)
    if is_categorical is None or not np.any(is_categorical):
        return np.arange(width), {}
    first = shape.numeric_width
    allowed = np.zeros(width, dtype=bool)
    allowed[first : first + len(shape.category_cardinalities)] = shape.categorical_splits
    if np.any(is_categorical & ~allowed):
        raise ValueError(
            "categorical splits are only supported on the categoricals' index columns "
            "(categorical_splits design)"
        )
    columns = np.concatenate([np.flatnonzero(is_categorical), np.flatnonzero(~is_categorical)])
    encoder = model._preprocessor.named_transformers_["encoder"]
    categories = {
        int(column) - first: np.asarray(known, dtype=np.float64)
        for column, known in zip(np.flatnonzero(is_categorical), encoder.categories_, strict=True)
    }
    return columns, categories


def _left_categories(
    bitset: np.ndarray, known: np.ndarray, missing_left: bool, width: int
) -> np.ndarray:
    """Which category indices ``0..width-1`` a categorical split sends left.

    ``bitset`` holds the left set in scikit-learn's internal numbering (the position in
    ``known``); a category outside ``known`` (never seen in training) goes where missing
    values go.
    """
    out = np.full(width, missing_left)
    for internal, category in enumerate(known):
        if np.isnan(category) or not 0 <= category < width:
            continue
        word, bit = divmod(internal, 32)
        out[int(category)] = bool((int(bitset[word]) >> bit) & 1)
    return out
