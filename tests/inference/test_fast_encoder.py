"""The lean BERT forward used for serving reproduces the transformers module, or is not used."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import inference.fast_encoder as fast_encoder
from inference.fast_encoder import FastSequenceEncoder, accelerated
from inference.model import ModelConfig, ReadmissionModel, SequenceEncoder
from inference.predictor import ServingModel


def two_layer_encoder() -> SequenceEncoder:
    """A randomly initialised two-layer code encoder (the trained fixture's has one layer)."""
    torch.manual_seed(11)
    config = ModelConfig(
        code_vocab_size=60, num_code_types=5, max_code_length=40, category_cardinalities=[3],
        numeric_width=2, hidden_size=16, num_layers=2, num_heads=2, fusion_size=16,
    )  # fmt: skip
    return ReadmissionModel(config).eval().codes


def encoders(serving: ServingModel) -> list[SequenceEncoder]:
    model = serving.model
    assert model.notes is not None
    return [model.codes, model.notes, two_layer_encoder()]


def inputs(encoder: Any, rows: int, length: int) -> tuple[torch.Tensor, ...]:
    config = encoder.bert.config
    generator = torch.Generator().manual_seed(rows * 100 + length)
    ids = torch.randint(0, int(config.vocab_size), (rows, length), generator=generator)
    types = torch.randint(0, int(config.type_vocab_size), (rows, length), generator=generator)
    lengths = torch.randint(1, length + 1, (rows,), generator=generator)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    return ids, mask, types


@pytest.mark.parametrize(("rows", "length"), [(1, 2), (1, 32), (7, 19), (40, 32)])
def test_the_fast_code_and_note_encoders_match_the_modules(
    serving_model: ServingModel, rows: int, length: int
) -> None:
    for module in encoders(serving_model):
        ids, mask, types = inputs(module, rows, length)
        with torch.inference_mode():
            expected = module(ids, mask, types)
            got = FastSequenceEncoder(module)(ids, mask, types)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_serving_uses_the_fast_encoders(serving_model: ServingModel) -> None:
    assert isinstance(serving_model.scorer.codes_encoder, FastSequenceEncoder)
    assert isinstance(serving_model.scorer.notes_encoder, FastSequenceEncoder)


def test_a_fast_encoder_that_disagrees_is_not_used(
    serving_model: ServingModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast_encoder, "PARITY_TOLERANCE", -1.0)
    assert accelerated(serving_model.model.codes) is serving_model.model.codes


def variant_masks(mask: torch.Tensor, owners: torch.Tensor, seed: int) -> torch.Tensor:
    """Copies of the owners' masks with random tokens after [CLS] masked out."""
    generator = torch.Generator().manual_seed(seed)
    masks = mask[owners].clone()
    drop = torch.rand(masks.shape, generator=generator) < 0.2
    drop[:, 0] = False
    masks[drop] = 0
    return masks


@pytest.mark.parametrize(("rows", "length"), [(1, 30), (5, 19)])
def test_occluded_rows_equal_the_module_on_the_masked_rows(
    serving_model: ServingModel, rows: int, length: int
) -> None:
    for module in encoders(serving_model):
        ids, mask, types = inputs(module, rows, length)
        owners = torch.arange(rows).repeat_interleave(3)
        masks = variant_masks(mask, owners, seed=rows)
        assert bool((masks != mask[owners]).any())
        with torch.inference_mode():
            expected = module(ids[owners], masks, types[owners])
            got = FastSequenceEncoder(module).occluded(ids, types, owners, masks)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_occluded_recomputes_the_softmax_where_the_shared_exponentials_would_underflow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = two_layer_encoder()
    ids, mask, types = inputs(module, 4, 16)
    owners = torch.tensor([0, 1, 1, 2, 3, 3])
    masks = variant_masks(mask, owners, seed=4)
    fast = FastSequenceEncoder(module)
    calls = []
    softmax = torch.softmax

    def counted(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(1)
        return softmax(*args, **kwargs)

    with torch.inference_mode():
        expected = module(ids[owners], masks, types[owners])
        monkeypatch.setattr(torch, "softmax", counted)
        shared = fast.occluded(ids, types, owners, masks)
        shared_calls = len(calls)
        monkeypatch.setattr(fast_encoder, "_MIN_NORMALISER", float("inf"))
        recomputed = fast.occluded(ids, types, owners, masks)
    # One softmax per later layer normally; the first layer's too when it is recomputed.
    layers = len(fast.layers)
    assert (shared_calls, len(calls) - shared_calls) == (layers - 1, layers)
    torch.testing.assert_close(shared, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(recomputed, expected, rtol=0, atol=1e-5)
