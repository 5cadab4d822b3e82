"""The derived images install only hashed files from the lock; the serving image runs our server.

No docker here: the Dockerfiles are read as text, the hashed files against requirements.lock and
the installed distributions' metadata, and the serving entrypoint is run with a stand-in
``python`` that records how it was called.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS = ROOT / "containers"
IMAGES = ("serving", "training")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "hashed_requirements", CONTAINERS / "hashed_requirements.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_instructions(dockerfile: str) -> list[str]:
    """The shell commands of each RUN instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile)
    return [line[4:] for line in text.splitlines() if line.startswith("RUN ")]


def _entries(hashed: str) -> list[tuple[str, list[str]]]:
    """(pin, hashes) of each requirement of a hashed file, continuation lines joined."""
    text = re.sub(r"\\\n", " ", hashed)
    entries = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            pin, *options = line.split()
            entries.append((pin, options))
    return entries


@pytest.mark.parametrize("image", IMAGES)
def test_every_pip_install_requires_hashes_from_the_hashed_file(image: str) -> None:
    dockerfile = (CONTAINERS / image / "Dockerfile").read_text()
    installs = [
        command
        for run in _run_instructions(dockerfile)
        for command in re.split(r"&&|;", run)
        if re.search(r"\bpip3?\b.*\binstall\b", command)
    ]
    assert installs, f"{image}: no pip install found"
    copied = re.findall(r"^COPY requirements\.hashed\.txt (\S+)$", dockerfile, re.MULTILINE)
    assert copied, f"{image}: the hashed file is not copied into the image"
    for command in installs:
        words = shlex.split(command)
        assert "--require-hashes" in words, command
        files = [words[i + 1] for i, word in enumerate(words) if word in ("-r", "--requirement")]
        assert files == copied, command
        # Nothing named on the command line itself (it would escape the hashed file).
        assert not [w for w in words[words.index("install") + 1 :] if "==" in w], command


@pytest.mark.parametrize("image", IMAGES)
def test_the_hashed_file_pins_the_locked_closure_every_pin_hashed(image: str) -> None:
    generator = _generator()
    lock = generator.lock_pins()
    hashed = (CONTAINERS / image / generator.HASHED_FILE).read_text()
    entries = _entries(hashed)
    assert entries
    for pin, options in entries:
        assert re.fullmatch(r"[a-z0-9\-]+==\S+", pin), pin
        assert options, pin
        assert all(HASH.fullmatch(option) for option in options), pin
    pins = dict(pin.split("==") for pin, _ in entries)
    # Every pin is the lock's version ...
    assert {name: lock.get(name) for name in pins} == pins
    # ... and the file holds exactly what the image's requirements need, the DLC's torch aside.
    assert pins == generator.image_pins(image, lock)
    assert "torch" not in pins


def test_the_serving_images_own_requirements_are_in_its_hashed_file() -> None:
    generator = _generator()
    hashed = generator.lock_pins(CONTAINERS / "serving" / generator.HASHED_FILE)
    wanted = generator.lock_pins(ROOT / "inference" / "requirements.txt")
    assert {"uvicorn", "starlette", "h11", "transformers"} <= set(wanted)
    assert {name: hashed.get(name) for name in wanted} == wanted


def test_the_serving_image_runs_the_endpoint_server(tmp_path: Path) -> None:
    dockerfile = (CONTAINERS / "serving" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/opt/readmission/serve"]' in dockerfile  # exec form: gets SIGTERM
    assert "COPY serve /opt/readmission/serve" in dockerfile
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "python"
    fake.write_text(f'#!/usr/bin/env bash\necho "$PYTHONPATH|$*" > {calls}\n')
    fake.chmod(0o755)
    bash = shutil.which("bash")
    assert bash is not None
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SAGEMAKER_BIND_TO_PORT": "8080"}
    subprocess.run(
        [bash, str(CONTAINERS / "serving" / "serve"), "serve"], env=env, check=True, timeout=30
    )
    assert calls.read_text().strip() == "/opt/ml/model/code|-m inference.serve --host 0.0.0.0"
    env["SAGEMAKER_SUBMIT_DIRECTORY"] = "/elsewhere/code"
    subprocess.run(
        [bash, str(CONTAINERS / "serving" / "serve"), "serve"], env=env, check=True, timeout=30
    )
    assert calls.read_text().startswith("/elsewhere/code|-m inference.serve")


def test_the_model_archive_carries_the_server_the_image_runs(tmp_path: Path) -> None:
    """The entrypoint imports inference.serve from the model's code/: it must be there."""
    from training import artifact

    artifact.copy_code(tmp_path)
    for module in ("serve.py", "endpoint_app.py", "http_protocol.py", "handler.py"):
        assert (tmp_path / "code" / "inference" / module).is_file(), module
