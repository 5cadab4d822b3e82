"""The gradient-boosted tree term of the model: a LightGBM booster over the encoded inputs.

Why: on UCI the network and a gradient-boosting model over the same encoded inputs are
complementary (docs/model.md: a validation-chosen blend ranks better on validation with every
seed). Training fits the trees with LightGBM (``training.trees``); the model directory holds
them in LightGBM's public text format (``TREES_FILE``, never a pickle) and serving scores them
with LightGBM's own ``predict``.

The trees read a design built from the encoded batch (``design``): the standardised numerics
and missing flags, each categorical's vocabulary index (split natively as a set of categories,
which ranked better than one-hot columns in patient-grouped cross-validation: docs/model.md),
and the presence of the most frequent code tokens (``bag``).

Models whose trees were exported from scikit-learn into the weights file (model_config.json
``trees`` without ``format``) are refused with ``LegacyTreesError``: their hand-written walk is
gone (docs/inference.md, "Tree term").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contracts.model_artifact import TREES_FILE
from inference.encoding import CLS_ID, PAD_ID

#: ``ModelConfig.trees["format"]`` of trees this code serves.
TREES_FORMAT = "lightgbm"
#: Threads of one ``predict`` call: a request's rows are few, and the server runs one request
#: per worker (more threads only spin on shared cores).
PREDICT_THREADS = 1


class TreesError(ValueError):
    """The model's tree term cannot be served; the message names the file at fault."""


class LegacyTreesError(TreesError):
    """The model's trees are scikit-learn trees exported into tensors (before LightGBM)."""


@dataclass(frozen=True)
class TreeSpec:
    """What the model config records about the trees: the design's layout and the file."""

    numeric_width: int
    category_cardinalities: tuple[int, ...]
    bag: tuple[int, ...]  # the code-token ids read as presence columns, in column order
    file: str = TREES_FILE

    @property
    def n_features(self) -> int:
        return self.numeric_width + len(self.category_cardinalities) + len(self.bag)

    @property
    def categorical_columns(self) -> range:
        first = self.numeric_width
        return range(first, first + len(self.category_cardinalities))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TREES_FORMAT,
            "file": self.file,
            "numeric_width": self.numeric_width,
            "category_cardinalities": list(self.category_cardinalities),
            "bag": list(self.bag),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TreeSpec:
        if data.get("format") != TREES_FORMAT:
            raise LegacyTreesError(
                "the model's trees were exported from scikit-learn (before LightGBM); this "
                "serving code reads LightGBM trees only: retrain the model"
            )
        return cls(
            numeric_width=int(data["numeric_width"]),
            category_cardinalities=tuple(int(c) for c in data["category_cardinalities"]),
            bag=tuple(int(token) for token in data["bag"]),
            file=str(data.get("file", TREES_FILE)),
        )


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
    bag: torch.Tensor,
) -> np.ndarray:
    """The trees' input (float64, C order): numerics, category indices, code-token presence."""
    parts = [numeric.to(torch.float64), categorical.to(torch.float64)]
    if bag.numel():
        bag = bag.to(code_ids.device)
        hits = (code_ids.unsqueeze(-1) == bag) & code_mask.bool().unsqueeze(-1)
        parts.append(hits.any(dim=1).to(torch.float64))
    return np.ascontiguousarray(torch.cat(parts, dim=1).cpu().numpy())


class TreeTerm:
    """A LightGBM booster and the layout of its design: one raw logit per row."""

    def __init__(self, booster: Any, spec: TreeSpec) -> None:
        if booster.num_feature() != spec.n_features:
            raise ValueError("the trees were not trained on this design's columns")
        self.booster = booster
        self.spec = spec
        self.bag = torch.tensor(spec.bag, dtype=torch.int64)

    @classmethod
    def from_string(cls, model: str, spec: TreeSpec) -> TreeTerm:
        import lightgbm

        return cls(lightgbm.Booster(model_str=model), spec)

    @classmethod
    def load(cls, directory: str | Path, spec: TreeSpec) -> TreeTerm:
        """Read the text model; a missing, unreadable or foreign file is a ``TreesError``."""
        from lightgbm.basic import LightGBMError

        try:
            return cls.from_string(Path(directory, spec.file).read_text(encoding="utf-8"), spec)
        except (OSError, UnicodeDecodeError, LightGBMError, ValueError) as e:
            raise TreesError(f"{spec.file} cannot be read as the model's trees") from e

    def save(self, directory: str | Path) -> None:
        Path(directory, self.spec.file).write_text(self.booster.model_to_string())

    @property
    def n_trees(self) -> int:
        return int(self.booster.num_trees())

    @property
    def splits(self) -> int:
        """Split nodes over all trees (0: every tree is one leaf, a constant)."""
        return sum(int(t["num_leaves"]) - 1 for t in self.booster.dump_model()["tree_info"])

    def design(
        self,
        numeric: torch.Tensor,
        categorical: torch.Tensor,
        code_ids: torch.Tensor,
        code_mask: torch.Tensor,
    ) -> np.ndarray:
        return design(numeric, categorical, code_ids, code_mask, self.bag)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Raw logits ``(n,)`` (float64) of a design matrix ``(n, n_features)``."""
        if not len(x):
            return np.zeros(0, dtype=np.float64)
        raw = self.booster.predict(x, raw_score=True, num_threads=PREDICT_THREADS)
        return np.asarray(raw, dtype=np.float64)

    def __call__(
        self,
        numeric: torch.Tensor,
        categorical: torch.Tensor,
        code_ids: torch.Tensor,
        code_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Raw logits ``(n,)`` as a float64 tensor on the inputs' device."""
        scores = self.score(self.design(numeric, categorical, code_ids, code_mask))
        return torch.from_numpy(scores).to(numeric.device)

    def category_classes(self) -> list[np.ndarray]:
        """Per categorical field, each category's class: categories that every categorical
        split on the field routes the same way (read from LightGBM's public model dump).

        Two categories of one class give the same score for any row, so averaging a row over
        a field's categories needs one scored row per class, not per category. A category no
        split names goes where LightGBM sends categories outside a split's set (right).
        """
        columns = {column: i for i, column in enumerate(self.spec.categorical_columns)}
        signatures: list[list[np.ndarray]] = [[] for _ in columns]
        for info in self.booster.dump_model()["tree_info"]:
            stack = [info["tree_structure"]]
            while stack:
                node = stack.pop()
                if "split_feature" not in node:
                    continue
                stack.extend((node["left_child"], node["right_child"]))
                field = columns.get(int(node["split_feature"]))
                if field is None:
                    continue
                size = self.spec.category_cardinalities[field]
                if node["decision_type"] == "==":
                    left = np.zeros(size, dtype=bool)
                    named = [int(c) for c in str(node["threshold"]).split("||")]
                    left[[c for c in named if 0 <= c < size]] = True
                else:  # a field too wide for native splits: an ordered index
                    left = np.arange(size) <= float(node["threshold"])
                signatures[field].append(left)
        classes = []
        for field, size in enumerate(self.spec.category_cardinalities):
            if not signatures[field]:
                classes.append(np.zeros(size, dtype=np.int64))
                continue
            routes = np.stack(signatures[field], axis=1)  # (categories, splits on the field)
            _, inverse = np.unique(routes, axis=0, return_inverse=True)
            classes.append(inverse.reshape(-1).astype(np.int64))
        return classes


def tree_spec(numeric_width: int, cardinalities: Sequence[int], bag: np.ndarray) -> TreeSpec:
    """The spec of trees fitted on ``design`` with this layout."""
    return TreeSpec(
        numeric_width=int(numeric_width),
        category_cardinalities=tuple(int(c) for c in cardinalities),
        bag=tuple(int(token) for token in bag),
    )
