"""The lean BERT forward used for serving reproduces the transformers module, or is not used."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import inference.fast_encoder as fast_encoder
from inference.fast_encoder import FastSequenceEncoder, accelerated
from inference.predictor import ServingModel


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
    model = serving_model.model
    for module in (model.codes, model.notes):
        assert module is not None
        ids, mask, types = inputs(module, rows, length)
        with torch.inference_mode():
            expected = module(ids, mask, types)
            got = FastSequenceEncoder(module)(ids, mask, types)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_serving_uses_the_fast_encoders(serving_model: ServingModel) -> None:
    assert isinstance(serving_model.explainer.codes_encoder, FastSequenceEncoder)
    assert isinstance(serving_model.explainer.notes_encoder, FastSequenceEncoder)


def test_a_fast_encoder_that_disagrees_is_not_used(
    serving_model: ServingModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast_encoder, "PARITY_TOLERANCE", -1.0)
    assert accelerated(serving_model.model.codes) is serving_model.model.codes
