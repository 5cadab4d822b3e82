"""The training loop: DDP under torchrun, AMP on CUDA, early stopping, resumable checkpoints.

A plain loop instead of the Hugging Face ``Trainer`` because transformers 5's Trainer needs
``accelerate``, which the project does not ship. With ``world_size`` processes each rank takes
``batch_size / world_size`` rows of the same seeded permutation, so one optimiser step sees
the same global batch as a single-process run and both runs agree up to float rounding.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from inference.encoding import EncodedBatch
from training.config import HyperParameters
from training.metrics import auroc, format_metric

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job: rank, world size and device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def amp(self) -> bool:
        """fp16 autocast on CUDA (V100 has no bf16); fp32 on CPU."""
        return self.device.type == "cuda"


def init_distributed() -> DistributedContext:
    """Join the process group torchrun set up (``gloo`` on CPU, ``nccl`` on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(rank, world_size, local_rank, device)


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class TensorSet:
    """One split held as CPU tensors; batches are index lookups trimmed to their padding."""

    def __init__(
        self, batch: EncodedBatch, labels: np.ndarray, auxiliary: np.ndarray | None = None
    ) -> None:
        self.tensors = {name: torch.from_numpy(array) for name, array in batch.arrays().items()}
        self.labels = torch.from_numpy(labels.astype(np.float32))
        #: The auxiliary target (multi-task training), when the split has one.
        self.auxiliary = (
            None if auxiliary is None else torch.from_numpy(auxiliary.astype(np.float32))
        )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(self, index: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        rows = {name: tensor[index] for name, tensor in self.tensors.items()}
        for prefix in ("code", "note"):
            mask = rows.get(f"{prefix}_mask")
            if mask is None:
                continue
            width = max(1, int(mask.sum(dim=1).max()))  # tokens are left-aligned
            for name in (f"{prefix}_ids", f"{prefix}_types", f"{prefix}_mask"):
                if name in rows:
                    rows[name] = rows[name][:, :width]
        return {name: tensor.to(device, non_blocking=True) for name, tensor in rows.items()}


@dataclass
class TrainState:
    """Everything a resumed job needs besides the optimiser objects."""

    epoch: int = 0
    step: int = 0
    best_auroc: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    samples_seen: int = 0
    train_seconds: float = 0.0


@dataclass(frozen=True)
class TrainOutcome:
    best_state: dict[str, torch.Tensor]
    best_validation_auroc: float
    best_epoch: int
    epochs_run: int
    steps: int
    history: list[dict[str, float]]
    samples_per_second: float
    train_seconds: float
    resumed: bool


def predict_logits(
    model: nn.Module, data: TensorSet, context: DistributedContext, batch_size: int
) -> np.ndarray:
    """Raw logits for every row of ``data`` in order (eval mode, no grad)."""
    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            index = torch.arange(start, min(start + batch_size, len(data)))
            with torch.autocast(
                device_type=context.device.type, dtype=torch.float16, enabled=context.amp
            ):
                logits = model(**data.batch(index, context.device))
            out.append(logits.float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def fingerprint(hyper: HyperParameters, n_train: int, n_validation: int) -> str:
    """Identify a run's settings so that a checkpoint from another run is never resumed."""
    payload = json.dumps({"hp": hyper.__dict__, "n": [n_train, n_validation]}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _schedule(total_steps: int, warmup_ratio: float) -> Callable[[int], float]:
    warmup = max(1, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _epoch_indices(n: int, context: DistributedContext, seed: int, epoch: int) -> list[int]:
    """This rank's share of the epoch's seeded permutation.

    The same rule as ``DistributedSampler(shuffle=True, drop_last=True)``: one permutation
    seeded by ``seed + epoch``, cut to a multiple of the world size, rank ``r`` taking every
    ``world_size``-th index from ``r``.
    """
    generator = torch.Generator()
    generator.manual_seed(seed + epoch)
    permutation = torch.randperm(n, generator=generator).tolist()
    usable = n - n % context.world_size
    return permutation[context.rank : usable : context.world_size]


def _batches(indices: list[int], size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(indices) - size + 1, size):
        yield torch.tensor(indices[start : start + size], dtype=torch.long)


class Checkpointer:
    """Saves and restores the training state in one file, written atomically."""

    def __init__(self, directory: str, run_fingerprint: str, enabled: bool) -> None:
        self.path = Path(directory) / CHECKPOINT_FILE if directory else None
        self.fingerprint = run_fingerprint
        self.enabled = enabled and self.path is not None

    def save(self, payload: dict[str, Any]) -> None:
        if not self.enabled or self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({"fingerprint": self.fingerprint, **payload}, tmp)
        tmp.replace(self.path)

    def load(self) -> dict[str, Any] | None:
        if self.path is None or not self.path.is_file():
            return None
        payload = torch.load(self.path, map_location="cpu", weights_only=True)
        if payload.get("fingerprint") != self.fingerprint:
            log.warning("ignoring a checkpoint written by a run with other settings")
            return None
        return dict(payload)


def train_model(
    model: nn.Module,
    train: TensorSet,
    validation: TensorSet,
    hyper: HyperParameters,
    context: DistributedContext,
    checkpoint_dir: str,
    pos_weight: float,
    emit: Callable[[str], None] = print,
) -> TrainOutcome:
    """Train with early stopping on validation AUROC; return the best weights (on CPU).

    When ``train`` carries the auxiliary target and ``hyper.auxiliary_weight`` is positive,
    the objective is the main loss plus that weight times the auxiliary head's loss (the
    model must have been built with ``auxiliary_head``); selection stays on the main label.
    """
    if hyper.batch_size % context.world_size:
        raise ValueError("batch_size must be divisible by the number of processes")
    per_rank = hyper.batch_size // context.world_size
    model.to(context.device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=hyper.learning_rate, weight_decay=hyper.weight_decay
    )
    steps_per_epoch = max(1, (len(train) // context.world_size) // per_rank)
    total_steps = hyper.epochs * steps_per_epoch
    if hyper.max_steps:
        total_steps = min(total_steps, hyper.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(total_steps, hyper.warmup_ratio)
    )
    scaler = torch.amp.GradScaler("cuda", enabled=context.amp)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=context.device))
    auxiliary_targets = train.auxiliary if hyper.auxiliary_weight > 0 else None
    checkpointer = Checkpointer(
        checkpoint_dir, fingerprint(hyper, len(train), len(validation)), context.is_main
    )
    state = TrainState()
    restored = checkpointer.load() if context.is_main else None
    if context.distributed:
        shared: list[Any] = [restored]
        dist.broadcast_object_list(shared, src=0)
        restored = shared[0]
    if restored is not None:
        model.load_state_dict(restored["model"])
        optimizer.load_state_dict(restored["optimizer"])
        scheduler.load_state_dict(restored["scheduler"])
        scaler.load_state_dict(restored["scaler"])
        state = TrainState(**restored["state"])
        emit(f"resumed from checkpoint at epoch {state.epoch}")
    net: nn.Module = model
    if context.distributed:
        device_ids = [context.local_rank] if context.device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    y_validation = validation.labels.numpy()

    while state.epoch < hyper.epochs and state.bad_epochs < hyper.patience:
        if hyper.max_steps and state.step >= hyper.max_steps:
            break
        net.train()
        started = time.perf_counter()
        losses, auxiliary_losses = [], []
        for index in _batches(
            _epoch_indices(len(train), context, hyper.seed, state.epoch), per_rank
        ):
            batch = train.batch(index, context.device)
            target = train.labels[index].to(context.device)
            with torch.autocast(
                device_type=context.device.type, dtype=torch.float16, enabled=context.amp
            ):
                auxiliary_loss = None
                if auxiliary_targets is None:
                    logits = net(**batch)
                else:
                    outputs = net(**batch, with_auxiliary=True).float()
                    logits = outputs[:, 0]
                    auxiliary_loss = nn.functional.binary_cross_entropy_with_logits(
                        outputs[:, 1], auxiliary_targets[index].to(context.device)
                    )
            main_loss = loss_fn(logits.float(), target)
            loss = main_loss
            if auxiliary_loss is not None:
                loss = main_loss + hyper.auxiliary_weight * auxiliary_loss
                auxiliary_losses.append(float(auxiliary_loss.detach()))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), hyper.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            state.step += 1
            state.samples_seen += per_rank * context.world_size
            losses.append(float(main_loss.detach()))
            if context.is_main and hyper.log_every and state.step % hyper.log_every == 0:
                log.info("epoch %d step %d loss %.4f", state.epoch, state.step, losses[-1])
            if hyper.max_steps and state.step >= hyper.max_steps:
                break
        state.train_seconds += time.perf_counter() - started
        logits_validation = predict_logits(model, validation, context, hyper.eval_batch_size)
        validation_auroc = auroc(y_validation, logits_validation)
        validation_loss = float(
            loss_fn(
                torch.from_numpy(logits_validation).float().to(context.device),
                validation.labels.to(context.device),
            )
        )
        train_loss = float(np.mean(losses)) if losses else math.nan
        record = {
            "epoch": state.epoch,
            "train_loss": train_loss,
            "validation_loss": validation_loss,
            "validation_auroc": validation_auroc,
        }
        if auxiliary_losses:
            record["train_auxiliary_loss"] = float(np.mean(auxiliary_losses))
        state.history.append(record)
        if context.is_main:
            emit(f"epoch={state.epoch}")
            emit(format_metric("train", "loss", train_loss))
            if auxiliary_losses:
                emit(format_metric("train", "auxiliary_loss", record["train_auxiliary_loss"]))
            emit(format_metric("validation", "loss", validation_loss))
            emit(format_metric("validation", "auroc", validation_auroc))
        score = validation_auroc if not math.isnan(validation_auroc) else -validation_loss
        if score > state.best_auroc:
            state.best_auroc = score
            state.best_epoch = state.epoch
            state.bad_epochs = 0
            state.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            state.bad_epochs += 1
        state.epoch += 1
        checkpointer.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "state": copy.copy(state.__dict__),
            }
        )
    if state.best_state is None:
        state.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    seconds = max(state.train_seconds, 1e-9)
    return TrainOutcome(
        best_state=state.best_state,
        best_validation_auroc=state.best_auroc,
        best_epoch=state.best_epoch,
        epochs_run=state.epoch,
        steps=state.step,
        history=state.history,
        samples_per_second=state.samples_seen / seconds,
        train_seconds=state.train_seconds,
        resumed=restored is not None,
    )
