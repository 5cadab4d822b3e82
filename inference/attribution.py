"""Top contributing factors of each prediction, by occlusion, in names a clinician can read.

Method: occlusion against a training baseline. Each feature group of a record is replaced by
what an average training patient would have, and the change of the calibrated log-odds is the
group's contribution (positive: the patient's value raises the risk):

* a numeric field: its training median, not missing (the encoder's imputation value);
* a categorical field: its embedding replaced by the training-frequency-weighted mean
  embedding (frequencies from the model's ``drift_baseline.json``);
* one code (a diagnosis, procedure, medication or abnormal lab): its tokens masked out;
* the discharge note: replaced by an empty note.

Why occlusion and not integrated gradients: the answer is exact for the question a clinician
asks ("what if this were typical?"), needs no gradients (the hooks run under
``torch.inference_mode``), is deterministic, and is cheap here because each group touches one
modality: only that modality's tower is re-run for its variants, all variants of a request in
one batched pass per tower with the original records inside that batch, and the fusion head
once over originals and variants. The code encoder, where nearly all the cost is, shares
what masking a code cannot change (embeddings, the first layer's projections and attention
scores) between a record and its variants (``FastSequenceEncoder.occluded``); the answer is
the same as re-scoring each variant on its own, which the tests check group by group.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

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
from inference.fast_encoder import VARIANT_CHUNK, FastSequenceEncoder, accelerated
from inference.model import ReadmissionModel
from inference.trees import CategoryClasses, TreeEnsemble

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
    """Runs the model in pieces and explains each prediction by occlusion (module docstring)."""

    def __init__(
        self,
        model: ReadmissionModel,
        encoder: FeatureEncoder,
        drift_baseline: Mapping[str, Any] | None,
        titles: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.model = model
        self.encoder = encoder
        self.titles = titles
        self.codes_encoder = accelerated(model.codes)
        self._pool: ThreadPoolExecutor | None = None  # created on first use
        self.notes_encoder = accelerated(model.notes) if model.notes is not None else None
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
            self.tree_templates = (
                None if model.trees is None else _tree_templates(model.trees, self)
            )
            self.empty_note: torch.Tensor | None = None
            if (
                self.notes_encoder is not None
                and typical.note_ids is not None
                and typical.note_mask is not None
            ):
                ids = torch.from_numpy(typical.note_ids)
                mask = torch.from_numpy(typical.note_mask)
                self.empty_note = self.notes_encoder(ids, mask, None).detach()

    # ----- the model, in pieces -----
    def logits(self, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The model's logits through the serving encoders, without any explanation."""
        codes = self.codes_encoder(tensors["code_ids"], tensors["code_mask"], tensors["code_types"])
        tabular_input = self.model.tabular.inputs(tensors["categorical"], tensors["numeric"])
        network = self._head(codes, self.model.tabular.mlp(tabular_input), self._notes(tensors))
        trees = self.model.trees
        if trees is None:
            return network
        tree_logits = trees(
            tensors["numeric"], tensors["categorical"], tensors["code_ids"], tensors["code_mask"]
        )
        return self.model.blend(network, tree_logits)

    def _notes(self, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        if self.notes_encoder is None:
            return None
        return self.notes_encoder(tensors["note_ids"], tensors["note_mask"], None)

    def _head(
        self, codes: torch.Tensor, tabular: torch.Tensor, notes: torch.Tensor | None
    ) -> torch.Tensor:
        return self.model.combine([codes, tabular] if notes is None else [codes, tabular, notes])

    # ----- occlusion -----
    def explain(
        self,
        records: Sequence[Mapping[str, Any]],
        tensors: Mapping[str, torch.Tensor],
        temperature: float,
    ) -> tuple[torch.Tensor, list[list[dict[str, Any]]]]:
        """Each record's logit, and its top factors in calibrated log-odds, largest first.

        One pass per tower with the original records inside the variant batch (code encoder,
        tabular MLP), the notes encoder over the originals only (on a worker thread, beside
        the code variants), the fusion head once over originals and variants together.
        """
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
        pending_notes = self._notes_in_background(tensors)
        originals = torch.arange(n)
        tabular_owners = originals.repeat_interleave(groups)
        by_code = torch.tensor(code_owners, dtype=torch.long)
        by_note = torch.tensor(note_owners, dtype=torch.long)

        # Code encoder rows: the originals, then each record without one of its codes.
        owners = torch.cat([originals, by_code])
        masks = tensors["code_mask"].index_select(0, owners)
        masks[torch.tensor(rows, dtype=torch.long), torch.tensor(positions, dtype=torch.long)] = 0
        pending_trees = None
        if self.model.trees is not None:  # independent of the towers: beside the code variants
            variant_masks = masks[n:].clone()
            pending_trees = self._in_background(
                lambda: self._tree_rows(tensors, variant_masks, by_code, by_note)
            )
        codes = self._codes(tensors, owners, masks)
        # Tabular MLP rows: the originals, then each record with one group made typical.
        tabular_input = self.model.tabular.inputs(tensors["categorical"], tensors["numeric"])
        occluded = tabular_input.index_select(0, tabular_owners) * self.tabular_keep.repeat(n, 1)
        tabular = self.model.tabular.mlp(
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
        logits = self._head(
            codes.index_select(0, head_codes), tabular.index_select(0, head_tabular), head_notes
        )
        if self.model.trees is not None:
            assert pending_trees is not None
            tree_logits = pending_trees.result()
            logits = self.model.blend(logits, tree_logits)
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

    def _tree_rows(
        self,
        tensors: Mapping[str, torch.Tensor],
        code_variant_masks: torch.Tensor,
        by_code: torch.Tensor,
        by_note: torch.Tensor,
    ) -> torch.Tensor:
        """The trees' logits for the head's rows: originals, tabular, code, note variants.

        The same baselines as the network's: a numeric set to its training median (not
        missing); a categorical averaged over the training categories by frequency (the
        trees' counterpart of the mean embedding); a code's tokens masked out. The trees do
        not read the note, so a note variant scores as its original.
        """
        trees = self.model.trees
        assert trees is not None
        x = trees.design(
            tensors["numeric"], tensors["categorical"], tensors["code_ids"], tensors["code_mask"]
        )
        n, width = x.shape
        templates = self.tree_templates
        assert templates is not None
        records = torch.arange(n)
        # Each variant as (owner, changed columns, their values); padding: column ``width``.
        # Tabular variants, record-major: (one-hot trees) every (field, category), then every
        # numeric. With categorical splits the categoricals are averaged after the walk.
        one_hot = templates.one_hot
        tabular_columns = [templates.numeric_columns.expand(n, -1, -1)]
        tabular_values = [templates.numeric_values.expand(n, -1, -1)]
        if one_hot is not None:
            tabular_columns.insert(0, one_hot.columns(tensors["categorical"], width))
            tabular_values.insert(0, one_hot.values.expand(n, -1, -1))
        per_record = sum(c.shape[1] for c in tabular_columns)
        owners = [records.repeat_interleave(per_record)]
        changes = [
            (
                torch.cat(tabular_columns, dim=1).reshape(-1, 2),
                torch.cat(tabular_values, dim=1).reshape(-1, 2).to(x.dtype),
            )
        ]
        if len(by_code):
            variants = trees.design(
                tensors["numeric"].index_select(0, by_code),
                tensors["categorical"].index_select(0, by_code),
                tensors["code_ids"].index_select(0, by_code),
                code_variant_masks,
            )
            changed = variants != x.index_select(0, by_code)
            most = max(1, int(changed.sum(dim=1).max()))
            columns = torch.where(changed, torch.arange(width), width).sort(dim=1).values
            columns = columns[:, :most]
            values = variants.gather(1, columns.clamp(max=width - 1))
            owners.append(by_code)
            changes.append((columns, values))
        most = max(c.shape[1] for c, _ in changes)
        columns = torch.cat([_pad_columns(c, most, width) for c, _ in changes])
        values = torch.cat([_pad_columns(v, most, 0.0) for _, v in changes])
        leaves, tested = trees.walk(x, record_paths=True)
        assert tested is not None
        # Categorical splits: each field averaged over its categories in the same walk.
        scores, averages = trees.variant_and_category_scores(
            x, leaves, tested, torch.cat(owners), columns, values, templates.classes
        )
        originals = trees.total(leaves)
        tabular = scores[: n * per_record].view(n, per_record)
        if one_hot is not None:
            categories = len(one_hot.column)
            categorical = tabular[:, :categories] @ one_hot.category_weights
            numeric = tabular[:, categories:]
        else:
            categorical = averages
            numeric = tabular
        # Record-major, as tabular_owners: categorical fields, then numerics.
        by_record = torch.cat([categorical, numeric], dim=1).reshape(-1)
        rest = scores[n * per_record :]
        return torch.cat([originals, by_record, rest, originals.index_select(0, by_note)])

    def _notes_in_background(self, tensors: Mapping[str, torch.Tensor]) -> Future[Any] | None:
        """The notes tower's output, computed on a worker thread (None without notes).

        torch releases the GIL inside its kernels, so on a machine with a spare core the
        256-token notes encoder overlaps the code variants instead of following them.
        """
        if self.notes_encoder is None:
            return None
        return self._in_background(lambda: self._notes(tensors))

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

    def _codes(
        self, tensors: Mapping[str, torch.Tensor], owners: torch.Tensor, masks: torch.Tensor
    ) -> torch.Tensor:
        """The code vector of batch row ``owners[i]`` under ``masks[i]``, for every ``i``."""
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
class _OneHotVariants:
    """Trees exported before categorical splits (one-hot categoricals): every (categorical
    field, category) variant sets the old category's column to 0 and the new one's to 1; the
    (category, field) weight matrix averages a field's variants by training frequency."""

    field: torch.Tensor
    offset: torch.Tensor
    column: torch.Tensor
    values: torch.Tensor  # (variants, 2): 0 for the old category's column, 1 for the new
    category_weights: torch.Tensor

    def columns(self, categorical: torch.Tensor, width: int) -> torch.Tensor:
        """The two design columns each variant changes, ``(rows, variants, 2)``; a variant
        of a row's own category changes one (column ``width`` is padding)."""
        new = self.column.expand(categorical.shape[0], -1)
        current = categorical.index_select(1, self.field) + self.offset
        cleared = torch.where(current == new, width, current)
        return torch.stack([cleared, new], dim=2)


@dataclass(frozen=True)
class _TreeTemplates:
    """The tabular occlusions as tree-design edits, built once per model.

    Per numeric field: its value and missing-flag columns set to the median and 0. Per
    categorical field: its categories grouped by how each tree routes them (categorical
    splits: ``TreeEnsemble.category_averages``), or, for one-hot trees, a variant per category.
    """

    numeric_columns: torch.Tensor
    numeric_values: torch.Tensor
    classes: list[CategoryClasses]
    one_hot: _OneHotVariants | None


def _tree_templates(trees: TreeEnsemble, explainer: OcclusionExplainer) -> _TreeTemplates:
    shape = trees.shape
    k = len(explainer.numeric_baseline)
    numeric_columns = torch.stack([torch.arange(k), torch.arange(k) + k], dim=1)
    numeric_values = torch.stack(
        [explainer.numeric_baseline.double(), torch.zeros(k, dtype=torch.float64)], dim=1
    )
    cardinalities = shape.category_cardinalities
    if shape.categorical_splits:
        classes = [
            trees.category_classes(field, weights)
            for field, weights in enumerate(explainer.category_weights)
        ]
        return _TreeTemplates(numeric_columns, numeric_values, classes, one_hot=None)
    field = torch.repeat_interleave(torch.arange(len(cardinalities)), torch.tensor(cardinalities))
    starts = torch.tensor([0, *cardinalities]).cumsum(0)[:-1] + shape.numeric_width
    offset = starts.index_select(0, field)
    column = offset + torch.cat([torch.arange(size) for size in cardinalities])
    weights = torch.zeros(len(column), len(cardinalities), dtype=torch.float64)
    weights[torch.arange(len(column)), field] = torch.cat(explainer.category_weights).double()
    one_hot = _OneHotVariants(
        field=field,
        offset=offset,
        column=column,
        values=torch.tensor([[0.0, 1.0]], dtype=torch.float64).expand(len(column), -1),
        category_weights=weights,
    )
    return _TreeTemplates(numeric_columns, numeric_values, [], one_hot)


def _pad_columns(table: torch.Tensor, width: int, fill: float) -> torch.Tensor:
    """Right-pad a 2-D table's rows with ``fill`` to ``width`` columns."""
    return torch.nn.functional.pad(table, (0, width - table.shape[1]), value=fill)


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
