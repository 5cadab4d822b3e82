"""Reading a Lambda's settings from its environment, shared by every function.

Staged into each Lambda's asset beside ``lambdas/__init__.py`` (stacks/packaging.py). Errors
name the variable, never its value: a misconfigured value may be a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: Set on every function by the stacks (and by the cold-start benchmark, which measures what
#: they deploy). No pydantic plugin is used; without this, pydantic's first model build scans
#: the metadata of every installed distribution looking for one (about 40 M instructions).
RUNTIME_ENVIRONMENT: Mapping[str, str] = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}
#: Powertools' own variables, set on every function (stacks/components/platform_function.py).
SERVICE_NAME_ENV = "POWERTOOLS_SERVICE_NAME"
LOG_LEVEL_ENV = "POWERTOOLS_LOG_LEVEL"
#: What every function's environment holds besides its own settings.
PLATFORM_NAMES = frozenset({SERVICE_NAME_ENV, LOG_LEVEL_ENV, *RUNTIME_ENVIRONMENT})

_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable, never its value."""


@dataclass(frozen=True)
class EnvironmentNames:
    """The variables one function reads: those its stack must set, and those it may.

    Each function's settings module exports one (``ENVIRONMENT``); the stacks and the local
    platform build the function's environment through :meth:`environment`, so a misspelt or
    forgotten variable fails at synthesis instead of at the function's first call.
    """

    required: frozenset[str]
    #: Read with a default (tuning, local runs) or set only where a stage's option is on.
    optional: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        clash = (self.required & self.optional) | ((self.required | self.optional) & PLATFORM_NAMES)
        if clash:
            raise SettingsError(f"variables declared twice: {sorted(clash)}")

    @classmethod
    def of(cls, required: Iterable[str], optional: Iterable[str] = ()) -> EnvironmentNames:
        return cls(frozenset(required), frozenset(optional))

    @property
    def names(self) -> frozenset[str]:
        return self.required | self.optional

    def environment(self, values: Mapping[str, str]) -> dict[str, str]:
        """``values`` as the function's environment; refuses unknown and missing names."""
        unknown = sorted(set(values) - self.names)
        missing = sorted(self.required - set(values))
        if unknown or missing:
            raise SettingsError(f"environment: unknown {unknown}, missing {missing}")
        return dict(values)

    def subset(self, values: Mapping[str, str]) -> dict[str, str]:
        """Part of the environment (the rest left to defaults or set elsewhere, as the local
        platform does); refuses names the function does not read."""
        unknown = sorted(set(values) - self.names)
        if unknown:
            raise SettingsError(f"environment: unknown {unknown}")
        return dict(values)


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
