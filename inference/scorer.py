"""The serving forward pass: one scorer, the fast paths behind its interface.

``Scorer.logits`` is what a score-only request runs: the code (and notes) encoder through the
lean forward of ``inference.fast_encoder`` where it reproduces the module (else the module),
the tabular tower, the tree term through LightGBM's ``predict``, and the model's own
``ReadmissionModel.logit`` to join them. Explanation (``inference.attribution``) is a separate
step that re-scores occluded copies of a request through the pieces below; it never reaches
into the model or the fast encoders itself.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from inference.fast_encoder import VARIANT_CHUNK, EncoderFn, FastSequenceEncoder, accelerated
from inference.model import ReadmissionModel

Tensors = Mapping[str, torch.Tensor]


class Scorer:
    """The model's logits for encoded batches (``FeatureEncoder.encode(...).arrays()``)."""

    def __init__(self, model: ReadmissionModel) -> None:
        self.model = model
        self.codes_encoder: EncoderFn = accelerated(model.codes)
        self.notes_encoder: EncoderFn | None = (
            None if model.notes is None else accelerated(model.notes)
        )

    @property
    def has_trees(self) -> bool:
        return self.model.trees is not None

    # ----- the forward pass -----
    def logits(self, tensors: Tensors) -> torch.Tensor:
        """One logit per row (uncalibrated), as ``ReadmissionModel.forward`` gives."""
        codes = self.codes(tensors)
        tabular = self.tabular(self.tabular_inputs(tensors))
        trees = self.tree_logits(self.tree_design(tensors)) if self.has_trees else None
        return self.join(codes, tabular, self.notes(tensors), trees)

    # ----- its pieces, for re-scoring occluded copies -----
    def codes(self, tensors: Tensors) -> torch.Tensor:
        return self.codes_encoder(tensors["code_ids"], tensors["code_mask"], tensors["code_types"])

    def codes_occluded(
        self, tensors: Tensors, owners: torch.Tensor, masks: torch.Tensor
    ) -> torch.Tensor:
        """The code vector of batch row ``owners[i]`` under ``masks[i]``, for every ``i``.

        The fast encoder shares what a mask cannot change between a row and its copies;
        the module runs the copies in chunks.
        """
        ids, types = tensors["code_ids"], tensors["code_types"]
        if isinstance(self.codes_encoder, FastSequenceEncoder):
            return self.codes_encoder.occluded(ids, types, owners, masks)
        chunks = [
            self.codes_encoder(
                ids.index_select(0, owners[start : start + VARIANT_CHUNK]),
                masks[start : start + VARIANT_CHUNK],
                types.index_select(0, owners[start : start + VARIANT_CHUNK]),
            )
            for start in range(0, len(owners), VARIANT_CHUNK)
        ]
        return torch.cat(chunks)

    def notes(self, tensors: Tensors) -> torch.Tensor | None:
        """The notes encoder's vectors (None for a model without notes)."""
        if self.notes_encoder is None:
            return None
        return self.notes_encoder(tensors["note_ids"], tensors["note_mask"], None)

    def tabular_inputs(self, tensors: Tensors) -> torch.Tensor:
        """The tabular MLP's input (embeddings, then numerics): what occlusion edits."""
        return self.model.tabular.inputs(tensors["categorical"], tensors["numeric"])

    def tabular(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model.tabular.mlp(inputs)

    def tree_design(
        self,
        tensors: Tensors,
        code_mask: torch.Tensor | None = None,
        rows: torch.Tensor | None = None,
    ) -> np.ndarray:
        """The trees' design of the batch (or of its ``rows``, under ``code_mask``)."""
        trees = self.model.trees
        if trees is None:
            raise ValueError("this model has no trees")
        numeric, categorical, ids = tensors["numeric"], tensors["categorical"], tensors["code_ids"]
        if rows is not None:
            numeric, categorical = numeric.index_select(0, rows), categorical.index_select(0, rows)
            ids = ids.index_select(0, rows)
        mask = tensors["code_mask"] if code_mask is None else code_mask
        return trees.design(numeric, categorical, ids, mask)

    def tree_logits(self, design: np.ndarray) -> torch.Tensor:
        """The trees' raw logits of design rows, through LightGBM's ``predict``."""
        trees = self.model.trees
        if trees is None:
            raise ValueError("this model has no trees")
        return torch.from_numpy(trees.score(design))

    def join(
        self,
        codes: torch.Tensor,
        tabular: torch.Tensor,
        notes: torch.Tensor | None,
        trees: torch.Tensor | None,
    ) -> torch.Tensor:
        """The logit from each modality's vector and the trees' logits (the model's rule)."""
        parts = [codes, tabular] if notes is None else [codes, tabular, notes]
        return self.model.logit(parts, trees)
