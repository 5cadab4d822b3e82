"""Header parsing (RFC 9110): media types, content codings, and where API Gateway puts values."""

from __future__ import annotations

import pytest

from lambdas.predict.headers import (
    HeaderError,
    MediaType,
    header_values,
    parse_codings,
    parse_media_type,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("application/json", MediaType("application/json", {})),
        ("Application/JSON", MediaType("application/json", {})),
        (" application/json ", MediaType("application/json", {})),
        ("application/json;charset=UTF-8", MediaType("application/json", {"charset": "UTF-8"})),
        (
            'application/json ; Charset="utf-8" ;q="a\\"b"',
            MediaType("application/json", {"charset": "utf-8", "q": 'a"b'}),
        ),
        ("application/json;;", MediaType("application/json", {})),
        ("application/vnd.api+json", MediaType("application/vnd.api+json", {})),
    ],
)
def test_media_types_parse(value: str, expected: MediaType) -> None:
    assert parse_media_type(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "application",
        "application/",
        "/json",
        "application/json/x",
        "application /json",
        "application/json, text/plain",
        "application/json; charset",
        "application/json; charset=",
        "application/json; charset=a b",
        'application/json; charset="open',
        "application/json; charset=utf-8; CHARSET=utf-8",
        "application/json\r\nX-Injected: 1",
        "application/json\x00",
        "application/jsön",
    ],
)
def test_malformed_media_types_are_errors(value: str) -> None:
    with pytest.raises(HeaderError):
        parse_media_type(value)


def test_codings_parse_as_a_list() -> None:
    assert parse_codings(["gzip"]) == ["gzip"]
    assert parse_codings(["identity, GZip", " ,deflate"]) == ["identity", "gzip", "deflate"]
    assert parse_codings([""]) == []
    with pytest.raises(HeaderError):
        parse_codings(["g zip"])
    with pytest.raises(HeaderError):
        parse_codings(["gzip;q=1"])


def test_header_values_are_found_in_any_case_and_in_order() -> None:
    event = {
        "headers": {"Content-Type": "last"},
        "multiValueHeaders": {"Content-Type": ["first", "last"], "content-TYPE": ["third"]},
    }
    assert header_values(event, "content-type") == ["first", "last", "third"]
    assert header_values(event, "Content-Encoding") == []


def test_single_value_headers_are_read_when_the_multi_value_map_lacks_the_name() -> None:
    assert header_values({"headers": {"CONTENT-TYPE": "x"}}, "content-type") == ["x"]
    event = {"headers": {"content-type": "x"}, "multiValueHeaders": {"Accept": ["y"]}}
    assert header_values(event, "Content-Type") == ["x"]
    assert header_values({"headers": None, "multiValueHeaders": None}, "Content-Type") == []


def test_values_that_cannot_come_from_http_never_parse() -> None:
    values = header_values({"multiValueHeaders": {"Content-Type": [None, 7]}}, "Content-Type")
    assert len(values) == 2
    for value in values:
        with pytest.raises(HeaderError):
            parse_media_type(value)
