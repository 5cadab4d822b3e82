"""Progress lines as the demo goes, the run's log file, and the closing summary.

A step prints one numbered line and then short indented facts. Facts are counts, metrics,
names and timings only: no identifier or clinical value is ever printed or logged.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import IO, Any

TOTAL_STEPS = 7
FACT_INDENT = "      "


class Progress:
    """Writes step lines and facts to the terminal and, with timestamps, to the log file."""

    def __init__(self, log_path: Path, stream: IO[str]) -> None:
        self._stream = stream
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("a", encoding="utf-8")
        self._started = time.monotonic()

    @property
    def log_stream(self) -> IO[str]:
        """The log file, for subprocess output and the handlers' own log lines."""
        return self._log

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def step(self, number: int, title: str) -> None:
        self._emit(f"[{number}/{TOTAL_STEPS}] {title}  (t+{self.elapsed():.0f}s)")

    def fact(self, label: str, value: object = "") -> None:
        text = f"{label}: {value}" if value != "" else label
        self._emit(f"{FACT_INDENT}{text}")

    def line(self, text: str) -> None:
        self._emit(text)

    def log(self, text: str) -> None:
        """A line for the log file only (e.g. a subprocess's output)."""
        self._log.write(text.rstrip("\n") + "\n")
        self._log.flush()

    def _emit(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()
        self.log(f"{time.strftime('%H:%M:%S')} {text}")

    def close(self) -> None:
        self._log.close()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in (0, 100]) of a non-empty list."""
    if not values:
        raise ValueError("percentile of an empty list")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(latencies_ms: list[float]) -> dict[str, float]:
    """p50, p95 and max of request latencies, rounded to 0.1 ms."""
    return {
        "requests": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 50), 1),
        "p95_ms": round(percentile(latencies_ms, 95), 1),
        "max_ms": round(max(latencies_ms), 1),
    }


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")


def format_metric(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"
