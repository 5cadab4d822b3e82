"""Import boundaries that keep ``cdk synth`` light (issue #21, "Boundaries that tell the truth").

Each check imports a module in a fresh interpreter whose ``sys.meta_path`` refuses the
packages the module must not load, so a stray import anywhere down the chain fails here
with the name of the module that was refused.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.stacks.cdk_helpers import REPO_ROOT

#: Run in the child: install a finder that refuses ``blocked`` (a top-level name -> True), or,
#: with ``stdlib_only``, every top-level module that is neither standard library nor ``allowed``.
_BLOCKER = textwrap.dedent(
    """
    import importlib, sys

    blocked, allowed, stdlib_only, importer = {args!r}

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in allowed:
                return None
            if top in blocked or (stdlib_only and top not in sys.stdlib_module_names):
                raise ImportError(f"{{name}} may not be imported by {{importer}}")
            return None

    before = set(sys.modules)
    sys.meta_path.insert(0, Refuse())
    importlib.import_module(importer)
    loaded = {{m.partition(".")[0] for m in set(sys.modules) - before}}
    loaded = sorted(loaded - set(sys.stdlib_module_names))
    print(" ".join(loaded))
    """
)


def _import_refusing(
    target: str,
    blocked: tuple[str, ...] = (),
    allowed: tuple[str, ...] = (),
    stdlib_only: bool = False,
) -> list[str]:
    """Import ``target`` in a child interpreter under the refusal rules; the top-level
    non-stdlib names it loaded."""
    code = _BLOCKER.format(args=(set(blocked), set(allowed), stdlib_only, target))
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


def test_job_spec_is_standard_library_only() -> None:
    """``training.job_spec`` (imported by the CDK app) loads nothing outside the stdlib."""
    loaded = _import_refusing("training.job_spec", allowed=("training",), stdlib_only=True)
    assert "numpy" not in loaded
    assert set(loaded) <= {"training"}


def test_job_spec_imports_with_numpy_unimportable() -> None:
    """The brief's own check: numpy made unimportable, ``training.job_spec`` still imports."""
    _import_refusing("training.job_spec", blocked=("numpy",))


def test_refusal_is_real() -> None:
    """The blocker does refuse: ``training.metrics`` needs numpy and fails under it."""
    code = _BLOCKER.format(args=({"numpy"}, set(), False, "training.metrics"))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "numpy may not be imported by training.metrics" in result.stderr


#: What the CDK app must not load: the model, data and Spark stacks run in the artifacts,
#: never in synthesis (each adds import time to every ``cdk synth``).
SYNTH_FORBIDDEN = ("numpy", "pandas", "pyarrow", "torch", "sklearn", "pyspark", "transformers")


@pytest.mark.parametrize("module", ["app", "stacks.pipeline_stack"])
def test_cdk_app_imports_no_data_or_model_library(module: str) -> None:
    """Importing the CDK app (every stack and construct) loads no numpy/torch/pandas/Spark."""
    _import_refusing(module, blocked=SYNTH_FORBIDDEN)
