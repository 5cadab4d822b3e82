"""One training run end to end: read, encode, train, calibrate, evaluate, write the artifact.

``run`` is what ``python -m training.train`` calls in every process that torchrun starts; only
rank 0 calibrates, evaluates and writes the model directory.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from contracts.drift import BASELINE_FILE_NAME, build_baseline
from contracts.encounter import SCHEMA_VERSION
from contracts.model_artifact import (
    META_HYPERPARAMETERS,
    META_MANIFEST,
    META_POSITIVE_RATE_TRAIN,
    META_ROWS,
    META_TRAINING,
    META_TRAINING_DATA,
    metadata_document,
)
from inference.encoding import EncodedBatch, EncoderConfig, FeatureEncoder, labels
from inference.model import ModelConfig, ReadmissionModel, save_model
from training import artifact, data, evaluation, model_card
from training.calibration import (
    ThresholdTarget,
    calibrated,
    calibration_record,
    choose_threshold,
    fit_temperature,
)
from training.config import DataArguments, HyperParameters
from training.loop import (
    DistributedContext,
    TensorSet,
    TrainOutcome,
    init_distributed,
    predict_logits,
    shutdown_distributed,
    train_model,
)
from training.metrics import auroc, format_metric, summary
from training.trees import choose_network_weight, fit_trees

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
MODEL_NAME = "readmission-multimodal"


@dataclass(frozen=True)
class RunResult:
    """What rank 0 hands back: where things were written and the headline figures."""

    model_dir: Path
    metrics: dict[str, Any]
    outcome: TrainOutcome


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def model_config(
    encoder: FeatureEncoder, hyper: HyperParameters, auxiliary_head: bool = False
) -> ModelConfig:
    """The architecture: sizes decided by the fitted encoder plus the hyperparameters."""
    return ModelConfig(
        code_vocab_size=len(encoder.code_vocab),
        num_code_types=encoder.num_code_types,
        max_code_length=encoder.config.max_code_length,
        category_cardinalities=encoder.category_cardinalities,
        numeric_width=encoder.numeric_width,
        note_vocab_size=encoder.note_vocab_size,
        note_max_length=encoder.config.note_max_length,
        hidden_size=hyper.hidden_size,
        num_layers=hyper.num_layers,
        num_heads=hyper.num_heads,
        note_hidden_size=hyper.note_hidden_size,
        note_num_layers=hyper.note_num_layers,
        category_embedding_dim=hyper.category_embedding_dim,
        tabular_hidden_size=hyper.tabular_hidden_size,
        fusion_size=hyper.fusion_size,
        dropout=hyper.dropout,
        auxiliary_head=auxiliary_head,
        pretrained_code_encoder=hyper.pretrained_code_encoder or None,
    )


def code_min_frequency(hyper: HyperParameters, n_train: int) -> int:
    """Training count a code token needs to enter the vocabulary: the floor, or the share."""
    return max(hyper.code_min_frequency, math.ceil(hyper.code_min_fraction * n_train))


def _pos_weight(hyper: HyperParameters, y: np.ndarray) -> float:
    """Class-imbalance weight of positives: negatives/positives unless set explicitly."""
    if hyper.pos_weight > 0:
        return hyper.pos_weight
    positives = float(y.sum())
    if positives == 0:
        raise ValueError("the training split has no positive labels")
    return (len(y) - positives) / positives


def run(
    data_args: DataArguments, hyper: HyperParameters, emit: Callable[[str], None] = print
) -> RunResult | None:
    """Train and, on rank 0, write the model directory; other ranks return ``None``."""
    context = init_distributed()
    try:
        return _run(data_args, hyper, context, emit)
    finally:
        shutdown_distributed()


@dataclass(frozen=True)
class _Prepared:
    """The fitted encoder and the encoded train and validation splits."""

    encoder: FeatureEncoder
    train_records: list[dict[str, Any]]
    validation_records: list[dict[str, Any]]
    train_batch: EncodedBatch
    y_train: np.ndarray
    auxiliary: np.ndarray | None
    train_set: TensorSet
    validation_set: TensorSet


@dataclass(frozen=True)
class _Calibrated:
    """The blend, temperature and threshold chosen on validation."""

    offset: float
    blend: dict[str, Any] | None
    temperature: float
    threshold: Any
    y_validation: np.ndarray
    validation_probabilities: np.ndarray


@dataclass(frozen=True)
class _Scored:
    """The test split and the calibrated probabilities of test and train."""

    test_records: list[dict[str, Any]]
    test_batch: EncodedBatch
    y_test: np.ndarray
    test_set: TensorSet
    test_probabilities: np.ndarray
    train_probabilities: np.ndarray


def _run(
    data_args: DataArguments,
    hyper: HyperParameters,
    context: DistributedContext,
    emit: Callable[[str], None],
) -> RunResult | None:
    """Prepare, train (every rank); then, on rank 0: calibrate, score, evaluate, write."""
    started = time.perf_counter()
    _configure(hyper, context)
    prepared = _prepare(data_args, hyper)
    pos_weight = _pos_weight(hyper, prepared.y_train)
    config = model_config(prepared.encoder, hyper, auxiliary_head=prepared.auxiliary is not None)
    torch.manual_seed(hyper.seed)
    model = ReadmissionModel(config, download_pretrained=bool(hyper.pretrained_code_encoder))
    outcome = train_model(
        model,
        prepared.train_set,
        prepared.validation_set,
        hyper,
        context,
        data_args.checkpoint_dir,
        pos_weight,
        emit,
    )
    if not context.is_main:
        return None

    model.load_state_dict(outcome.best_state)
    model.to(context.device).eval()
    calibrated_ = _calibrate(model, prepared, hyper, context, pos_weight)
    scored = _score(model, prepared, calibrated_, data_args, hyper, context)
    baseline_probabilities = _baseline(prepared, scored, hyper)
    report = _evaluate(data_args, hyper, calibrated_, scored, baseline_probabilities)
    metadata = _metadata(data_args, hyper, config, context, prepared, calibrated_, scored, outcome)
    model_dir = _write_model_directory(
        data_args,
        model,
        prepared,
        scored,
        baseline_probabilities,
        {
            artifact.CALIBRATION_FILE: _calibration_document(calibrated_, hyper),
            artifact.FEATURE_SPEC_FILE: artifact.feature_spec(prepared.encoder.notes_enabled),
            artifact.METADATA_FILE: metadata,
            artifact.EVALUATION_FILE: report,
        },
    )
    metrics = {
        "validation": report["validation"],
        "test": report["test"],
        "baseline": report.get("baseline"),
        "threshold": calibrated_.threshold.value,
        "temperature": calibrated_.temperature,
        "tree_blend": calibrated_.blend,
        "training": metadata[META_TRAINING],
        "rows": metadata[META_TRAINING_DATA][META_ROWS],
        "wall_seconds": time.perf_counter() - started,
    }
    _write_metrics(data_args, metrics)
    _emit_final(emit, report)
    return RunResult(model_dir, metrics, outcome)


def _configure(hyper: HyperParameters, context: DistributedContext) -> None:
    """CPU threads and seeds."""
    if hyper.cpu_threads and context.device.type == "cpu":
        # Fewer threads than cores avoids OpenMP spin-waiting when the cores are shared.
        torch.set_num_threads(hyper.cpu_threads)
    seed_everything(hyper.seed)


def _prepare(data_args: DataArguments, hyper: HyperParameters) -> _Prepared:
    """Read train and validation, fit the encoder on train, encode both."""
    train_records = data.read_records(data_args.train_dir)
    validation_records = data.read_records(data_args.validation_dir)
    encoder = FeatureEncoder.fit(
        train_records,
        EncoderConfig(
            code_min_frequency=code_min_frequency(hyper, len(train_records)),
            category_min_frequency=hyper.category_min_frequency,
            max_code_length=hyper.max_code_length,
            note_max_length=hyper.note_max_length,
            note_vocab_size=hyper.note_vocab_size,
        ),
    )
    train_batch = encoder.encode(train_records)
    y_train = labels(train_records)
    auxiliary = data.auxiliary_labels(train_records) if hyper.auxiliary_weight > 0 else None
    if hyper.auxiliary_weight > 0 and auxiliary is None:
        log.info("the training split has no %s: main label only", data.AUXILIARY_LABEL)
    return _Prepared(
        encoder=encoder,
        train_records=train_records,
        validation_records=validation_records,
        train_batch=train_batch,
        y_train=y_train,
        auxiliary=auxiliary,
        train_set=TensorSet(train_batch, y_train, auxiliary),
        validation_set=TensorSet(encoder.encode(validation_records), labels(validation_records)),
    )


def _calibrate(
    model: ReadmissionModel,
    prepared: _Prepared,
    hyper: HyperParameters,
    context: DistributedContext,
    pos_weight: float,
) -> _Calibrated:
    """Attach the trees (if blended), fit the temperature, choose the threshold: on validation."""
    offset = math.log(pos_weight)  # undoes the prior shift that pos_weight put into the logits
    validation_set = prepared.validation_set
    y_validation = validation_set.labels.numpy().astype(np.float64)
    blend = None
    if hyper.tree_blend:
        blend = _attach_trees(
            model,
            prepared.encoder,
            prepared.train_batch,
            prepared.y_train,
            validation_set,
            hyper,
            context,
            offset,
        )
    validation_logits = (
        predict_logits(model, validation_set, context, hyper.eval_batch_size) - offset
    )
    temperature = fit_temperature(validation_logits, y_validation)
    validation_probabilities = calibrated(validation_logits, temperature)
    target = cast(ThresholdTarget, hyper.threshold_target)  # validated in HyperParameters
    threshold = choose_threshold(
        validation_probabilities, y_validation, target, hyper.threshold_target_value
    )
    return _Calibrated(
        offset, blend, temperature, threshold, y_validation, validation_probabilities
    )


def _score(
    model: ReadmissionModel,
    prepared: _Prepared,
    calibration: _Calibrated,
    data_args: DataArguments,
    hyper: HyperParameters,
    context: DistributedContext,
) -> _Scored:
    """Calibrated probabilities of the test split and of train (the drift baseline's)."""
    offset, temperature = calibration.offset, calibration.temperature
    test_records = data.read_records(data_args.test_dir)
    test_batch = prepared.encoder.encode(test_records)
    y_test = labels(test_records).astype(np.float64)
    test_set = TensorSet(test_batch, y_test)
    test_logits = predict_logits(model, test_set, context, hyper.eval_batch_size) - offset
    test_probabilities = calibrated(test_logits, temperature)
    train_logits = (
        predict_logits(model, prepared.train_set, context, hyper.eval_batch_size) - offset
    )
    return _Scored(
        test_records=test_records,
        test_batch=test_batch,
        y_test=y_test,
        test_set=test_set,
        test_probabilities=test_probabilities,
        train_probabilities=calibrated(train_logits, temperature),
    )


def _baseline(prepared: _Prepared, scored: _Scored, hyper: HyperParameters) -> np.ndarray | None:
    """The plain baseline's test probabilities, when one is asked for."""
    if not hyper.baseline:
        return None
    baseline = evaluation.fit_baseline(
        prepared.encoder, prepared.train_batch, prepared.y_train, hyper.seed
    )
    return evaluation.baseline_scores(baseline, prepared.encoder, scored.test_batch)


def _evaluate(
    data_args: DataArguments,
    hyper: HyperParameters,
    calibration: _Calibrated,
    scored: _Scored,
    baseline_probabilities: np.ndarray | None,
) -> dict[str, Any]:
    """The evaluation report: test, validation, subgroups, baseline, alert budget."""
    threshold = calibration.threshold.value
    race = data.read_protected(data_args.protected_dir)
    return evaluation.build_evaluation(
        labels=scored.y_test,
        probabilities=scored.test_probabilities,
        threshold=threshold,
        validation=summary(
            calibration.y_validation, calibration.validation_probabilities, threshold
        ),
        subgroups=evaluation.subgroup_columns(scored.test_records, race),
        baseline_probabilities=baseline_probabilities,
        seed=hyper.seed,
        alert_budget=hyper.alert_budget,
        bootstrap_resamples=hyper.bootstrap_resamples,
    )


def _architecture(config: ModelConfig, blend: dict[str, Any] | None, auxiliary: bool) -> str:
    """The model's architecture in a sentence, for the metadata and the model card."""
    return (
        f"BERT code-sequence encoder ({config.num_layers} layers, "
        f"hidden {config.hidden_size}), "
        f"tabular tower, {'notes encoder, ' if config.notes_enabled else ''}"
        "gated-concatenation fusion, binary head"
        + (
            ""
            if blend is None or not blend["trees"]
            else f"; blended with {blend['trees']} gradient-boosted trees "
            f"(network weight {blend['network_weight']:.1f})"
        )
        + "; temperature-scaled."
        + ("" if not auxiliary else f" Trained with an auxiliary {data.AUXILIARY_LABEL} head.")
    )


def _metadata(
    data_args: DataArguments,
    hyper: HyperParameters,
    config: ModelConfig,
    context: DistributedContext,
    prepared: _Prepared,
    calibration: _Calibrated,
    scored: _Scored,
    outcome: TrainOutcome,
) -> dict[str, Any]:
    """``metadata.json``: the version, architecture, settings, training run and data."""
    created = datetime.now(UTC)
    manifest = data.read_manifest(data_args.manifest_path)
    auxiliary, threshold = prepared.auxiliary, calibration.threshold
    return metadata_document(
        model_name=MODEL_NAME,
        model_version=f"{MODEL_NAME}-{created:%Y%m%d%H%M%S}",
        created_at=created.isoformat(),
        schema_version=SCHEMA_VERSION,
        architecture=_architecture(config, calibration.blend, auxiliary is not None),
        threshold_target=f"{threshold.target}={threshold.target_value}",
        alert_budget=hyper.alert_budget,
        auxiliary_target=(
            None
            if auxiliary is None
            else {
                "field": data.AUXILIARY_LABEL,
                "weight": hyper.auxiliary_weight,
                "positive_rate_train": float(auxiliary.mean()),
            }
        ),
        tree_blend=calibration.blend,
        hyperparameters=hyper.__dict__,
        training={
            "epochs_run": outcome.epochs_run,
            "best_epoch": outcome.best_epoch,
            "steps": outcome.steps,
            "samples_per_second": outcome.samples_per_second,
            "train_seconds": outcome.train_seconds,
            "world_size": context.world_size,
            "device": context.device.type,
            "resumed_from_checkpoint": outcome.resumed,
            "history": outcome.history,
        },
        training_data={
            META_ROWS: {
                "train": len(prepared.train_set),
                "validation": len(prepared.validation_set),
                "test": len(scored.test_set),
            },
            META_POSITIVE_RATE_TRAIN: float(prepared.y_train.mean()),
            META_MANIFEST: data.manifest_summary(manifest),
        },
    )


def _calibration_document(calibration: _Calibrated, hyper: HyperParameters) -> dict[str, Any]:
    """``calibration.json``: how serving turns a logit into a probability, and the threshold."""
    return calibration_record(
        calibration.temperature, calibration.offset, calibration.threshold, hyper.alert_budget
    ).to_dict()


def _write_model_directory(
    data_args: DataArguments,
    model: ReadmissionModel,
    prepared: _Prepared,
    scored: _Scored,
    baseline_probabilities: np.ndarray | None,
    documents: dict[str, Any],
) -> Path:
    """Weights, encoder, the JSON documents with the drift baseline, the model card and the
    serving code into the model directory."""
    model_dir = Path(data_args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    model.to("cpu")
    save_model(model, model_dir)
    prepared.encoder.save(model_dir)
    baseline = build_baseline(prepared.train_records, scored.train_probabilities.tolist())
    artifact.write_documents(model_dir, {**documents, BASELINE_FILE_NAME: baseline})
    report, metadata = documents[artifact.EVALUATION_FILE], documents[artifact.METADATA_FILE]
    # Global factor importance needs the written model: explain, then rewrite the report.
    report[evaluation.EXPLAINABILITY_SECTION] = evaluation.explain_validation(
        model_dir, prepared.validation_records, metadata[META_HYPERPARAMETERS]["seed"]
    )
    artifact.write_documents(model_dir, {artifact.EVALUATION_FILE: report})
    images = model_card.plots(
        scored.y_test,
        scored.test_probabilities,
        baseline_probabilities,
        budget_cutoff=report["alert_budget"]["score_cutoff"],
    )
    (model_dir / artifact.MODEL_CARD_FILE).write_text(model_card.render(report, metadata, images))
    artifact.copy_code(model_dir)
    return model_dir


def _write_metrics(data_args: DataArguments, metrics: dict[str, Any]) -> None:
    """``metrics.json`` in the output directory (SageMaker uploads it with the job)."""
    output_dir = Path(data_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / METRICS_FILE).write_text(
        json.dumps(evaluation.json_safe(metrics), indent=1, allow_nan=False)
    )


def _attach_trees(
    model: ReadmissionModel,
    encoder: FeatureEncoder,
    train_batch: EncodedBatch,
    y_train: np.ndarray,
    validation: TensorSet,
    hyper: HyperParameters,
    context: DistributedContext,
    offset: float,
) -> dict[str, Any]:
    """Fit the trees on train, choose the blend on validation, attach; report each part."""
    started = time.perf_counter()
    trees = fit_trees(train_batch, y_train, encoder.category_cardinalities, hyper)
    if trees.splits == 0:  # too little data to split on: a constant adds nothing
        log.info("the trees found no split: the network alone")
        return {"network_weight": 1.0, "trees": 0, "fit_seconds": time.perf_counter() - started}
    y_validation = validation.labels.numpy()
    network = predict_logits(model, validation, context, hyper.eval_batch_size)
    with torch.inference_mode():
        tensors = validation.tensors
        tree_logits = (
            trees(tensors["numeric"], tensors["categorical"], tensors["code_ids"],
                  tensors["code_mask"]).numpy()
        )  # fmt: skip
    weight = choose_network_weight(y_validation, network, tree_logits, offset)
    if weight < 1.0:  # trees that get no weight would only cost serving time
        model.attach_trees(trees, weight, offset)
    return {
        "network_weight": weight,
        "trees": trees.n_trees if weight < 1.0 else 0,
        "fit_seconds": time.perf_counter() - started,
        "validation_auroc": {
            "network": auroc(y_validation, network),
            "trees": auroc(y_validation, tree_logits),
        },
    }


def _emit_final(emit: Callable[[str], None], report: dict[str, Any]) -> None:
    """Print the final metrics of the selected (best, calibrated) model."""
    for name in ("auroc", "auprc"):
        if report["validation"].get(name) is not None:
            emit(format_metric("validation", name, report["validation"][name]))
    test = report["test"]
    for name in ("auroc", "auprc", "brier", "ece", "f1", "recall", "precision", "alert_rate"):
        if test.get(name) is not None:
            emit(format_metric("test", name, test[name]))
    at_budget = report["alert_budget"]["overall"]
    for name, key in (("alert_budget_ppv", "ppv"), ("alert_budget_sensitivity", "sensitivity")):
        if at_budget.get(key) is not None:
            emit(format_metric("test", name, at_budget[key]))
    baseline = report.get("baseline")
    if baseline and baseline.get("auroc") is not None:
        emit(format_metric("baseline", "auroc", baseline["auroc"]))
