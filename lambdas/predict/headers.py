"""Request headers as HTTP defines them: case-insensitive names, parsed media types and codings.

API Gateway (REST, Lambda proxy) hands the function ``headers`` (the last value of each name)
and ``multiValueHeaders`` (every value, in order); either may be null. The grammar is RFC 9110:
a media type is ``type "/" subtype *( OWS ";" OWS parameter )`` with token and quoted-string
values (sections 5.6.2, 5.6.4, 5.6.6, 8.3.1), and Content-Encoding is a comma-separated list of
codings (section 8.4). Written here rather than imported: the function carries no dependency
beyond the Lambda runtime and the Powertools layer, and the standard library's ``cgi`` parser
is gone in Python 3.13 while ``email``'s quietly turns a malformed type into ``text/plain``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CONTENT_TYPE = "content-type"
CONTENT_ENCODING = "content-encoding"

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # noqa: S105 - RFC 9110's token, not a secret
_QUOTED_STRING = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_OWS = r"[ \t]*"
_MEDIA_TYPE = re.compile(rf"{_OWS}(?P<type>{_TOKEN})/(?P<subtype>{_TOKEN})(?P<params>.*?){_OWS}")
_PARAMETER = re.compile(
    rf"{_OWS};{_OWS}(?:(?P<name>{_TOKEN})=(?P<value>{_TOKEN}|{_QUOTED_STRING}))?", re.DOTALL
)
_CODING = re.compile(rf"{_OWS}(?P<coding>{_TOKEN}){_OWS}")


class HeaderError(ValueError):
    """A header is malformed; the message names the header, never its value."""


@dataclass(frozen=True)
class MediaType:
    """A parsed media type: lower-case ``type/subtype`` and parameters (names lower-cased)."""

    essence: str
    parameters: Mapping[str, str] = field(default_factory=dict)


def header_values(event: Mapping[str, Any], name: str) -> list[str]:
    """Every value the request carried for header ``name`` (any case), in order.

    ``multiValueHeaders`` holds them all; ``headers`` only the last of each name, so it is read
    only when the other lacks the name (a hand-made event, or a direct invocation).
    A value that is not a string cannot come from HTTP and is kept as an unparseable marker.
    """
    wanted = name.lower()
    found: list[str] = []
    multi = event.get("multiValueHeaders")
    if isinstance(multi, Mapping) and multi:
        for key, values in multi.items():
            if isinstance(key, str) and key.lower() == wanted:
                items = values if isinstance(values, list) else [values]
                found.extend(value if isinstance(value, str) else "\x00" for value in items)
    if found:
        return found
    single = event.get("headers")
    if isinstance(single, Mapping):
        for key, value in single.items():
            if isinstance(key, str) and key.lower() == wanted:
                found.append(value if isinstance(value, str) else "\x00")
    return found


def parse_media_type(value: str) -> MediaType:
    """Parse one Content-Type value; raise ``HeaderError`` unless it follows RFC 9110 8.3.1.

    A repeated parameter name is an error too: ``charset=utf-8; charset=latin1`` has no meaning.
    """
    match = _MEDIA_TYPE.fullmatch(value)
    if match is None:
        raise HeaderError("Content-Type is not a media type")
    parameters: dict[str, str] = {}
    params = match["params"]
    position = 0
    while position < len(params):
        parameter = _PARAMETER.match(params, position)
        if parameter is None or parameter.end() == position:
            raise HeaderError("Content-Type has a malformed parameter")
        position = parameter.end()
        if parameter["name"] is None:  # an empty parameter (";;") is allowed and ignored
            continue
        name = parameter["name"].lower()
        if name in parameters:
            raise HeaderError("Content-Type repeats a parameter")
        parameters[name] = _unquote(parameter["value"])
    return MediaType(f"{match['type']}/{match['subtype']}".lower(), parameters)


def parse_codings(values: list[str]) -> list[str]:
    """The content codings of Content-Encoding values, lower-case, in the order applied."""
    codings: list[str] = []
    for value in values:
        for item in value.split(","):
            if not item.strip(" \t"):
                continue  # empty list elements are allowed (RFC 9110 5.6.1)
            match = _CODING.fullmatch(item)
            if match is None:
                raise HeaderError("Content-Encoding is not a list of codings")
            codings.append(match["coding"].lower())
    return codings


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.DOTALL)
    return value
