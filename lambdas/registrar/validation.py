"""Client-side checks of what the registrar sends: botocore's service model and the card schema.

moto accepts requests that SageMaker refuses, so every ``CreateModelPackage`` request is checked
here first:

* botocore's ``ParamValidator`` against the operation's input shape (types, required members,
  unknown keys, minimum lengths), the checks boto3 runs before sending;
* the service model's other constraints, which botocore leaves to the service: maximum
  lengths and sizes, enums and patterns (``max``, ``enum``, ``pattern`` in
  ``botocore/data/sagemaker/*/service-2.json``);
* the card content against the SageMaker SDK's model card shapes
  (``sagemaker.core.shapes.model_card_shapes``), refusing a key the shapes do not define, and the
  model *package* card's narrower ``model_overview`` (``model_creator`` and ``model_artifact``
  only: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelPackageModelCard.html).

The Lambda runtime has botocore but neither the SageMaker SDK nor the ``regex`` module: there
the card is checked for size and its overview keys only, and patterns with Unicode classes
(``\\p{L}``, which ``re`` lacks) are left to the service. The tests run the full checks on every
card the registrar can build.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from botocore.model import OperationModel, Shape
from botocore.session import get_session
from botocore.validate import ParamValidator

OPERATION = "CreateModelPackage"
#: Keys ``model_overview`` may hold in a model package's card.
PACKAGE_CARD_OVERVIEW_KEYS = frozenset({"model_creator", "model_artifact"})


class RequestInvalidError(ValueError):
    """SageMaker would refuse the request; the message names each member at fault."""


@cache
def operation_model(name: str = OPERATION) -> OperationModel:
    """The operation as the installed botocore describes it."""
    return get_session().get_service_model("sagemaker").operation_model(name)


def max_content_chars() -> int:
    """``ModelPackageModelCard.ModelCardContent``'s maximum length in the service model."""
    shape = operation_model().input_shape.members["ModelCard"]
    return int(shape.members["ModelCardContent"].metadata["max"])


@cache
def _compiled(pattern: str) -> Any:
    """Service-model patterns are Java regexes; a trailing ``${1,128}`` repeats the anchor."""
    pattern = re.sub(r"\$\{\d+,\d+\}$", "$", pattern)
    try:
        import regex  # exact Unicode classes where the library is installed

        return regex.compile(pattern)
    except ImportError:
        pass
    if r"\p{" in pattern:
        return None  # Unicode classes re lacks: left to the service (values are sanitized)
    return re.compile(pattern)


def _string_errors(value: str, shape: Shape, path: str) -> list[str]:
    errors = []
    meta = shape.metadata
    if "max" in meta and len(value) > meta["max"]:
        errors.append(f"{path}: longer than {meta['max']} characters")
    if shape.enum and value not in shape.enum:
        errors.append(f"{path}: must be one of {', '.join(shape.enum)}")
    compiled = _compiled(meta["pattern"]) if "pattern" in meta else None
    if compiled is not None and compiled.fullmatch(value) is None:
        errors.append(f"{path}: does not match the pattern {meta['pattern']}")
    return errors


def constraint_errors(value: Any, shape: Shape, path: str = "") -> list[str]:
    """What ``ParamValidator`` leaves to the service: max, enum and pattern, recursively."""
    if shape.type_name == "string" and isinstance(value, str):
        return _string_errors(value, shape, path)
    errors: list[str] = []
    size = len(value) if isinstance(value, list | dict) else None
    if size is not None and "max" in shape.metadata and size > shape.metadata["max"]:
        errors.append(f"{path}: more than {shape.metadata['max']} entries")
    if shape.type_name == "structure" and isinstance(value, Mapping):
        for name, member in shape.members.items():
            if name in value:
                errors.extend(constraint_errors(value[name], member, f"{path}.{name}".lstrip(".")))
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            errors.extend(constraint_errors(item, shape.member, f"{path}[{index}]"))
    elif shape.type_name == "map" and isinstance(value, Mapping):
        for key, item in value.items():
            errors.extend(constraint_errors(key, shape.key, f"{path} key {key!r}"))
            errors.extend(constraint_errors(item, shape.value, f"{path}[{key!r}]"))
    return errors


def check_request(request: Mapping[str, Any], operation: str = OPERATION) -> None:
    """Raise :class:`RequestInvalidError` when SageMaker would refuse ``request``."""
    shape = operation_model(operation).input_shape
    report = ParamValidator().validate(dict(request), shape)
    errors = [report.generate_report()] if report.has_errors() else []
    errors.extend(constraint_errors(request, shape))
    card = request.get("ModelCard")
    if isinstance(card, Mapping) and isinstance(card.get("ModelCardContent"), str):
        errors.extend(card_errors(json.loads(card["ModelCardContent"])))
    if errors:
        raise RequestInvalidError(f"{operation} would be refused: " + "; ".join(errors))


def _unknown_keys(value: Any, dumped: Any, path: str) -> list[str]:
    """Keys of ``value`` that the shapes dropped on the way through (not in the schema)."""
    if isinstance(value, Mapping) and isinstance(dumped, Mapping):
        errors = [
            f"{path}.{k}".lstrip(".") + ": not in the model card schema"
            for k in value
            if k not in dumped
        ]
        for key in value:
            if key in dumped:
                errors.extend(_unknown_keys(value[key], dumped[key], f"{path}.{key}"))
        return errors
    if isinstance(value, list) and isinstance(dumped, list):
        return [
            e
            for i, (v, d) in enumerate(zip(value, dumped, strict=False))
            for e in _unknown_keys(v, d, f"{path}[{i}]")
        ]
    return []


def card_errors(content: Any) -> list[str]:
    """Why the SDK's model card shapes (and the package card's overview) refuse ``content``."""
    if not isinstance(content, Mapping):
        return ["ModelCardContent: must be a JSON object"]
    overview = content.get("model_overview") or {}
    errors = [
        f"ModelCardContent.model_overview.{key}: not in the model package card schema"
        for key in overview
        if key not in PACKAGE_CARD_OVERVIEW_KEYS
    ]
    try:
        from pydantic import ValidationError
        from sagemaker.core.shapes.model_card_shapes import ModelCardContent
    except ImportError:  # the Lambda runtime: see the module docstring
        return errors
    return errors + _shape_errors(content, ModelCardContent, ValidationError)


def _shape_errors(content: Mapping[str, Any], shape: Any, invalid: Any) -> list[str]:
    try:
        parsed = shape.model_validate(content)
    except invalid as error:
        return [
            f"ModelCardContent.{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
            for item in error.errors()
        ]
    unknown = _unknown_keys(content, parsed.model_dump(mode="json", exclude_unset=True), "")
    return [f"ModelCardContent.{error}" for error in [*unknown, *_length_patterns(parsed, "")]]


def _length_patterns(value: Any, path: str) -> list[str]:
    """Lengths the shapes state as ``pattern=".{1,63}"``, which pydantic matches as a search
    (so 64 characters pass): checked here as the schema means them."""
    fields = getattr(type(value), "model_fields", None)
    if isinstance(value, list):
        return [e for i, item in enumerate(value) for e in _length_patterns(item, f"{path}[{i}]")]
    if fields is None:
        return []
    errors = []
    for name, info in fields.items():
        item = getattr(value, name)
        where = f"{path}.{name}".lstrip(".")
        for meta in info.metadata:
            bounds = re.fullmatch(r"\.\{(\d+),(\d+)\}", str(getattr(meta, "pattern", "")))
            if bounds and isinstance(item, str):
                low, high = int(bounds[1]), int(bounds[2])
                if not low <= len(item) <= high:
                    errors.append(f"{where}: must be {low} to {high} characters")
        errors.extend(_length_patterns(item, where))
    return errors
