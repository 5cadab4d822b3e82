"""The request body as UTF-8 text: base64 undone, content coding undone, size bounded.

Every way a body can be unreadable ends in a typed error, never a 500: a body API Gateway
marks ``isBase64Encoded`` that is not strict base64 (RFC 4648 alphabet and padding), text that
is not UTF-8 (bytes that do not decode, or a lone surrogate, which has no UTF-8 form), a
content coding the API does not know (415), or more than ``max_bytes`` once decoded (413).

Content codings: API Gateway decompresses ``gzip`` and ``deflate`` request bodies itself and
answers 415 for other codings (docs.aws.amazon.com/apigateway/latest/developerguide/
api-gateway-make-request-with-compressed-payload.html), so a body reaching the function is
normally plain even when the header still names a coding. A body that still carries a gzip or
zlib header is decompressed here, bounded by ``max_bytes``, so that a direct invocation or the
local gateway behaves the same.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from lambdas.predict.errors import PayloadTooLargeError, UnsupportedMediaTypeError
from lambdas.predict.headers import CONTENT_ENCODING, HeaderError, header_values, parse_codings

BODY = "body"
#: Reasons of a 400 about the body as a whole (``details[].reason``).
BASE64_INVALID = "base64_invalid"
UNICODE_INVALID = "unicode_invalid"
BODY_INVALID = "body_invalid"

IDENTITY = "identity"
GZIP_CODINGS = frozenset({"gzip", "x-gzip"})
DEFLATE = "deflate"
#: What a 415 for a content coding advertises (RFC 9110 12.5.3).
ACCEPTED_ENCODINGS = "gzip, deflate, identity"
_GZIP_MAGIC = b"\x1f\x8b"
_ZLIB_DEFLATE_METHOD = 8
_ZLIB_MAX_WINDOW = 7
_ZLIB_CHECK = 31
_ZLIB_HEADER_BYTES = 2


def invalid_body(reason: str) -> RequestValidationError:
    """A 400 naming the body and the reason, shaped like pydantic's errors."""
    return RequestValidationError([{"loc": (BODY,), "type": reason}])


def request_text(event: Mapping[str, Any], max_bytes: int) -> str:
    """Return the request body as text, or raise the 400, 413 or 415 it deserves."""
    codings = _content_codings(event)
    raw = _body_bytes(event, max_bytes)
    if codings:
        raw = _decode_content(raw, codings[0], max_bytes)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_body(UNICODE_INVALID) from None


def _content_codings(event: Mapping[str, Any]) -> list[str]:
    """The codings to undo (identity dropped): at most one, and one the API knows."""
    try:
        codings = parse_codings(header_values(event, CONTENT_ENCODING))
    except HeaderError as e:
        raise UnsupportedMediaTypeError(str(e), {"Accept-Encoding": ACCEPTED_ENCODINGS}) from None
    codings = [coding for coding in codings if coding != IDENTITY]
    known = GZIP_CODINGS | {DEFLATE}
    if len(codings) > 1 or any(coding not in known for coding in codings):
        raise UnsupportedMediaTypeError(
            "unsupported content coding", {"Accept-Encoding": ACCEPTED_ENCODINGS}
        )
    return codings


def _body_bytes(event: Mapping[str, Any], max_bytes: int) -> bytes:
    """The bytes the caller sent: base64-decoded when API Gateway says so, else UTF-8."""
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):  # cannot come from API Gateway; a direct invocation's mistake
        raise invalid_body(BODY_INVALID)
    if _is_true(event.get("isBase64Encoded")):
        if len(body) > _base64_length(max_bytes):
            raise PayloadTooLargeError("request body over the limit")
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):  # ValueError: a character outside ASCII
            raise invalid_body(BASE64_INVALID) from None
    else:
        if len(body) > max_bytes:  # a character is at least one byte
            raise PayloadTooLargeError("request body over the limit")
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (a JSON "\\ud800" decoded by the runtime)
            raise invalid_body(UNICODE_INVALID) from None
    if len(raw) > max_bytes:
        raise PayloadTooLargeError("request body over the limit")
    return raw


def _decode_content(raw: bytes, coding: str, max_bytes: int) -> bytes:
    """Undo ``coding`` when the body still carries it, never producing more than ``max_bytes``."""
    if coding in GZIP_CODINGS:
        if not raw.startswith(_GZIP_MAGIC):
            return raw  # already decompressed by API Gateway
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    else:
        if not _has_zlib_header(raw):
            return raw
        decompressor = zlib.decompressobj(wbits=zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(raw, max_bytes + 1)
    except zlib.error:
        raise UnsupportedMediaTypeError(
            "body is not in its declared content coding", {"Accept-Encoding": ACCEPTED_ENCODINGS}
        ) from None
    if len(out) > max_bytes:
        raise PayloadTooLargeError("decompressed request body over the limit")
    if not decompressor.eof or decompressor.unused_data:
        raise UnsupportedMediaTypeError(
            "body is truncated or has data after its compressed stream",
            {"Accept-Encoding": ACCEPTED_ENCODINGS},
        )
    return out


def _has_zlib_header(raw: bytes) -> bool:
    """RFC 1950: deflate method, a window of at most 32 KiB, and a header checksum."""
    if len(raw) < _ZLIB_HEADER_BYTES:
        return False
    cmf, flg = raw[0], raw[1]
    return (
        cmf & 0x0F == _ZLIB_DEFLATE_METHOD
        and cmf >> 4 <= _ZLIB_MAX_WINDOW
        and (cmf * 256 + flg) % _ZLIB_CHECK == 0
    )


def _base64_length(max_bytes: int) -> int:
    """The longest base64 text (with padding) whose decoding can fit in ``max_bytes``."""
    return 4 * -(-max_bytes // 3)


def _is_true(flag: Any) -> bool:
    """``isBase64Encoded`` is a JSON boolean; a string "true" is read the same."""
    return flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")
