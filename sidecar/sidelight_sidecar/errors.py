"""Error bodies in the OpenAI and Anthropic formats, and translation between them.

OpenAI: `{"error": {"message", "type", "param", "code"}}`.
Anthropic: `{"type": "error", "error": {"type", "message"}}`.

Both formats carry a human message and a type; the HTTP status is the one
thing every upstream gets right, so a translated error takes its type from
the status in the target format's table (an OpenAI 401 often says
`invalid_request_error`; it becomes an Anthropic `authentication_error`).
When translating from Anthropic to OpenAI, the original Anthropic type is
kept in the OpenAI `code` field (`overloaded_error` has no OpenAI type).
OpenAI's `code` and `param` have no Anthropic field and are dropped.

A body that is not JSON, or JSON without a message, is replaced by a generic
message naming the status: an unreadable body may be a load balancer's HTML
page and is never echoed to the caller. Provider keys never reach the
caller either: a 401 is about the sidecar's key, not the caller's
placeholder, so its message is replaced, and anything shaped like a key or
a bearer token in other messages is masked. Errors after a stream has
started travel in-band, as an SSE event in the stream's own format.
"""

from __future__ import annotations

import re
from typing import Literal

import orjson

from sidelight_sidecar.sse import encode_sse

__all__ = [
    "ApiFormat",
    "anthropic_error_body",
    "anthropic_stream_error",
    "error_body",
    "error_type_for_status",
    "openai_error_body",
    "openai_stream_error",
    "status_for_error_type",
    "translate_error_body",
    "translate_stream_error",
]

ApiFormat = Literal["openai", "anthropic"]
"""The wire format of a request, a response or an upstream."""

_OPENAI_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
_ANTHROPIC_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_TYPES: dict[ApiFormat, dict[int, str]] = {"openai": _OPENAI_TYPES, "anthropic": _ANTHROPIC_TYPES}
_SERVER_TYPE: dict[ApiFormat, str] = {"openai": "server_error", "anthropic": "api_error"}

_SECRET = re.compile(r"\b(?:sk|rk|pk)-[\w*-]{6,}|\bBearer\s+\S+", re.IGNORECASE)

_STATUSES: dict[ApiFormat, dict[str, int]] = {
    "openai": {
        **{error_type: status for status, error_type in _OPENAI_TYPES.items()},
        "insufficient_quota": 429,
        "requests": 429,
        "tokens": 429,
        "server_error": 500,
    },
    "anthropic": {error_type: status for status, error_type in _ANTHROPIC_TYPES.items()},
}


def error_type_for_status(api: ApiFormat, status: int) -> str:
    """The error type `api` uses for an HTTP status (unlisted 4xx: invalid request)."""
    error_type = _TYPES[api].get(status)
    if error_type is not None:
        return error_type
    if 400 <= status < 500:
        return "invalid_request_error"
    return _SERVER_TYPE[api]


def status_for_error_type(api: ApiFormat, error_type: str) -> int:
    """The HTTP status that goes with an error type of `api` (unknown types: 500)."""
    return _STATUSES[api].get(error_type, 500)


def openai_error_body(
    message: str, type: str, code: str | None = None, param: str | None = None
) -> bytes:
    """An OpenAI error body."""
    return orjson.dumps(_openai_error(message, type, code, param))


def anthropic_error_body(message: str, type: str) -> bytes:
    """An Anthropic error body."""
    return orjson.dumps(_anthropic_error(message, type))


def error_body(api: ApiFormat, status: int, message: str, code: str | None = None) -> bytes:
    """An error body of `api` for the proxy's own errors, typed after `status`."""
    error_type = error_type_for_status(api, status)
    if api == "openai":
        return openai_error_body(message, error_type, code)
    return anthropic_error_body(message, error_type)


def openai_stream_error(
    message: str, type: str, code: str | None = None, param: str | None = None
) -> bytes:
    """An in-band OpenAI stream error: a `data:` chunk holding an `error` object."""
    return encode_sse(orjson.dumps(_openai_error(message, type, code, param)))


def anthropic_stream_error(message: str, type: str) -> bytes:
    """An in-band Anthropic stream error: an `event: error` event."""
    return encode_sse(orjson.dumps(_anthropic_error(message, type)), "error")


def translate_error_body(
    body: bytes, status: int, from_format: ApiFormat, to_format: ApiFormat
) -> bytes:
    """Rewrite an upstream error body of `from_format` as a body of `to_format`.

    The caller answers with the same `status`. Within one format the upstream
    type, code and param are kept; across formats the type follows `status`.
    """
    try:
        payload: object = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    message, source_type, code, param = _read_error(payload)
    if status == 401:
        message = "The upstream provider rejected the sidecar's credentials (HTTP 401)."
    elif message is None:
        message = f"The upstream provider returned HTTP {status}."
    target_type = source_type if from_format == to_format else None
    if target_type is None:
        target_type = error_type_for_status(to_format, status)
    if to_format == "anthropic":
        return anthropic_error_body(message, target_type)
    if from_format == "anthropic":
        code, param = source_type, None
    return openai_error_body(message, target_type, code, param)


def translate_stream_error(payload: object, from_format: ApiFormat, to_format: ApiFormat) -> bytes:
    """Turn a parsed in-band error of `from_format` into the in-band event of `to_format`."""
    message, source_type, _, _ = _read_error(payload)
    if message is None:
        message = "The upstream provider reported an error during the stream."
    status = status_for_error_type(from_format, source_type or "")
    target_type = error_type_for_status(to_format, status)
    if to_format == "anthropic":
        return anthropic_stream_error(message, target_type)
    code = source_type if from_format == "anthropic" else None
    return openai_stream_error(message, target_type, code)


def _openai_error(
    message: str, error_type: str, code: str | None, param: str | None
) -> dict[str, object]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _anthropic_error(message: str, error_type: str) -> dict[str, object]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _read_error(payload: object) -> tuple[str | None, str | None, str | None, str | None]:
    """Message, type, code and param of an error envelope of either format.

    Both formats keep the message at `error.message`; some OpenAI-compatible
    servers send `{"error": "text"}` instead.
    """
    if not isinstance(payload, dict):
        return None, None, None, None
    error = payload.get("error")
    if isinstance(error, str):
        return _SECRET.sub("[redacted]", error) or None, None, None, None
    if not isinstance(error, dict):
        return None, None, None, None
    message = _text(error.get("message"))
    return (
        _SECRET.sub("[redacted]", message) if message else None,
        _text(error.get("type")),
        _text(error.get("code")),
        _text(error.get("param")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
