"""A lean forward pass of the model's BERT sequence encoders, for serving latency.

The transformers ``BertModel`` forward spends most of a single-record request in Python
(mask preparation, attention dispatch, config lookups, output objects), not in arithmetic.
This runs the same weights through the same operations (embeddings, LayerNorm, fused QKV
projection, ``scaled_dot_product_attention``, the feed-forward) with none of that overhead.

It is only used after it has reproduced the transformers forward on a probe batch (padding
included) to within ``PARITY_TOLERANCE``; otherwise, or for an encoder of another shape
(decoder, relative positions), serving falls back to the module itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from inference.model import SequenceEncoder

log = logging.getLogger(__name__)

#: Largest absolute difference from the transformers forward that is accepted.
PARITY_TOLERANCE = 1e-5
_PROBE_ROWS = 3
_PROBE_SEED = 20240501

EncoderFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass(frozen=True)
class _Layer:
    qkv_weight: torch.Tensor
    qkv_bias: torch.Tensor
    out: nn.Module
    attention_norm: nn.Module
    intermediate: nn.Module
    activation: nn.Module
    output: nn.Module
    output_norm: nn.Module


class FastSequenceEncoder:
    """``SequenceEncoder.forward`` (BERT, pooled, projected) without the transformers overhead."""

    def __init__(self, encoder: SequenceEncoder) -> None:
        bert: Any = encoder.bert
        config = bert.config
        if getattr(config, "is_decoder", False) or getattr(
            config, "position_embedding_type", "absolute"
        ) not in ("absolute", None):
            raise ValueError("only absolute-position encoder BERTs are supported")
        embeddings = bert.embeddings
        self.word: nn.Module = embeddings.word_embeddings
        self.position_table: torch.Tensor = embeddings.position_embeddings.weight
        self.token_type: nn.Module = embeddings.token_type_embeddings
        self.embedding_norm: nn.Module = embeddings.LayerNorm
        self.heads = int(config.num_attention_heads)
        self.project: nn.Module = encoder.project
        self.layers = [self._layer(layer) for layer in bert.encoder.layer]

    @staticmethod
    def _layer(layer: Any) -> _Layer:
        attention = layer.attention.self
        weight = torch.cat([attention.query.weight, attention.key.weight, attention.value.weight])
        bias = torch.cat([attention.query.bias, attention.key.bias, attention.value.bias])
        return _Layer(
            qkv_weight=weight.detach().contiguous(),
            qkv_bias=bias.detach().contiguous(),
            out=layer.attention.output.dense,
            attention_norm=layer.attention.output.LayerNorm,
            intermediate=layer.intermediate.dense,
            activation=layer.intermediate.intermediate_act_fn,
            output=layer.output.dense,
            output_norm=layer.output.LayerNorm,
        )

    def states(
        self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The last hidden states (what ``BertModel(...).last_hidden_state`` holds)."""
        rows, length = ids.shape
        token_types = torch.zeros_like(ids) if types is None else types
        x = self.word(ids) + self.token_type(token_types) + self.position_table[:length]
        x = self.embedding_norm(x)
        keep = mask.bool()[:, None, None, :]
        width = x.shape[-1]
        head = width // self.heads
        for layer in self.layers:
            qkv = F.linear(x, layer.qkv_weight, layer.qkv_bias)
            q, k, v = qkv.view(rows, length, 3, self.heads, head).permute(2, 0, 3, 1, 4)
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=head**-0.5)
            context = context.transpose(1, 2).reshape(rows, length, width)
            x = layer.attention_norm(layer.out(context) + x)
            x = layer.output_norm(layer.output(layer.activation(layer.intermediate(x))) + x)
        return x

    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Pooled ([CLS] and masked mean) and projected, as ``SequenceEncoder`` returns it."""
        states = self.states(ids, mask, types)
        weights = mask.unsqueeze(-1).to(states.dtype)
        mean = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.project(torch.cat([states[:, 0], mean], dim=-1))


def _probe(encoder: SequenceEncoder) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    config: Any = encoder.bert.config
    generator = torch.Generator().manual_seed(_PROBE_SEED)
    length = min(int(config.max_position_embeddings), 24)
    ids = torch.randint(0, int(config.vocab_size), (_PROBE_ROWS, length), generator=generator)
    types = torch.randint(
        0, int(config.type_vocab_size), (_PROBE_ROWS, length), generator=generator
    )
    mask = torch.ones_like(ids)
    mask[1, length // 2 :] = 0
    mask[2, 2:] = 0
    return ids, mask, types


def accelerated(encoder: SequenceEncoder) -> EncoderFn:
    """The fast forward when it reproduces the module on a probe batch, else the module."""
    try:
        fast = FastSequenceEncoder(encoder)
        ids, mask, types = _probe(encoder)
        with torch.inference_mode():
            difference = float((fast(ids, mask, types) - encoder(ids, mask, types)).abs().max())
    except (AttributeError, ValueError, RuntimeError, TypeError) as e:
        log.warning("fast sequence encoder unavailable (%s); using the module", type(e).__name__)
        return encoder
    if not difference <= PARITY_TOLERANCE:
        log.warning("fast sequence encoder differs by %.2e; using the module", difference)
        return encoder
    return fast
