"""What each artifact carries: the runtime modules and what they import, nothing local-only.

The Glue job's library zip, the training job's ``sourcedir.tar.gz``, the model's ``code/``
(what ``model.tar.gz`` carries for the serving container, whose entrypoint runs
``python -m inference.serve``) and every Lambda function's asset are built as the stacks and
the training job build them, then opened: the synthetic data generators and the in-process
endpoint server (``stacks.packaging.LOCAL_ONLY_MODULES``) are absent, the modules the runtime
starts are present, and every shipped module imports only shipped project modules or
installed packages (the import closure holds, functions' lazy imports included).
"""

from __future__ import annotations

import ast
import importlib.util
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from stacks.packaging import (
    LOCAL_ONLY_MODULES,
    REPO_ROOT,
    build_glue_library,
    local_only,
    stage_lambda,
)
from stacks.training_source import build_training_source_archive
from training import artifact

#: The repository's own top-level packages: an import of one must be satisfied by the artifact.
PROJECT_PACKAGES = frozenset(
    path.name for path in REPO_ROOT.iterdir() if (path / "__init__.py").is_file()
)
#: Installed by the runtime itself, not in the development environment.
RUNTIME_PROVIDED: dict[str, set[str]] = {"glue": {"awsglue"}, "training": set(), "code": set()}


def _glue(tmp_path: Path) -> dict[str, str]:
    with zipfile.ZipFile(build_glue_library(tmp_path)) as archive:
        return {n: archive.read(n).decode() for n in archive.namelist() if n.endswith(".py")}


def _training(tmp_path: Path) -> dict[str, str]:
    with tarfile.open(build_training_source_archive(tmp_path), "r:gz") as archive:
        return {
            member.name: archive.extractfile(member).read().decode()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile() and member.name.endswith(".py")
        }


def _code(tmp_path: Path) -> dict[str, str]:
    artifact.copy_code(tmp_path)
    code = tmp_path / artifact.CODE_DIR
    return {
        path.relative_to(code).as_posix(): path.read_text()
        for path in code.rglob("*.py")
        if path.is_file()
    }


def _lambda(name: str) -> Any:
    def build(tmp_path: Path) -> dict[str, str]:
        asset = stage_lambda(name, tmp_path)
        return {
            path.relative_to(asset).as_posix(): path.read_text()
            for path in asset.rglob("*.py")
            if path.is_file() and "__pycache__" not in path.parts
        }

    return build


#: Every Lambda function's asset (``lambdas/<name>/app.py``).
FUNCTIONS = sorted(p.parent.name for p in (REPO_ROOT / "lambdas").glob("*/app.py"))
BUILDERS = {
    "glue": _glue,
    "training": _training,
    "code": _code,
    **{f"lambda:{name}": _lambda(name) for name in FUNCTIONS},
}

#: Modules each runtime starts (or the Glue job's script imports), which must be shipped.
RUNTIME_MODULES = {
    "glue": ["glue_jobs/ehr_features.py", "glue_jobs/readers.py", "glue_jobs/publish.py"],
    "training": ["training/train.py", "training/pipeline.py", "inference/model.py"],
    "code": [
        artifact.INFERENCE_ENTRY,
        "inference/serve.py",
        "inference/handler.py",
        "inference/endpoint_app.py",
    ],
    **{f"lambda:{name}": [f"lambdas/{name}/app.py"] for name in FUNCTIONS},
}


def _modules(files: dict[str, str]) -> set[str]:
    """Dotted names of the shipped modules and packages."""
    names = set()
    for name in files:
        if not name.endswith(".py"):
            continue
        parts = PurePosixPath(name).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _optional(tree: ast.AST) -> set[int]:
    """Ids of the import statements inside a ``try`` that catches ImportError (a fallback)."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(handler.type, ast.Name)
            and handler.type.id in ("ImportError", "ModuleNotFoundError")
            for handler in node.handlers
        ):
            guarded.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return guarded


def _imports(source: str) -> set[str]:
    """Every absolute module an import statement names (``from a import b``: ``a.b`` or ``a``),
    but for imports with a fallback (``try: ... except ImportError``)."""
    found: set[str] = set()
    tree = ast.parse(source)
    optional = _optional(tree)
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def unresolved_imports(files: dict[str, str], provided: set[str]) -> list[str]:
    """``file: module`` for each import that neither the artifact nor an installed package meets."""
    shipped = _modules(files)
    missing = []
    for name, source in sorted(files.items()):
        for module in sorted(_imports(source)):
            top = module.split(".")[0]
            if top in PROJECT_PACKAGES:
                # ``from a import b``: b is a submodule of a, or a name defined in a.
                parent = module.rsplit(".", 1)[0]
                if module not in shipped and parent not in shipped:
                    missing.append(f"{name}: {module}")
            elif top not in provided and importlib.util.find_spec(top) is None:
                missing.append(f"{name}: {module}")
    return missing


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, str]]:
    kind = request.param
    return kind, BUILDERS[kind](tmp_path_factory.mktemp(kind))


def test_no_local_only_module_is_shipped(built: tuple[str, dict[str, str]]) -> None:
    _, files = built  # code/ holds the packages at its top too: inference/..., contracts/...
    assert sorted(name for name in files if local_only(name)) == []


def test_the_runtime_modules_are_shipped(built: tuple[str, dict[str, str]]) -> None:
    kind, files = built
    assert [name for name in RUNTIME_MODULES[kind] if name not in files] == []


def test_every_shipped_module_imports_only_what_ships(built: tuple[str, dict[str, str]]) -> None:
    kind, files = built
    missing = unresolved_imports(files, RUNTIME_PROVIDED.get(kind, set()))
    assert missing == []


def test_the_local_only_modules_exist() -> None:
    """Each pattern still names files, so a rename cannot silently ship them again."""
    for pattern in LOCAL_ONLY_MODULES:
        assert list(REPO_ROOT.glob(pattern)), pattern


def test_the_closure_check_finds_a_missing_module() -> None:
    files = {"inference/serve.py": "from inference.local_endpoint import serve\n"}
    assert unresolved_imports(files, set()) == [
        "inference/serve.py: inference.local_endpoint.serve"
    ]
