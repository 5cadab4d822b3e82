"""Reading a Lambda's settings from its environment, shared by every function.

Staged into each Lambda's asset beside ``lambdas/__init__.py`` (stacks/packaging.py). Errors
name the variable, never its value: a misconfigured value may be a secret.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Set on every function by the stacks (and by the cold-start benchmark, which measures what
#: they deploy). No pydantic plugin is used; without this, pydantic's first model build scans
#: the metadata of every installed distribution looking for one (about 40 M instructions).
RUNTIME_ENVIRONMENT: Mapping[str, str] = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}

_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable, never its value."""


def integer(env: Mapping[str, str], name: str, default: int) -> int:
    """``name`` as an int, ``default`` when unset or empty."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as error:
        raise SettingsError(f"{name} must be an integer") from error


def number(env: Mapping[str, str], name: str, default: float) -> float:
    """``name`` as a float, ``default`` when unset or empty."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as error:
        raise SettingsError(f"{name} must be a number") from error


def flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    """``name`` as a boolean (1/true/yes, 0/false/no), ``default`` when unset or empty."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false")


def names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """``name`` as a comma-separated list, blanks dropped."""
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())
