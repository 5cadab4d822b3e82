"""The Glue zip's import rules and the entrypoints' wiring, without Spark."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from glue_jobs import ehr_features, ehr_features_glue
from tests.glue_jobs.conftest import REPO_ROOT

#: Modules the Glue job may import (Glue 5.0 provides pyspark and boto3).
ALLOWED_ROOTS = {"pyspark", "boto3", "contracts", "glue_jobs", "__future__"}
#: Local tools that are shipped in the zip but never imported by the job.
#: (The synthetic generator, in every layout, is ``glue_jobs/synthetic_*.py``.)
LOCAL_TOOLS = {path.name for path in (REPO_ROOT / "glue_jobs").glob("synthetic_*.py")}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_job_modules_import_only_pyspark_stdlib_boto3_and_contracts() -> None:
    for path in sorted((REPO_ROOT / "glue_jobs").glob("*.py")):
        if path.name in LOCAL_TOOLS:
            continue
        outside = {
            root
            for root in _imported_roots(path)
            if root not in ALLOWED_ROOTS and root not in sys.stdlib_module_names
        }
        assert outside <= ({"awsglue"} if path.name == "ehr_features_glue.py" else set()), path.name


def test_job_modules_never_import_the_generator() -> None:
    for path in sorted((REPO_ROOT / "glue_jobs").glob("*.py")):
        if path.name in LOCAL_TOOLS:
            continue
        tree = ast.parse(path.read_text())
        modules = {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert not {m for m in modules if "synthetic" in m}, path.name


def test_glue_script_imports_awsglue_only_inside_main() -> None:
    tree = ast.parse((REPO_ROOT / "glue_jobs" / "ehr_features_glue.py").read_text())
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert all("awsglue" not in ast.dump(n) for n in top_level)
    assert ehr_features_glue.GLUE_ARGUMENTS == (
        "JOB_NAME",
        "source",
        "input_path",
        "output_path",
        "deid_secret_id",
    )


def test_local_entrypoint_options() -> None:
    args = ehr_features.parse_args(
        ["--source", "uci_diabetes", "--input", "in", "--output", "out", "--deid-key", "K"]
    )
    assert (args.source, args.input, args.output, args.deid_key) == (
        "uci_diabetes",
        "in",
        "out",
        "K",
    )
    with pytest.raises(SystemExit):
        ehr_features.parse_args(["--source", "hl7", "--input", "i", "--output", "o"])
