"""The readmission model: code-sequence Transformer + tabular tower (+ notes), gated fusion.

Built from ``ModelConfig`` alone (transformers ``BertConfig``/``BertModel``, no download), so
that training and the serving container rebuild exactly the same network from
``model_config.json`` and ``model.safetensors``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from contracts.model_artifact import MODEL_CONFIG_FILE, WEIGHTS_FILE
from inference.trees import TreeSpec, TreeTerm

#: Key in ``ModelConfig.extra`` holding a hub-initialised code encoder's BERT config.
CODE_ENCODER_CONFIG_KEY = "code_encoder_bert_config"
#: State-dict prefix of the training-only auxiliary head.
AUXILIARY_PREFIX = "auxiliary."


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of ``ReadmissionModel``; every size the encoder decides is recorded here."""

    code_vocab_size: int
    num_code_types: int
    max_code_length: int
    category_cardinalities: list[int]
    numeric_width: int
    note_vocab_size: int = 0
    note_max_length: int = 256
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    note_hidden_size: int = 64
    note_num_layers: int = 2
    category_embedding_dim: int = 8
    tabular_hidden_size: int = 64
    fusion_size: int = 64
    dropout: float = 0.1
    #: A second output for the auxiliary training target; training only (``save_model`` drops it).
    auxiliary_head: bool = False
    #: A hub encoder for the codes (production option); never used in tests or offline runs.
    pretrained_code_encoder: str | None = None
    #: ``TreeSpec.to_dict()`` of the blended gradient-boosted trees; None: the network alone.
    trees: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads or self.note_hidden_size % self.num_heads:
            raise ValueError("hidden sizes must be divisible by num_heads")
        if self.code_vocab_size < 3 or self.num_code_types < 1 or self.max_code_length < 2:
            raise ValueError("code vocabulary, types and length must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must lie in [0, 1)")

    @property
    def notes_enabled(self) -> bool:
        return self.note_vocab_size > 0

    def save(self, directory: str | Path) -> None:
        Path(directory, MODEL_CONFIG_FILE).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> ModelConfig:
        return cls(**json.loads(Path(directory, MODEL_CONFIG_FILE).read_text()))


def _bert(
    vocab_size: int, hidden: int, layers: int, heads: int, max_len: int, types: int, dropout: float
) -> nn.Module:
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=2 * hidden,
        max_position_embeddings=max_len,
        type_vocab_size=types,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=0,
    )
    return BertModel(config, add_pooling_layer=False)


def pool_states(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Concatenate the [CLS] state with the masked mean of all states."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    return torch.cat([hidden[:, 0], mean], dim=-1)


class SequenceEncoder(nn.Module):
    """A BERT encoder over token ids, pooled to one vector per row."""

    def __init__(self, bert: nn.Module, hidden: int, out: int) -> None:
        super().__init__()
        self.bert = bert
        self.project = nn.Sequential(nn.Linear(2 * hidden, out), nn.GELU())

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None = None
    ) -> torch.Tensor:
        states = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types)
        return self.project(pool_states(states.last_hidden_state, mask))


class TabularTower(nn.Module):
    """Embeddings for categoricals and an MLP over them plus the standardised numerics."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        dim = config.category_embedding_dim
        self.embeddings = nn.ModuleList(nn.Embedding(n, dim) for n in config.category_cardinalities)
        width = dim * len(config.category_cardinalities) + config.numeric_width
        self.mlp = nn.Sequential(
            nn.Linear(width, config.tabular_hidden_size),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.tabular_hidden_size, config.fusion_size),
            nn.GELU(),
        )

    def inputs(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """The MLP's input: each categorical's embedding in field order, then the numerics.

        Occlusion attribution replaces slices of exactly this layout.
        """
        parts = [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        return torch.cat([*parts, numeric], dim=-1)

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.inputs(categorical, numeric))


class GatedFusion(nn.Module):
    """Gated concatenation: each modality's vector is scaled by a gate computed from all."""

    def __init__(self, modalities: int, size: int) -> None:
        super().__init__()
        self.gate = nn.Linear(modalities * size, modalities * size)

    def forward(self, parts: list[torch.Tensor]) -> torch.Tensor:
        joined = torch.cat(parts, dim=-1)
        return joined * torch.sigmoid(self.gate(joined))


class ReadmissionModel(nn.Module):
    """Returns one logit per encounter (uncalibrated; temperature is applied outside)."""

    def __init__(self, config: ModelConfig, *, download_pretrained: bool = False) -> None:
        super().__init__()
        self.config = config
        bert = _code_bert(config, download_pretrained)
        code_hidden = int(bert.config.hidden_size)
        self.codes = SequenceEncoder(bert, code_hidden, config.fusion_size)
        self.tabular = TabularTower(config)
        self.notes: SequenceEncoder | None = None
        modalities = 2
        if config.notes_enabled:
            note_bert = _bert(
                config.note_vocab_size,
                config.note_hidden_size,
                config.note_num_layers,
                config.num_heads,
                config.note_max_length + 2,
                1,
                config.dropout,
            )
            self.notes = SequenceEncoder(note_bert, config.note_hidden_size, config.fusion_size)
            modalities = 3
        self.fusion = GatedFusion(modalities, config.fusion_size)
        self.head = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(modalities * config.fusion_size, config.fusion_size),
            nn.GELU(),
            nn.Linear(config.fusion_size, 1),
        )
        # Multi-task training: the auxiliary target's logit from the head's hidden layer, so
        # that its (denser) supervision shapes everything the main logit is computed from.
        self.auxiliary = nn.Linear(config.fusion_size, 1) if config.auxiliary_head else None
        # Gradient-boosted trees over the same encoded inputs, fitted after the network
        # (``attach_trees``) and blended at the logit: the two rank differently enough that
        # the blend ranks better than either (docs/model.md). The booster lives in its own
        # file (``load_model`` reads it); the blend weights are a buffer of the weights file.
        # Both exist only in a model with trees, so artifacts without them load as before.
        self.trees: TreeTerm | None = None
        self.tree_blend: torch.Tensor  # [network weight, prior shift added to the trees]
        if config.trees is not None:
            TreeSpec.from_dict(config.trees)  # refuses trees of a format this code can't read
            self.register_buffer("tree_blend", torch.tensor([1.0, 0.0], dtype=torch.float64))

    def forward(
        self,
        code_ids: torch.Tensor,
        code_types: torch.Tensor,
        code_mask: torch.Tensor,
        categorical: torch.Tensor,
        numeric: torch.Tensor,
        note_ids: torch.Tensor | None = None,
        note_mask: torch.Tensor | None = None,
        with_auxiliary: bool = False,
    ) -> torch.Tensor:
        """The logits ``(n,)``; with ``with_auxiliary``, ``(n, 2)``: main then auxiliary."""
        parts = [self.codes(code_ids, code_mask, code_types), self.tabular(categorical, numeric)]
        if self.notes is not None:
            if note_ids is None or note_mask is None:
                raise ValueError("this model needs note_ids and note_mask")
            parts.append(self.notes(note_ids, note_mask))
        if not with_auxiliary:
            trees = None
            if self.trees is not None:
                trees = self.trees(numeric, categorical, code_ids, code_mask)
            return self.logit(parts, trees)
        if self.auxiliary is None:
            raise ValueError("this model has no auxiliary head")
        hidden, output = self._hidden(parts)
        return torch.cat([output(hidden), self.auxiliary(hidden)], dim=-1)

    def _hidden(self, parts: list[torch.Tensor]) -> tuple[torch.Tensor, nn.Module]:
        """The head's last hidden layer, and the layer that turns it into the logit."""
        *hidden_layers, output = self.head
        x = self.fusion(parts)
        for layer in hidden_layers:
            x = layer(x)
        return x, output

    def combine(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """The network's logit from each modality's vector (codes, tabular, then notes)."""
        hidden, output = self._hidden(parts)
        return cast(torch.Tensor, output(hidden)).squeeze(-1)

    def logit(self, parts: list[torch.Tensor], trees: torch.Tensor | None) -> torch.Tensor:
        """The model's logit from each modality's vector and the trees' raw logits (None
        without trees): the one definition of how the pieces make the answer, shared by
        ``forward`` and serving's ``inference.scorer.Scorer``."""
        network = self.combine(parts)
        if self.trees is None:
            return network
        if trees is None:
            raise ValueError("this model blends trees: their logits are needed")
        return self.blend(network, trees)

    def blend(self, network: torch.Tensor, trees: torch.Tensor) -> torch.Tensor:
        """``w * network + (1 - w) * (trees + shift)``, in the network's dtype.

        The shift puts the trees on the network's logit scale (the prior shift a positive
        class weight gives the network), so calibration's offset applies to the blend as is.
        """
        weight, shift = self.tree_blend[0], self.tree_blend[1]
        mixed = weight * network.double() + (1.0 - weight) * (trees.double() + shift)
        return mixed.to(network.dtype)

    def attach_trees(self, trees: TreeTerm, network_weight: float, shift: float) -> None:
        """Blend ``trees`` into the logit from now on (recorded in the config for loading)."""
        if not 0.0 <= network_weight <= 1.0:
            raise ValueError("the network's weight must lie in [0, 1]")
        device = next(self.parameters()).device
        self.trees = trees
        self.config = replace(self.config, trees=trees.spec.to_dict())
        blend = torch.tensor([network_weight, shift], dtype=torch.float64, device=device)
        self.register_buffer("tree_blend", blend)


def _code_bert(config: ModelConfig, download_pretrained: bool) -> Any:
    """Build the code encoder: from a saved BERT config, a hub encoder, or the small default."""
    from transformers import BertConfig, BertModel

    if CODE_ENCODER_CONFIG_KEY in config.extra:
        saved = BertConfig.from_dict(config.extra[CODE_ENCODER_CONFIG_KEY])
        return BertModel(saved, add_pooling_layer=False)
    if config.pretrained_code_encoder:
        if not download_pretrained:
            raise ValueError("a hub encoder is named but downloading it was not allowed")
        bert = BertModel.from_pretrained(config.pretrained_code_encoder, add_pooling_layer=False)
        # The codes have their own vocabulary and one token type per code field.
        bert.resize_token_embeddings(config.code_vocab_size)
        hidden = int(bert.config.hidden_size)
        bert.embeddings.token_type_embeddings = nn.Embedding(config.num_code_types, hidden)
        bert.config.type_vocab_size = config.num_code_types
        return bert
    return _bert(
        config.code_vocab_size,
        config.hidden_size,
        config.num_layers,
        config.num_heads,
        config.max_code_length,
        config.num_code_types,
        config.dropout,
    )


def save_model(model: ReadmissionModel, directory: str | Path) -> None:
    """Write ``model_config.json``, ``model.safetensors`` and, with trees, their text model.

    A hub-initialised encoder's full BERT config is recorded so that loading never downloads.
    The auxiliary head is left out: the artifact holds what serving runs, nothing more.
    """
    from safetensors.torch import save_file

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    config = replace(model.config, auxiliary_head=False)  # serving never uses it
    if config.pretrained_code_encoder and CODE_ENCODER_CONFIG_KEY not in config.extra:
        bert_config = cast(Any, model.codes.bert).config.to_dict()
        config = replace(config, extra={**config.extra, CODE_ENCODER_CONFIG_KEY: bert_config})
    config.save(path)
    state = {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in model.state_dict().items()
        if not name.startswith(AUXILIARY_PREFIX)
    }
    save_file(state, str(path / WEIGHTS_FILE))
    if model.trees is not None:
        model.trees.save(path)


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> ReadmissionModel:
    """Rebuild the model from its config and load the weights (and trees), in eval mode.

    Raises ``inference.trees.LegacyTreesError`` for trees exported from scikit-learn.
    """
    from safetensors.torch import load_file

    path = Path(directory)
    config = ModelConfig.load(path)
    model = ReadmissionModel(config)
    model.load_state_dict(load_file(str(path / WEIGHTS_FILE), device=str(device)))
    if config.trees is not None:
        model.trees = TreeTerm.load(path, TreeSpec.from_dict(config.trees))
    return model.to(device).eval()
