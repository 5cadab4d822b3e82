"""Artifact staging: each unit ships with the shared contracts and nothing else."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from stacks import packaging


def _fake_repo(root: Path) -> Path:
    for package, files in {
        "contracts": ["__init__.py", "encounter.py"],
        "lambdas": ["__init__.py", "environment.py"],
        "lambdas/predict": ["__init__.py", "app.py"],
        "lambdas/cds_hooks": ["__init__.py", "hook.py"],
        "lambdas/cds_authorizer": ["__init__.py", "app.py"],
        "fhir_mapping": ["__init__.py", "record.py"],
        "lambdas/deployer": ["__init__.py", "app.py"],
        "glue_jobs": ["__init__.py", "ehr_features.py"],
        "training": ["__init__.py", "train.py", "requirements.txt"],
        "inference": ["__init__.py", "model.py"],
        "tests": ["__init__.py", "test_x.py"],
    }.items():
        for name in files:
            path = root / package / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"# {package}/{name}\n")
    (root / "lambdas/predict/__pycache__").mkdir()
    (root / "lambdas/predict/__pycache__/app.cpython-311.pyc").write_bytes(b"\0")
    return root


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_lambda_asset_holds_its_own_package_and_the_contracts_only(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path / "repo")
    staged = packaging.stage_lambda("deployer", build_root=tmp_path / "build", root=repo)
    assert _tree(staged) == {
        "lambdas/__init__.py",
        "lambdas/environment.py",
        "lambdas/deployer/__init__.py",
        "lambdas/deployer/app.py",
        "contracts/__init__.py",
        "contracts/encounter.py",
    }


def test_the_prediction_asset_also_carries_fhir_mapping_and_the_cds_service(
    tmp_path: Path,
) -> None:
    repo = _fake_repo(tmp_path / "repo")
    staged = packaging.stage_lambda("predict", build_root=tmp_path / "build", root=repo)
    assert _tree(staged) == {
        "lambdas/__init__.py",
        "lambdas/environment.py",
        "lambdas/predict/__init__.py",
        "lambdas/predict/app.py",
        "lambdas/cds_hooks/__init__.py",
        "lambdas/cds_hooks/hook.py",
        "fhir_mapping/__init__.py",
        "fhir_mapping/record.py",
        "contracts/__init__.py",
        "contracts/encounter.py",
    }


def test_the_authorizer_asset_vendors_pyjwt_from_the_pinned_install(tmp_path: Path) -> None:
    import jwt

    repo = _fake_repo(tmp_path / "repo")
    staged = packaging.stage_lambda("cds_authorizer", build_root=tmp_path / "build", root=repo)
    assert (staged / "jwt" / "__init__.py").read_bytes() == Path(jwt.__file__).read_bytes()
    assert not any("__pycache__" in p.parts for p in staged.rglob("*"))
    assert "pyjwt==" + jwt.__version__ in Path("requirements.txt").read_text().lower()


def test_restaging_replaces_stale_files(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path / "repo")
    staged = packaging.stage_lambda("predict", build_root=tmp_path / "build", root=repo)
    (staged / "stale.py").write_text("old")
    staged = packaging.stage_lambda("predict", build_root=tmp_path / "build", root=repo)
    assert not (staged / "stale.py").exists()


def test_training_source_carries_training_inference_contracts(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path / "repo")
    staged = packaging.stage_training_source(build_root=tmp_path / "build", root=repo)
    top_level = {p.name for p in staged.iterdir()}
    assert top_level == {"training", "inference", "contracts"}
    # Nothing for the training toolkit to pip-install: the derived image already holds it.
    assert not (staged / "requirements.txt").exists()


def test_glue_library_zip_is_deterministic_and_complete(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path / "repo")
    first = packaging.build_glue_library(build_root=tmp_path / "a", root=repo)
    second = packaging.build_glue_library(build_root=tmp_path / "b", root=repo)
    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )
    with zipfile.ZipFile(first) as archive:
        assert sorted(archive.namelist()) == [
            "contracts/__init__.py",
            "contracts/encounter.py",
            "glue_jobs/__init__.py",
            "glue_jobs/ehr_features.py",
        ]


def test_staging_a_folder_that_is_not_a_package_fails(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path / "repo")
    with pytest.raises(FileNotFoundError, match="not a Python package"):
        packaging.stage_lambda("missing", build_root=tmp_path / "build", root=repo)


def test_real_contracts_package_has_no_third_party_imports() -> None:
    """contracts/ must import in the bare Lambda runtime, Glue and SageMaker alike."""
    import ast
    import sys

    allowed = set(sys.stdlib_module_names) | {"contracts", "__future__"}
    for path in (packaging.REPO_ROOT / "contracts").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
