"""Package boundaries: the code that runs in a job, an endpoint or a function never imports
the CDK app (``stacks``), so that it needs neither the CDK nor the stacks' own dependencies and
a change to infrastructure code cannot reach it.

Walks every module's syntax tree (imports inside functions included) rather than importing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Packages whose code runs outside the CDK app (jobs, endpoint, functions, operator tools),
#: and the settings readers the launcher shares with it.
RUNTIME_PACKAGES = (
    "training", "inference", "lambdas", "glue_jobs", "contracts", "fhir_mapping", "platform_config",
)  # fmt: skip
FORBIDDEN = "stacks"


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, module)`` of every import, ``importlib.import_module`` and ``__import__``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def violations(package: str, root: Path = REPO_ROOT) -> list[str]:
    """``path:line imports module`` for each import of :data:`FORBIDDEN` under ``package``."""
    found = []
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, module in _imported_modules(tree):
            if module == FORBIDDEN or module.startswith(f"{FORBIDDEN}."):
                found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("package", RUNTIME_PACKAGES)
def test_runtime_packages_do_not_import_the_stacks(package: str) -> None:
    assert (REPO_ROOT / package / "__init__.py").is_file()
    assert violations(package) == []


@pytest.mark.parametrize(
    "source",
    [
        "from stacks.config import load_stage_config",
        "import stacks.packaging",
        "from stacks import config",
        "def f():\n    from stacks.training_source import build\n",
        "import importlib\nimportlib.import_module('stacks.config')",
        "__import__('stacks')",
    ],
)
def test_the_walk_finds_every_form_of_import(tmp_path: Path, source: str) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "module.py").write_text(source)
    assert len(violations("pkg", tmp_path)) == 1


def test_a_similarly_named_package_is_not_flagged(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "module.py").write_text("import stacks_helper\nfrom .stacks import x\n")
    assert violations("pkg", tmp_path) == []
