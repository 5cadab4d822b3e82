"""The tree term before (scikit-learn, exported and walked by hand) and after (LightGBM).

For each seed, the real training job (``python -m training.train``, default hyperparameters)
runs on the UCI ETL split in two checkouts side by side (the same load for both): ``--before``,
a checkout of the commit before LightGBM, and this one. The network is the same in both (the
trees are fitted after it, on the same seed), so the difference is the tree term's. Recorded
per run: validation and test AUROC of the served blend, the trees' fit time, the run's wall
time and the load average; then the explanation latency of one UCI test record and of a batch
of 100 through the serving hooks (``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``) of
each checkout, on the model each trained on the full UCI data (``--latency-seed``). Writes
``benchmarks/results/tree_library.json``.

    python benchmarks/tree_library.py --before /tmp/old-checkout [--seeds 1 2 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path, and its inference.py would shadow the
# package: the checkout under test comes from PYTHONPATH instead.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
RESULT = ROOT / "benchmarks" / "results" / "tree_library.json"
INFERENCE_RESULT = ROOT / "benchmarks" / "results" / "inference.json"
#: The key of these figures in inference.json.
INFERENCE_KEY = "full_uci_model_explanation_before_after_lightgbm"
DEFAULT_DATA = ROOT / "runs" / "benchmarks" / "uci-etl"
WORK = ROOT / "runs" / "benchmarks" / "tree-library"
SINGLE_REQUESTS = 200
BATCH_REQUESTS = 20
BATCH_SIZE = 100
LATENCY_ROUNDS = 2


def load() -> float:
    return round(os.getloadavg()[0], 2)


def train(code_root: Path, data: Path, out: Path, seed: int) -> dict[str, Any]:
    """One training run of the checkout at ``code_root``; its metrics and timings."""
    command = [
        sys.executable, "-m", "training.train", "--data-dir", str(data / "features"),
        "--model-dir", str(out / "model"), "--output-dir", str(out / "output"),
        "--checkpoint-dir", "", "--seed", str(seed), "--log-every", "0",
    ]  # fmt: skip
    at_start = load()
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    subprocess.run(command, check=True, cwd=code_root, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    metrics = json.loads((out / "output" / "metrics.json").read_text())
    blend = metrics["tree_blend"] or {}
    return {
        "validation_auroc": metrics["validation"]["auroc"],
        "test_auroc": metrics["test"]["auroc"],
        "network_validation_auroc": blend.get("validation_auroc", {}).get("network"),
        "trees_validation_auroc": blend.get("validation_auroc", {}).get("trees"),
        "network_weight": blend.get("network_weight"),
        "trees": blend.get("trees"),
        "tree_fit_seconds": blend.get("fit_seconds"),
        "train_seconds": metrics["training"]["train_seconds"],
        "wall_seconds": round(wall, 1),
        "load_average": {"start": at_start, "end": load()},
    }


def _summary(latencies: list[float]) -> dict[str, float]:
    ms = np.asarray(latencies) * 1000.0
    return {
        "requests": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "mean_ms": round(float(ms.mean()), 2),
    }


def latency(model_dir: Path, data: Path) -> dict[str, Any]:
    """Explanation latency through the hooks of the checkout on ``sys.path`` (one torch
    thread, as a serving worker runs): one UCI test record, and a batch of 100."""
    import torch

    from inference.handler import input_fn, model_fn, output_fn, predict_fn
    from training.data import read_records

    torch.set_num_threads(1)
    records = read_records(data / "features" / "split=test")
    serving = model_fn(str(model_dir))

    def call(body: bytes) -> None:
        output_fn(predict_fn(input_fn(body, "application/json"), serving), "application/json")

    def timed(bodies: list[bytes]) -> list[float]:
        out = []
        for body in bodies:
            started = time.perf_counter()
            call(body)
            out.append(time.perf_counter() - started)
        return out

    single = [json.dumps(r, default=str).encode() for r in records[:SINGLE_REQUESTS]]
    batches = [
        json.dumps(records[i * BATCH_SIZE : (i + 1) * BATCH_SIZE], default=str).encode()
        for i in range(BATCH_REQUESTS)
    ]
    timed(single[:20] + batches[:2])  # warm-up
    at_start = load()
    result = {"single_record": _summary(timed(single)), "batch_100": _summary(timed(batches))}
    result["load_average"] = {"start": at_start, "end": load()}
    return result


def trees_alone(data: Path, seeds: list[int]) -> dict[str, Any]:
    """Both libraries' trees alone on the same encoded split, per seed: fit seconds and AUROC.

    The encoder is fitted on train as training fits it; scikit-learn is fitted with the
    settings ``training/trees.py`` used before LightGBM (``HistGradientBoostingClassifier``,
    the same design, native categorical splits), LightGBM by today's ``fit_trees``.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    from inference.encoding import EncoderConfig, FeatureEncoder, labels
    from training.config import HyperParameters
    from training.data import read_records
    from training.metrics import auroc
    from training.pipeline import code_min_frequency
    from training.trees import batch_design, categorical_columns, fit_trees

    split = {s: read_records(data / "features" / f"split={s}") for s in ("train", "validation")}
    hyper = HyperParameters()
    encoder = FeatureEncoder.fit(
        split["train"],
        EncoderConfig(
            code_min_frequency=code_min_frequency(hyper, len(split["train"])),
            category_min_frequency=hyper.category_min_frequency,
            max_code_length=hyper.max_code_length,
            note_max_length=hyper.note_max_length,
            note_vocab_size=hyper.note_vocab_size,
        ),
    )
    batch = {s: encoder.encode(records) for s, records in split.items()}
    y = {s: labels(records) for s, records in split.items()}
    cardinalities = encoder.category_cardinalities
    out: dict[str, Any] = {}
    for seed in seeds:
        hyper = HyperParameters(seed=seed)
        started = time.perf_counter()
        trees = fit_trees(batch["train"], y["train"], cardinalities, hyper)
        after = {"fit_seconds": round(time.perf_counter() - started, 2), "trees": trees.n_trees}
        bag = np.asarray(trees.spec.bag, dtype=np.int64)
        design = {s: batch_design(batch[s], bag) for s in split}
        after["validation_auroc"] = auroc(y["validation"], trees.score(design["validation"]))
        mask = np.zeros(design["train"].shape[1], dtype=bool)
        mask[categorical_columns(batch["train"].numeric.shape[1], cardinalities)] = True
        model = HistGradientBoostingClassifier(
            categorical_features=mask, learning_rate=hyper.tree_learning_rate,
            max_leaf_nodes=hyper.tree_max_leaf_nodes, min_samples_leaf=hyper.tree_min_samples_leaf,
            l2_regularization=1.0, max_iter=hyper.tree_max_iterations, early_stopping=True,
            n_iter_no_change=40, random_state=seed,
        )  # fmt: skip
        started = time.perf_counter()
        model.fit(design["train"], y["train"])
        before = {
            "fit_seconds": round(time.perf_counter() - started, 2),
            "trees": int(model.n_iter_),
            "validation_auroc": auroc(
                y["validation"], model.decision_function(design["validation"])
            ),
        }
        out[f"seed-{seed}"] = {
            "before_scikit_learn": before,
            "after_lightgbm": after,
            "load": load(),
        }
        print(seed, json.dumps(out[f"seed-{seed}"]), flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--latency-seed", type=int, default=1)
    parser.add_argument("--latency-only", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--trees-alone", action="store_true", help="only the trees, both libraries")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    if args.latency_only:  # child process: the checkout is on sys.path
        print(json.dumps(latency(args.latency_only, args.data)))
        return
    if args.trees_alone:
        sys.path.insert(0, str(ROOT))
        alone = json.loads(args.output.read_text()) if args.output.is_file() else {}
        alone["trees_alone"] = trees_alone(args.data, args.seeds)
        args.output.write_text(json.dumps(alone, indent=1, sort_keys=True))
        return
    roots = {"before_scikit_learn": args.before.resolve(), "after_lightgbm": ROOT}
    results: dict[str, Any] = json.loads(args.output.read_text()) if args.output.is_file() else {}
    results.update({"benchmark": "tree_library", "cpu_count": os.cpu_count()})
    runs = results.setdefault("runs", {})
    for seed in args.seeds:  # both checkouts side by side: the same load for both
        todo = {
            f"{label}/seed-{seed}": (root, WORK / label / f"seed-{seed}")
            for label, root in roots.items()
            if f"{label}/seed-{seed}" not in runs
        }
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = {
                key: pool.submit(train, root, args.data, out, seed)
                for key, (root, out) in todo.items()
            }
            for key, future in pending.items():
                runs[key] = future.result()
                print(key, json.dumps(runs[key]), flush=True)
        args.output.write_text(json.dumps(results, indent=1, sort_keys=True))
    for label in roots:
        done = [runs[f"{label}/seed-{s}"] for s in args.seeds if f"{label}/seed-{s}" in runs]
        results.setdefault("mean", {})[label] = {
            name: round(float(np.mean([r[name] for r in done])), 4)
            for name in ("validation_auroc", "test_auroc", "tree_fit_seconds", "wall_seconds")
        }
    latencies: dict[str, Any] = {label: {"rounds": []} for label in roots}
    for _ in range(LATENCY_ROUNDS):  # interleaved: a load swing hits both checkouts alike
        for label, root in roots.items():
            model_dir = WORK / label / f"seed-{args.latency_seed}" / "model"
            command = [
                sys.executable, str(Path(__file__).resolve()), "--before", str(args.before),
                "--data", str(args.data), "--latency-only", str(model_dir),
            ]  # fmt: skip
            env = {**os.environ, "PYTHONPATH": str(root)}
            child = subprocess.run(command, check=True, cwd=root, env=env, capture_output=True)
            measured = json.loads(child.stdout.decode().strip().splitlines()[-1])
            latencies[label]["rounds"].append(measured)
            print(label, json.dumps(measured), flush=True)
    for label in roots:
        latencies[label]["model"] = f"trained on the full UCI split, seed {args.latency_seed}"
    results["explanation_latency"] = latencies
    results["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.output.write_text(json.dumps(results, indent=1, sort_keys=True))
    # Beside today's figures of the 12-step synthetic models in inference.json.
    inference = json.loads(INFERENCE_RESULT.read_text()) if INFERENCE_RESULT.is_file() else {}
    inference[INFERENCE_KEY] = {
        "source": "benchmarks/tree_library.py",
        "measured_at": results["measured_at"],
        **latencies,
    }
    INFERENCE_RESULT.write_text(json.dumps(inference, indent=2) + "\n")


if __name__ == "__main__":
    main()
