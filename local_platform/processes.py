"""The child processes the demo starts (ETL, torchrun, the endpoint server), and their end.

Each child gets its own session so that stopping it stops its own children too (torchrun's
workers, Spark's JVM), and only those: every signal goes to a process group this module
started, by its id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

STOP_GRACE_S = 10.0


class ProcessFailedError(RuntimeError):
    """A child process exited with a non-zero status; its output is in the run's log."""


class ProcessGroup:
    """Starts children, remembers them, and stops every one that is still running."""

    def __init__(self, cwd: Path, log: Callable[[str], None]) -> None:
        self._cwd = cwd
        self._log = log
        self._children: list[subprocess.Popen[str]] = []

    @property
    def pids(self) -> list[int]:
        """Every child started so far (running or not)."""
        return [child.pid for child in self._children]

    def start(
        self, argv: Sequence[str], env: Mapping[str, str], log_file: Path
    ) -> subprocess.Popen[str]:
        """Start ``argv`` in the background, its output going to ``log_file``."""
        handle = log_file.open("a", encoding="utf-8")
        try:
            child = subprocess.Popen(  # noqa: S603 - argv is built by the demo, not user input
                list(argv),
                cwd=self._cwd,
                env=dict(env),
                stdout=handle,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        finally:
            handle.close()
        self._children.append(child)
        return child

    def run(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        """Run ``argv`` (called ``name`` in errors) to the end; each output line goes to the log
        and to ``on_line``."""
        child = subprocess.Popen(  # noqa: S603 - argv is built by the demo, not user input
            list(argv),
            cwd=self._cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._children.append(child)
        assert child.stdout is not None
        for raw in child.stdout:
            line = raw.rstrip("\n")
            self._log(line)
            if on_line is not None:
                on_line(line)
        status = child.wait()
        if status != 0:
            raise ProcessFailedError(f"{name} exited with status {status}")

    def stop(self, child: subprocess.Popen[str]) -> None:
        """SIGTERM the child's process group, SIGKILL it after a grace period, reap it."""
        if child.poll() is None:
            _signal_group(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(child.pid, signal.SIGKILL)
                child.wait(timeout=STOP_GRACE_S)
        # A group member may outlive the leader (a torchrun worker): end it too.
        _signal_group(child.pid, signal.SIGKILL)
        if child.stdout is not None:
            child.stdout.close()

    def stop_all(self) -> None:
        """Stop every child, newest first."""
        for child in reversed(self._children):
            self.stop(child)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return


def wait_for_http(url: str, timeout_s: float, child: subprocess.Popen[str] | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early if ``child`` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            raise ProcessFailedError(f"the server exited with status {child.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise ProcessFailedError(f"no answer from the server within {timeout_s:.0f}s")


def process_exists(pid: int) -> bool:
    """Whether a process with this id is still alive (zombies count as gone)."""
    status_file = Path(f"/proc/{pid}/status")
    if status_file.exists():
        try:
            text = status_file.read_text()
        except OSError:
            return False
        return "State:\tZ" not in text
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
