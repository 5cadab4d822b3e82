"""A lean forward pass of the model's BERT sequence encoders, for serving latency.

The transformers ``BertModel`` forward spends most of a single-record request in Python
(mask preparation, attention dispatch, config lookups, output objects), not in arithmetic.
This runs the same weights through the same operations (embeddings, LayerNorm, fused QKV
projection, ``scaled_dot_product_attention``, the feed-forward) with none of that overhead.

``occluded`` serves occlusion attribution: many copies of a row that differ only in which
tokens are masked out. Embeddings, the first layer's QKV projection and its attention scores
are per token and do not depend on the mask, so they are computed once per original row and
shared by all its variants; only the softmax onwards runs per variant, with attention written
out (two matmuls and a softmax), which for many rows of tens of tokens is faster on CPU than
the fused kernel.

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

from inference.model import SequenceEncoder, pool_states

log = logging.getLogger(__name__)

#: Largest absolute difference from the transformers forward that is accepted.
PARITY_TOLERANCE = 1e-5
#: Variant rows per pass of ``occluded`` (bounds memory on big batches).
VARIANT_CHUNK = 512
#: Smallest first-layer softmax normaliser taken from the shared exponentials (see ``occluded``).
_MIN_NORMALISER = 1e-30
_PROBE_ROWS = 3
_PROBE_SEED = 20240501

EncoderFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
Activation = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class _Dense:
    weight: torch.Tensor
    bias: torch.Tensor | None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


@dataclass(frozen=True)
class _Norm:
    shape: tuple[int, ...]
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    eps: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.shape, self.weight, self.bias, self.eps)


@dataclass(frozen=True)
class _Layer:
    qkv: _Dense
    out: _Dense
    attention_norm: _Norm
    intermediate: _Dense
    activation: Activation
    output: _Dense
    output_norm: _Norm


def _dense(module: Any) -> _Dense:
    if not isinstance(module, nn.Linear):
        raise TypeError("expected a linear layer")
    bias = None if module.bias is None else module.bias.detach()
    return _Dense(module.weight.detach(), bias)


def _norm(module: Any) -> _Norm:
    if not isinstance(module, nn.LayerNorm):
        raise TypeError("expected a LayerNorm")
    weight = None if module.weight is None else module.weight.detach()
    bias = None if module.bias is None else module.bias.detach()
    return _Norm(tuple(module.normalized_shape), weight, bias, float(module.eps))


def _activation(module: Any) -> Activation:
    """The function itself where the module only wraps ``F.gelu`` (transformers' GELU)."""
    if isinstance(module, nn.GELU) and module.approximate == "none":
        return F.gelu
    if getattr(module, "act", None) is F.gelu:
        return F.gelu
    return module


def _rows(batch: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``batch[rows]``; a one-row batch is broadcast rather than copied."""
    return batch if batch.shape[0] == 1 else batch.index_select(0, rows)


def _mask_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 where a key is kept, -inf where masked: ``(rows, 1, 1, length)`` for the scores."""
    bias = torch.zeros(mask.shape, dtype=dtype)
    return bias.masked_fill_(mask == 0, float("-inf"))[:, None, None, :]


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
        self.word_table: torch.Tensor = embeddings.word_embeddings.weight.detach()
        self.position_table: torch.Tensor = embeddings.position_embeddings.weight.detach()
        self.type_table: torch.Tensor = embeddings.token_type_embeddings.weight.detach()
        self.embedding_norm = _norm(embeddings.LayerNorm)
        self.heads = int(config.num_attention_heads)
        self.project: nn.Module = encoder.project
        self.layers = [self._layer(layer) for layer in bert.encoder.layer]
        if not self.layers:
            raise ValueError("the encoder has no layers")

    @staticmethod
    def _layer(layer: Any) -> _Layer:
        attention = layer.attention.self
        weight = torch.cat([attention.query.weight, attention.key.weight, attention.value.weight])
        bias = torch.cat([attention.query.bias, attention.key.bias, attention.value.bias])
        return _Layer(
            qkv=_Dense(weight.detach().contiguous(), bias.detach().contiguous()),
            out=_dense(layer.attention.output.dense),
            attention_norm=_norm(layer.attention.output.LayerNorm),
            intermediate=_dense(layer.intermediate.dense),
            activation=_activation(layer.intermediate.intermediate_act_fn),
            output=_dense(layer.output.dense),
            output_norm=_norm(layer.output.LayerNorm),
        )

    # ----- the pieces of a layer -----
    def _embed(self, ids: torch.Tensor, types: torch.Tensor | None) -> torch.Tensor:
        length = ids.shape[1]
        token_types = torch.zeros_like(ids) if types is None else types
        x = F.embedding(ids, self.word_table) + F.embedding(token_types, self.type_table)
        return self.embedding_norm(x + self.position_table[:length])

    def _split(self, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-head queries, keys and values: each ``(rows, heads, length, head width)``."""
        rows, length, width3 = qkv.shape
        q, k, v = qkv.view(rows, length, 3, self.heads, width3 // (3 * self.heads)).permute(
            2, 0, 3, 1, 4
        )
        return q, k, v

    def _scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return torch.matmul(q, k.transpose(-1, -2)).mul_(q.shape[-1] ** -0.5)

    @staticmethod
    def _after_attention(layer: _Layer, context: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The rest of a layer after attention; ``context`` is ``(rows, heads, length, width)``."""
        joined = context.transpose(1, 2).flatten(2)
        x = layer.attention_norm(layer.out(joined) + x)
        return layer.output_norm(layer.output(layer.activation(layer.intermediate(x))) + x)

    def _layer_forward(self, layer: _Layer, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """One layer with ``scaled_dot_product_attention`` (``keep``: True for kept keys)."""
        q, k, v = self._split(layer.qkv(x))
        scale = q.shape[-1] ** -0.5
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=scale)
        return self._after_attention(layer, context, x)

    def _variant_layer(self, layer: _Layer, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """One layer with attention written out (``bias``: 0 or -inf per key).

        For many short rows (occlusion variants) two matmuls and a softmax are faster on CPU
        than the fused kernel; for one long row (a note) the fused kernel is, several times.
        """
        q, k, v = self._split(layer.qkv(x))
        weights = torch.softmax(self._scores(q, k).add_(bias), dim=-1)
        return self._after_attention(layer, torch.matmul(weights, v), x)

    @staticmethod
    def _first_attention(
        shared: torch.Tensor,
        scores: torch.Tensor,
        v: torch.Tensor,
        rows: torch.Tensor,
        mask: torch.Tensor,
        bias: torch.Tensor,
    ) -> torch.Tensor:
        """First-layer attention of variant rows from their batch row's shared exponentials.

        ``shared @ [values * keep | keep]`` gives each query's weighted sum over the kept keys
        and, in the last column, its normaliser. Where a normaliser is so small that float32
        would lose the weights (every kept key scores ~70 below a masked one), the chunk is
        recomputed with a plain softmax.
        """
        keep = mask.to(v.dtype)[:, None, :, None].expand(-1, v.shape[1], -1, 1)
        values = torch.cat([_rows(v, rows) * keep, keep], dim=-1)
        summed = torch.matmul(shared.index_select(0, rows), values)
        normaliser = summed[..., -1:]
        if float(normaliser.min()) < _MIN_NORMALISER:
            weights = torch.softmax(scores.index_select(0, rows).add_(bias), dim=-1)
            return torch.matmul(weights, v.index_select(0, rows))
        return summed[..., :-1] / normaliser

    def _pool(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[CLS] and the masked mean, projected, as ``SequenceEncoder`` pools."""
        return self.project(pool_states(states, mask))

    # ----- public -----
    def states(
        self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The last hidden states (what ``BertModel(...).last_hidden_state`` holds)."""
        x = self._embed(ids, types)
        keep = mask.bool()[:, None, None, :]
        for layer in self.layers:
            x = self._layer_forward(layer, x, keep)
        return x

    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Pooled ([CLS] and masked mean) and projected, as ``SequenceEncoder`` returns it."""
        return self._pool(self.states(ids, mask, types), mask)

    def occluded(
        self,
        ids: torch.Tensor,
        types: torch.Tensor | None,
        owners: torch.Tensor,
        masks: torch.Tensor,
    ) -> torch.Tensor:
        """``self(ids[owners], masks, types[owners])``, sharing the mask-free work per row.

        Row ``i`` of the answer is row ``owners[i]`` of the batch encoded under ``masks[i]``.
        Embeddings, the first layer's QKV projection and its attention scores do not depend on
        the mask, so they are computed once per batch row (module docstring).
        """
        x = self._embed(ids, types)
        first = self.layers[0]
        q, k, v = self._split(first.qkv(x))
        scores = self._scores(q, k)
        # exp(score - the row's max over all keys), once per batch row: a variant's softmax is
        # these over its kept keys, renormalised (the same ratios as softmax over those keys).
        shared = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
        pooled = []
        for start in range(0, len(owners), VARIANT_CHUNK):
            rows = owners[start : start + VARIANT_CHUNK]
            mask = masks[start : start + VARIANT_CHUNK]
            bias = _mask_bias(mask, x.dtype)
            context = self._first_attention(shared, scores, v, rows, mask, bias)
            h = self._after_attention(first, context, _rows(x, rows))
            for layer in self.layers[1:]:
                h = self._variant_layer(layer, h, bias)
            pooled.append(self._pool(h, mask))
        return torch.cat(pooled)


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
    """The fast forward when it reproduces the module on a probe batch, else the module.

    The probe covers both entry points: the plain forward, and ``occluded`` on masks with
    tokens taken out of the middle of a row.
    """
    try:
        fast = FastSequenceEncoder(encoder)
        ids, mask, types = _probe(encoder)
        owners = torch.tensor([0, 0, 1, 2])
        masks = mask[owners].clone()
        masks[1, 3:5] = 0
        masks[2, 1] = 0
        with torch.inference_mode():
            plain = (fast(ids, mask, types) - encoder(ids, mask, types)).abs().max()
            expected = encoder(ids[owners], masks, types[owners])
            variants = (fast.occluded(ids, types, owners, masks) - expected).abs().max()
            difference = float(torch.maximum(plain, variants))
    except (AttributeError, ValueError, RuntimeError, TypeError) as e:
        log.warning("fast sequence encoder unavailable (%s); using the module", type(e).__name__)
        return encoder
    if not difference <= PARITY_TOLERANCE:
        log.warning("fast sequence encoder differs by %.2e; using the module", difference)
        return encoder
    return fast
