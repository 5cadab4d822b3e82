"""Typed fields of the ``cdk.json`` settings and the messages that name a bad key by its path.

Fields are ``Annotated`` types: strict scalars (``"4"`` is not an int, ``true`` is not a number),
a range, a pattern or a set of choices. :func:`config_error` turns pydantic's first error into a
:class:`ConfigError` in the project's style: ``context.stages.dev.training.instance_count=0 is
outside [1, 64]``; an unknown key is refused as ``<path> is not a known key`` with the keys
its section knows.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Strict, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

T = TypeVar("T")

#: The error type of every message this package writes: its text starts with its own
#: separator (``=`` before a value, ``.`` before a key, a space before a verb).
CONFIG_ERROR_TYPE = "config"

StrictInt = Annotated[int, Strict()]
#: A JSON number (an int reads as a float), never a bool.
StrictFloat = Annotated[float, Strict()]
StrictBool = Annotated[bool, Strict()]
StrictStr = Annotated[str, Strict()]

#: pydantic's error types for a value of the wrong JSON type, and the type the key needs.
_TYPE_ERRORS = {
    "int_type": "int",
    "float_type": "float",
    "bool_type": "bool",
    "string_type": "str",
    "tuple_type": "a list",
    "list_type": "a list",
    "dataclass_type": "an object",
    "dataclass_args_type": "an object",
    "dict_type": "an object",
    "model_type": "an object",
}
_UNKNOWN_KEY_ERRORS = ("unexpected_keyword_argument", "extra_forbidden")


class ConfigError(ValueError):
    """A key of the ``cdk.json`` context is missing or invalid."""


def problem(text: str) -> PydanticCustomError:
    """An error whose text follows the path of the value it is raised for."""
    return PydanticCustomError(CONFIG_ERROR_TYPE, "{text}", {"text": text})


def between(minimum: float, maximum: float) -> AfterValidator:
    """A number in ``[minimum, maximum]``."""

    def check(value: T) -> T:
        if not minimum <= value <= maximum:  # type: ignore[operator]
            raise problem(f"={value} is outside [{minimum}, {maximum}]")
        return value

    return AfterValidator(check)


def matches(pattern: re.Pattern[str]) -> AfterValidator:
    """A string that ``pattern`` matches from its start."""

    def check(value: str) -> str:
        if not pattern.match(value):
            raise problem(f"={value!r} does not match {pattern.pattern}")
        return value

    return AfterValidator(check)


def one_of(choices: tuple[str, ...]) -> AfterValidator:
    """One of ``choices``."""

    def check(value: str) -> str:
        if value not in choices:
            raise problem(f"={value!r} must be one of {choices}")
        return value

    return AfterValidator(check)


def _path(root: str, location: Sequence[int | str]) -> str:
    return ".".join([root, *(str(part) for part in location)])


def _inner_types(annotation: Any) -> list[Any]:
    """The classes a field's annotation may hold (through ``| None``, ``tuple[X, ...]``)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _inner_types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, tuple, list):
        return [inner for arg in typing.get_args(annotation) for inner in _inner_types(arg)]
    return [annotation]


def known_keys(model: type, location: Sequence[int | str]) -> list[str]:
    """The keys of the section at ``location`` under ``model`` (a dataclass), sorted."""
    current: list[Any] = [model]
    for part in location:
        if isinstance(part, int):
            continue
        following: list[Any] = []
        for kind in current:
            if is_dataclass(kind):
                hints = typing.get_type_hints(kind, include_extras=True)
                if part in hints:
                    following.extend(_inner_types(hints[part]))
        current = following
    return sorted({f.name for kind in current if is_dataclass(kind) for f in fields(kind)})


def _describe(error: ErrorDetails, root: str, model: type) -> str:
    location = error["loc"]
    path = _path(root, location)
    kind = error["type"]
    if kind == "missing":
        return f"{path} is missing"
    if kind in _UNKNOWN_KEY_ERRORS:
        known = known_keys(model, location[:-1])
        close = difflib.get_close_matches(str(location[-1]), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{path} is not a known key (known: {', '.join(known)}){hint}"
    if kind in _TYPE_ERRORS:
        return f"{path} must be {_TYPE_ERRORS[kind]}, got {type(error['input']).__name__}"
    if kind == CONFIG_ERROR_TYPE:
        return f"{path}{error['msg']}"
    return f"{path}: {error['msg']}"


def config_error(error: ValidationError, root: str, model: type) -> ConfigError:
    """The first problem of ``error`` as a :class:`ConfigError` naming the key's full path.

    An unknown key comes first: a misspelled ``trainng`` explains the missing ``training``.
    """
    details = error.errors(include_url=False)
    unknown = [d for d in details if d["type"] in _UNKNOWN_KEY_ERRORS]
    return ConfigError(_describe((unknown or details)[0], root, model))


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def validated(model: type[T], data: Any, root: str, context: Any = None) -> T:
    """``data`` validated as ``model``; a :class:`ConfigError` naming ``root``'s key if not."""
    adapter = _ADAPTERS.setdefault(model, TypeAdapter(model))
    return _validate(adapter, model, data, root, context)


def validated_value(annotation: Any, data: Any, root: str) -> Any:
    """``data`` validated as one field's ``annotation`` (a key outside any section)."""
    return _validate(TypeAdapter(annotation), annotation, data, root, None)


def _validate(adapter: TypeAdapter[Any], model: Any, data: Any, root: str, context: Any) -> Any:
    try:
        return adapter.validate_python(data, context=context)
    except ValidationError as error:
        # The message names the key; pydantic's own report would only repeat it at length.
        raise config_error(error, root, model) from None
