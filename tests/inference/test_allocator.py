"""The serving process keeps freed tensor buffers in its heap (glibc mallopt)."""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Any

import pytest

from inference import allocator


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_every_setting_and_again() -> None:
    assert allocator.retain_freed_memory()
    assert allocator.retain_freed_memory()


class _Library:
    def __init__(self, answer: int | None) -> None:
        self.calls: list[tuple[int, int]] = []
        if answer is not None:

            def mallopt(parameter: int, value: int) -> int:
                self.calls.append((parameter, value))
                return answer

            self.mallopt: Any = mallopt


def _with_library(monkeypatch: pytest.MonkeyPatch, library: _Library) -> None:
    monkeypatch.setattr(allocator.ctypes.util, "find_library", lambda _: "libc.so.6")
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda _: library)


def test_every_threshold_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    library = _Library(answer=1)
    _with_library(monkeypatch, library)
    assert allocator.retain_freed_memory()
    assert library.calls == [
        (allocator.M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD_BYTES),
        (allocator.M_TRIM_THRESHOLD, allocator.TRIM_THRESHOLD_BYTES),
        (allocator.M_TOP_PAD, allocator.TOP_PAD_BYTES),
    ]


def test_glibc_is_loaded_by_name_where_find_library_finds_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded: list[str] = []
    library = _Library(answer=1)
    monkeypatch.setattr(allocator.ctypes.util, "find_library", lambda _: None)

    def load(name: str) -> _Library:
        loaded.append(name)
        return library

    monkeypatch.setattr(allocator.ctypes, "CDLL", load)
    assert allocator.retain_freed_memory()
    assert loaded == [allocator.GLIBC_SONAME]


def test_no_c_library_at_all_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise OSError(name)

    monkeypatch.setattr(allocator.ctypes.util, "find_library", lambda _: None)
    monkeypatch.setattr(allocator.ctypes, "CDLL", missing)
    assert not allocator.retain_freed_memory()


def test_a_c_library_without_mallopt_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_library(monkeypatch, _Library(answer=None))
    assert not allocator.retain_freed_memory()


def test_a_refused_setting_is_reported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _with_library(monkeypatch, _Library(answer=0))
    with caplog.at_level(logging.WARNING, logger=allocator.__name__):
        assert not allocator.retain_freed_memory()
    assert "refused a malloc setting" in caplog.text


def test_model_fn_tunes_the_allocator(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> None:
    from inference import handler

    calls: list[bool] = []

    def tune() -> bool:
        calls.append(True)
        return True

    monkeypatch.setattr(handler, "retain_freed_memory", tune)
    assert handler.model_fn(str(model_dir)) is not None
    assert calls == [True]
