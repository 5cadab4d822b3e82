"""Top contributing factors of each prediction, by occlusion, in names a clinician can read.

Method: occlusion against a training baseline. Each feature group of a record is replaced by
what an average training patient would have, and the change of the calibrated log-odds is the
group's contribution (positive: the patient's value raises the risk):

* a numeric field: its training median, not missing (the encoder's imputation value);
* a categorical field: its embedding replaced by the training-frequency-weighted mean
  embedding (frequencies from the model's ``drift_baseline.json``);
* one code (a diagnosis, procedure, medication or abnormal lab): its tokens masked out;
* the discharge note: replaced by an empty note.

The forward pass is the serving scorer's (``inference.scorer.Scorer``): this module decides
what to occlude and names the result; every logit, original or occluded, comes from the
scorer's pieces, in one pass per piece. A score-only request never reaches this module.

Why occlusion and not integrated gradients: the answer is exact for the question a clinician
asks ("what if this were typical?"), needs no gradients (the hooks run under
``torch.inference_mode``), is deterministic, and is cheap here because each group touches one
modality: only that modality's tower is re-run for its variants, all variants of a request in
one batched pass per tower with the original records inside that batch, and the fusion head
once over originals and variants. The code encoder, where nearly all the cost is, shares
what masking a code cannot change (embeddings, the first layer's projections and attention
scores) between a record and its variants (``Scorer.codes_occluded``). The tree term scores
every variant row with LightGBM's ``predict`` in one call; a categorical field is averaged
over its categories by training frequency, one row per class of categories that the trees
route alike (``TreeTerm.category_classes``). The answer is the same as re-scoring each variant
on its own, which the tests check group by group.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from contracts.codes import LEGACY_SYSTEM, CodeError, parse
from contracts.encounter import FieldKind, field, model_input_fields
from contracts.serving import (
    DIRECTION_DECREASES,
    DIRECTION_INCREASES,
    FACTOR_CONTRIBUTION,
    FACTOR_DIRECTION,
    FACTOR_FEATURE,
)
from inference.code_titles import group_description, title
from inference.encoding import (
    CATEGORY_UNK_ID,
    NOTE_FIELD,
    FeatureEncoder,
    numeric_value,
)
from inference.scorer import Scorer

#: Factors returned per prediction.
TOP_FACTORS = 5
#: Decimals of a reported contribution (log-odds); smaller effects round to zero and are dropped.
CONTRIBUTION_DECIMALS = 6

_CODE_NOUNS = {
    spec.name: spec.readable_name for spec in model_input_fields(FieldKind.CODE_SEQUENCE)
}
_BASELINE_BUCKETS = "buckets"
_BASELINE_COUNTS = "counts"
_BASELINE_FEATURES = "features"


def format_value(value: float) -> str:
    """A number as a clinician would write it: integers bare, others to two decimals."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(float(value), 2):g}"


def _numeric_name(name: str, value: Any) -> str:
    spec = field(name)
    number = numeric_value(spec, value)  # the value the model read: clipped to the range
    if number is None:
        return f"{spec.readable_name} not recorded"
    return f"{spec.readable_name} = {format_value(number)}"


def _category_name(name: str, value: Any) -> str:
    spec = field(name)
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        return f"{spec.readable_name} not recorded"
    return f"{spec.readable_name} = {text.replace('_', ' ')}"


def _display_code(field_name: str, code: str) -> str:
    """How a code is named: bare for the field's legacy ICD-9 system (``4280``), tagged for every
    other (``icd10cm:I509``), the same whether a request sent it tagged or not (the ETL writes
    ``icd9cm:4280``; the API forwards ICD-9 bare for 1.x models), so an explanation does not
    depend on the path a record came by."""
    try:
        parsed = parse(field_name, code, strict=False)
    except CodeError:
        return code
    return parsed.code if parsed.system is LEGACY_SYSTEM.get(field_name) else parsed.tagged


def _code_name(field_name: str, code: str, titles: Mapping[str, Mapping[str, str]]) -> str:
    """``diagnosis icd10cm:I509 (Heart failure, unspecified)``; a code without a title is named
    by its clinical group where titles are loaded at all."""
    description = title(field_name, code, titles)
    if description is None and titles:
        description = group_description(field_name, code)
    noun = _CODE_NOUNS[field_name]
    code = _display_code(field_name, code)
    return f"{noun} {code} ({description})" if description else f"{noun} {code}"


def code_spans(
    encoder: FeatureEncoder, record: Mapping[str, Any]
) -> dict[tuple[str, str], list[int]]:
    """Token positions of each distinct code of a record, as ``FeatureEncoder.encode`` lays them.

    A code occupies its own token and, where it has one, its group's token; position 0 is
    [CLS] and nothing at or past ``max_code_length`` is kept (truncated codes are absent).
    """
    spans: dict[tuple[str, str], list[int]] = {}
    position = 1
    limit = encoder.config.max_codes_per_field
    max_length = encoder.config.max_code_length
    for field_name in encoder.code_fields:
        value = record.get(field_name)
        if value is None:
            continue
        for raw in list(value)[:limit]:
            if raw is None:
                continue
            code = str(raw).strip()
            if not code:
                continue
            width = len(encoder.code_tokens(field_name, code))
            kept = [p for p in range(position, position + width) if p < max_length]
            position += width
            if kept:
                spans.setdefault((field_name, code), []).extend(kept)
    return spans


def _category_weights(
    encoder: FeatureEncoder, name: str, drift_baseline: Mapping[str, Any] | None
) -> torch.Tensor:
    """Training frequency of each vocabulary entry of a categorical field (sums to 1)."""
    size = len(encoder.category_vocabs[name])
    weights = torch.zeros(size, dtype=torch.float64)
    feature = (drift_baseline or {}).get(_BASELINE_FEATURES, {}).get(name)
    if isinstance(feature, Mapping):
        index = encoder.category_index[name]
        lower = field(name).categories is None
        for bucket, count in zip(
            feature.get(_BASELINE_BUCKETS, []), feature.get(_BASELINE_COUNTS, []), strict=False
        ):
            key = str(bucket).strip().lower() if lower else str(bucket).strip()
            weights[index.get(key, CATEGORY_UNK_ID)] += float(count)
    if float(weights.sum()) <= 0.0:
        # No frequencies saved: every known category counts the same.
        weights[:] = 1.0
        if size > 1:
            weights[CATEGORY_UNK_ID] = 0.0
    return weights / weights.sum()


def _mean_embedding(embedding: torch.nn.Module, weights: torch.Tensor) -> torch.Tensor:
    """The frequency-weighted mean of an embedding table's rows."""
    if not isinstance(embedding, torch.nn.Embedding):
        raise TypeError("the tabular tower's categorical layers must be embeddings")
    table = embedding.weight.detach()
    return weights.to(table.dtype) @ table


#: What a candidate factor refers to, named only if it makes the top list:
#: ("categorical" | "numeric", field) or ("code", field, code) or ("note",).
_Group = tuple[str, ...]


class OcclusionExplainer:
    """Explains each prediction by occlusion through the scorer's pieces (module docstring)."""

    def __init__(
        self,
        scorer: Scorer,
        encoder: FeatureEncoder,
        drift_baseline: Mapping[str, Any] | None,
        titles: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.scorer = scorer
        self.encoder = encoder
        self.titles = titles
        self._pool: ThreadPoolExecutor | None = None  # created on first use
        model = scorer.model
        # The fields the encoder was fitted on (an earlier schema version's artifact has fewer).
        numeric_fields = encoder.numeric_fields
        categorical_fields = encoder.categorical_fields
        typical = encoder.encode([{}])
        with torch.inference_mode():
            numeric_baseline = torch.from_numpy(typical.numeric[0, : len(numeric_fields)].copy())
            self.numeric_baseline = numeric_baseline
            self.category_weights = [
                _category_weights(encoder, name, drift_baseline) for name in categorical_fields
            ]
            category_baselines = [
                _mean_embedding(embedding, weights)
                for weights, embedding in zip(
                    self.category_weights, model.tabular.embeddings, strict=True
                )
            ]
            self.tabular_keep, self.tabular_fill = _tabular_occlusions(
                category_baselines, numeric_baseline, model.config.category_embedding_dim
            )
            self.tabular_groups: list[_Group] = [
                *(("categorical", name) for name in categorical_fields),
                *(("numeric", name) for name in numeric_fields),
            ]
            self.tree_variants = (
                None
                if model.trees is None
                else _TreeVariants.build(
                    model.trees.category_classes(),
                    self.category_weights,
                    numeric_baseline.numpy(),
                    model.trees.spec.numeric_width,
                )
            )
            self.empty_note: torch.Tensor | None = None
            if typical.note_ids is not None and typical.note_mask is not None:
                empty = {
                    "note_ids": torch.from_numpy(typical.note_ids),
                    "note_mask": torch.from_numpy(typical.note_mask),
                }
                notes = scorer.notes(empty)
                self.empty_note = None if notes is None else notes.detach()

    def explain(
        self,
        records: Sequence[Mapping[str, Any]],
        tensors: Mapping[str, torch.Tensor],
        temperature: float,
    ) -> tuple[torch.Tensor, list[list[dict[str, Any]]]]:
        """Each record's logit, and its top factors in calibrated log-odds, largest first.

        The originals are rows of the same passes as their variants, so that a contribution
        is a difference within one pass: one pass per tower with the originals inside the
        variant batch (code encoder, tabular MLP), the notes encoder over the originals only
        (on a worker thread, beside the code variants), the trees (one LightGBM ``predict``,
        on a worker thread) and the head once over originals and variants together.
        """
        scorer = self.scorer
        n = len(records)
        groups = len(self.tabular_groups)
        code_owners: list[int] = []
        code_groups: list[_Group] = []
        rows: list[int] = []
        positions: list[int] = []
        for r, record in enumerate(records):
            for (field_name, code), span in code_spans(self.encoder, record).items():
                rows.extend([n + len(code_owners)] * len(span))
                positions.extend(span)
                code_owners.append(r)
                code_groups.append(("code", field_name, code))
        note_owners = [r for r, record in enumerate(records) if self._has_note(record)]
        # The notes tower depends on no variant: it runs on another core meanwhile.
        pending_notes = (
            None if self.empty_note is None else self._in_background(lambda: scorer.notes(tensors))
        )
        originals = torch.arange(n)
        tabular_owners = originals.repeat_interleave(groups)
        by_code = torch.tensor(code_owners, dtype=torch.long)
        by_note = torch.tensor(note_owners, dtype=torch.long)

        # Code encoder rows: the originals, then each record without one of its codes.
        owners = torch.cat([originals, by_code])
        masks = tensors["code_mask"].index_select(0, owners)
        masks[torch.tensor(rows, dtype=torch.long), torch.tensor(positions, dtype=torch.long)] = 0
        pending_trees = None
        if self.tree_variants is not None:  # independent of the towers: beside the code variants
            variants = self.tree_variants
            variant_masks = masks[n:].clone()
            pending_trees = self._in_background(
                lambda: variants.logits(scorer, tensors, variant_masks, by_code, by_note)
            )
        codes = scorer.codes_occluded(tensors, owners, masks)
        # Tabular MLP rows: the originals, then each record with one group made typical.
        tabular_input = scorer.tabular_inputs(tensors)
        occluded = tabular_input.index_select(0, tabular_owners) * self.tabular_keep.repeat(n, 1)
        tabular = scorer.tabular(
            torch.cat([tabular_input, occluded + self.tabular_fill.repeat(n, 1)])
        )
        notes = None if pending_notes is None else pending_notes.result()

        # Head rows: originals, tabular variants, code variants, note variants.
        variant_codes = torch.arange(n, n + len(code_owners))
        variant_tabular = torch.arange(n, n + n * groups)
        head_codes = torch.cat([originals, tabular_owners, variant_codes, by_note])
        head_tabular = torch.cat([originals, variant_tabular, by_code, by_note])
        head_notes = None
        if notes is not None:
            if self.empty_note is not None:
                notes = torch.cat([notes, self.empty_note])
            empty = torch.full((len(note_owners),), n, dtype=torch.long)
            head_notes = notes.index_select(
                0, torch.cat([originals, tabular_owners, by_code, empty])
            )
        tree_logits = None if pending_trees is None else pending_trees.result()
        logits = scorer.join(
            codes.index_select(0, head_codes),
            tabular.index_select(0, head_tabular),
            head_notes,
            tree_logits,
        )
        owner = torch.cat([tabular_owners, by_code, by_note])
        contributions = ((logits[owner] - logits[n:]) / temperature).double().tolist()

        candidates: list[list[tuple[float, int, _Group]]] = [[] for _ in range(n)]
        described = [
            *(self.tabular_groups[i % groups] for i in range(n * groups)),
            *code_groups,
            *(("note",) for _ in note_owners),
        ]
        for order, (r, value, group) in enumerate(
            zip(owner.tolist(), contributions, described, strict=True)
        ):
            rounded = round(value, CONTRIBUTION_DECIMALS)
            if rounded != 0.0:
                candidates[r].append((rounded, order, group))
        factors = [
            self._top(items, record) for items, record in zip(candidates, records, strict=True)
        ]
        return logits[:n], factors

    def _in_background(self, work: Callable[[], Any]) -> Future[Any]:
        """Run ``work`` on a worker thread under the caller's inference and grad modes (both
        are per thread). One worker per spare core: the calling thread runs the code
        variants meanwhile, and more threads than cores only take turns."""
        inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

        def run() -> Any:
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                return work()

        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=max(1, (os.cpu_count() or 1) - 1), thread_name_prefix="explainer"
            )
        return self._pool.submit(run)

    def _has_note(self, record: Mapping[str, Any]) -> bool:
        note = record.get(NOTE_FIELD)
        return self.empty_note is not None and isinstance(note, str) and bool(note.strip())

    def _top(
        self, items: list[tuple[float, int, _Group]], record: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        items.sort(key=lambda item: (-abs(item[0]), item[1]))
        return [
            {
                FACTOR_FEATURE: self._name(group, record),
                FACTOR_DIRECTION: DIRECTION_INCREASES if value > 0 else DIRECTION_DECREASES,
                FACTOR_CONTRIBUTION: value,
            }
            for value, _, group in items[:TOP_FACTORS]
        ]

    def _name(self, group: _Group, record: Mapping[str, Any]) -> str:
        kind = group[0]
        if kind == "categorical":
            return _category_name(group[1], record.get(group[1]))
        if kind == "numeric":
            return _numeric_name(group[1], record.get(group[1]))
        if kind == "code":
            return _code_name(group[1], group[2], self.titles)
        return field(NOTE_FIELD).readable_name


@dataclass(frozen=True)
class _CategoryClasses:
    """One categorical field for the trees: its design column, each category's class (the
    trees route a class's categories alike), one category standing for each class that has
    training weight, and the weight of every class."""

    column: int
    class_of: np.ndarray  # (categories,) int64
    kept: np.ndarray  # (classes with weight,) the class ids
    representative: np.ndarray  # (classes with weight,) a category of each
    weight: np.ndarray  # (classes,) float64: summed weight of the class's categories


@dataclass(frozen=True)
class _TreeVariants:
    """The tabular occlusions as edits of the trees' design, built once per model.

    A numeric field: its value and missing-flag columns set to the median and 0. A categorical
    field: the average, by training weight, of the row with the field set to each category,
    one scored row per class of categories (``TreeTerm.category_classes``).
    """

    numeric_columns: np.ndarray  # (k,) value columns; the flags are ``k`` further
    numeric_values: np.ndarray  # (k,) the training medians, standardised
    categories: list[_CategoryClasses]

    @classmethod
    def build(
        cls,
        classes: Sequence[np.ndarray],
        weights: Sequence[torch.Tensor],
        numeric_baseline: np.ndarray,
        numeric_width: int,
    ) -> _TreeVariants:
        categories = []
        for field_index, (class_of, field_weights) in enumerate(zip(classes, weights, strict=True)):
            size = int(class_of.max()) + 1 if len(class_of) else 0
            weight = np.bincount(class_of, field_weights.double().numpy(), minlength=size)
            kept = np.flatnonzero(weight > 0.0)
            first = np.full(size, -1, dtype=np.int64)
            for category in range(len(class_of) - 1, -1, -1):
                first[class_of[category]] = category
            categories.append(
                _CategoryClasses(numeric_width + field_index, class_of, kept, first[kept], weight)
            )
        k = len(numeric_baseline)
        return cls(np.arange(k), numeric_baseline.astype(np.float64), categories)

    def logits(
        self,
        scorer: Scorer,
        tensors: Mapping[str, torch.Tensor],
        code_variant_masks: torch.Tensor,
        by_code: torch.Tensor,
        by_note: torch.Tensor,
    ) -> torch.Tensor:
        """The trees' logits for the head's rows: originals, tabular, code, note variants.

        Every row to score goes to one ``predict``: the originals, each (record, numeric
        field) with the field typical, each (record, categorical field, class other than the
        record's own) and each code variant. The trees do not read the note, so a note
        variant scores as its original.
        """
        x = scorer.tree_design(tensors)
        n = len(x)
        k = len(self.numeric_values)
        numeric = np.repeat(x, k, axis=0)  # record-major: (record, field)
        field_of_row = np.tile(np.arange(k), n)
        numeric[np.arange(n * k), self.numeric_columns[field_of_row]] = self.numeric_values[
            field_of_row
        ]
        numeric[np.arange(n * k), self.numeric_columns[field_of_row] + k] = 0.0
        blocks = [x, numeric]
        category_rows = []
        for classes in self.categories:
            own = classes.class_of[x[:, classes.column].astype(np.int64)]
            record = np.repeat(np.arange(n), len(classes.kept))
            kept = np.tile(np.arange(len(classes.kept)), n)
            walk = classes.kept[kept] != own[record]
            record, kept = record[walk], kept[walk]
            rows = x[record]
            rows[:, classes.column] = classes.representative[kept]
            blocks.append(rows)
            category_rows.append((record, classes.weight[classes.kept[kept]], own))
        codes = scorer.tree_design(tensors, code_variant_masks, by_code) if len(by_code) else None
        if codes is not None:
            blocks.append(codes)
        scores = scorer.tree_logits(np.concatenate(blocks)).numpy()
        originals, start = scores[:n], n
        numeric_scores = scores[start : start + n * k].reshape(n, k)
        start += n * k
        averages = np.zeros((n, len(self.categories)))
        for field_index, (record, weight, own) in enumerate(category_rows):
            classes = self.categories[field_index]
            averages[:, field_index] = classes.weight[own] * originals
            np.add.at(
                averages[:, field_index], record, weight * scores[start : start + len(record)]
            )
            start += len(record)
        by_record = np.concatenate([averages, numeric_scores], axis=1).reshape(-1)
        rest = scores[start:]
        out = np.concatenate([originals, by_record, rest, originals[by_note.numpy()]])
        return torch.from_numpy(out)


def _tabular_occlusions(
    category_baselines: list[torch.Tensor], numeric_baseline: torch.Tensor, embedding_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per tabular group, which input columns to keep (1) and what to put in the others.

    A categorical group's columns are its embedding slice (filled with the mean embedding); a
    numeric group's are its standardised value (filled with the median) and its missing flag
    (filled with 0). Rows follow the order categorical fields, then numeric fields.
    """
    k = len(numeric_baseline)
    width = embedding_dim * len(category_baselines) + 2 * k
    groups = len(category_baselines) + k
    keep = torch.ones(groups, width, dtype=numeric_baseline.dtype)
    fill = torch.zeros(groups, width, dtype=numeric_baseline.dtype)
    for i, baseline in enumerate(category_baselines):
        columns = slice(i * embedding_dim, (i + 1) * embedding_dim)
        keep[i, columns] = 0.0
        fill[i, columns] = baseline.to(fill.dtype)
    offset = embedding_dim * len(category_baselines)
    for j in range(k):
        row = len(category_baselines) + j
        keep[row, [offset + j, offset + k + j]] = 0.0
        fill[row, offset + j] = numeric_baseline[j]
    return keep, fill
