"""Error bodies, status and type tables, and error translation (see also the golden corpus)."""

from __future__ import annotations

import anthropic
import httpx2
import openai
import orjson
import pytest
from anthropic.types import ErrorResponse
from openai.types.shared import ErrorObject

from sidelight_sidecar.errors import (
    ApiFormat,
    anthropic_error_body,
    anthropic_stream_error,
    error_type_for_status,
    openai_error_body,
    openai_stream_error,
    status_for_error_type,
    translate_error_body,
    translate_stream_error,
)
from sidelight_sidecar.sse import SSEEvent, SSEParser


@pytest.mark.parametrize(
    ("status", "openai_type", "anthropic_type"),
    [
        (400, "invalid_request_error", "invalid_request_error"),
        (401, "authentication_error", "authentication_error"),
        (402, "invalid_request_error", "billing_error"),
        (403, "permission_error", "permission_error"),
        (404, "not_found_error", "not_found_error"),
        (409, "invalid_request_error", "invalid_request_error"),
        (413, "invalid_request_error", "request_too_large"),
        (422, "invalid_request_error", "invalid_request_error"),
        (429, "rate_limit_error", "rate_limit_error"),
        (500, "server_error", "api_error"),
        (502, "server_error", "api_error"),
        (503, "server_error", "api_error"),
        (504, "server_error", "timeout_error"),
        (529, "server_error", "overloaded_error"),
        (200, "server_error", "api_error"),
    ],
)
def test_error_type_for_status(status: int, openai_type: str, anthropic_type: str) -> None:
    assert error_type_for_status("openai", status) == openai_type
    assert error_type_for_status("anthropic", status) == anthropic_type


@pytest.mark.parametrize(
    ("api", "error_type", "status"),
    [
        ("openai", "invalid_request_error", 400),
        ("openai", "authentication_error", 401),
        ("openai", "permission_error", 403),
        ("openai", "not_found_error", 404),
        ("openai", "rate_limit_error", 429),
        ("openai", "insufficient_quota", 429),
        ("openai", "tokens", 429),
        ("openai", "server_error", 500),
        ("openai", "something_new", 500),
        ("anthropic", "billing_error", 402),
        ("anthropic", "request_too_large", 413),
        ("anthropic", "api_error", 500),
        ("anthropic", "timeout_error", 504),
        ("anthropic", "overloaded_error", 529),
        ("anthropic", "something_new", 500),
    ],
)
def test_status_for_error_type(api: ApiFormat, error_type: str, status: int) -> None:
    assert status_for_error_type(api, error_type) == status


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
def test_the_tables_agree_both_ways(api: ApiFormat, status: int) -> None:
    assert status_for_error_type(api, error_type_for_status(api, status)) == status


def test_openai_error_body() -> None:
    body = openai_error_body("bad", "invalid_request_error", code="c", param="messages")
    assert orjson.loads(body) == {
        "error": {
            "message": "bad",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "c",
        }
    }
    ErrorObject.model_validate(orjson.loads(body)["error"])


def test_anthropic_error_body() -> None:
    body = anthropic_error_body("slow down", "rate_limit_error")
    assert orjson.loads(body) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }
    ErrorResponse.model_validate(orjson.loads(body))


def test_openai_stream_error_is_a_data_chunk() -> None:
    [event] = SSEParser().feed(openai_stream_error("boom", "server_error"))
    assert event.event is None
    assert orjson.loads(event.data)["error"]["message"] == "boom"


def test_anthropic_stream_error_is_an_error_event() -> None:
    [event] = SSEParser().feed(anthropic_stream_error("Overloaded", "overloaded_error"))
    assert event.event == "error"
    ErrorResponse.model_validate(orjson.loads(event.data))


def test_same_format_keeps_type_code_and_param() -> None:
    upstream = openai_error_body("quota", "insufficient_quota", code="insufficient_quota")
    assert orjson.loads(translate_error_body(upstream, 429, "openai", "openai")) == {
        "error": {
            "message": "quota",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    upstream = anthropic_error_body("Overloaded", "overloaded_error")
    assert translate_error_body(upstream, 529, "anthropic", "anthropic") == upstream


@pytest.mark.parametrize(
    ("from_format", "to_format"),
    [("openai", "anthropic"), ("anthropic", "openai"), ("openai", "openai")],
)
def test_a_401_never_shows_the_upstream_message(
    from_format: ApiFormat, to_format: ApiFormat
) -> None:
    upstream = openai_error_body("Incorrect API key provided: sk-proj-****abcd.", "x")
    body = translate_error_body(upstream, 401, from_format, to_format)
    assert b"sk-" not in body
    assert b"sidecar's credentials" in body


@pytest.mark.parametrize(
    "message",
    [
        "Key sk-ant-api03-AbCdEf123456 is disabled",
        "key sk-proj-****abcd has no access",
        "header Authorization: Bearer abc.def.ghi rejected",
    ],
)
def test_key_shaped_strings_are_masked(message: str) -> None:
    body = translate_error_body(openai_error_body(message, "x"), 403, "openai", "anthropic")
    error = orjson.loads(body)["error"]
    assert "[redacted]" in error["message"]
    assert "abc" not in error["message"].lower().replace("[redacted]", "")


def test_unparseable_bodies_are_not_echoed() -> None:
    body = translate_error_body(b"<html>secret-internal-host</html>", 502, "openai", "openai")
    assert b"secret" not in body
    assert orjson.loads(body)["error"]["type"] == "server_error"


@pytest.mark.parametrize(
    ("payload", "to_format", "expected"),
    [
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "openai",
            {
                "error": {
                    "message": "Overloaded",
                    "type": "server_error",
                    "param": None,
                    "code": "overloaded_error",
                }
            },
        ),
        (
            {"error": {"message": "slow", "type": "rate_limit_error"}},
            "anthropic",
            {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}},
        ),
        (
            {"error": {}},
            "anthropic",
            {
                "type": "error",
                "error": {
                    "type": "api_error",
                    "message": "The upstream provider reported an error during the stream.",
                },
            },
        ),
    ],
)
def test_translate_stream_error(
    payload: dict[str, object], to_format: ApiFormat, expected: dict[str, object]
) -> None:
    from_format: ApiFormat = "openai" if to_format == "anthropic" else "anthropic"
    [event] = SSEParser().feed(translate_stream_error(payload, from_format, to_format))
    assert event == SSEEvent("error" if to_format == "anthropic" else None, event.data)
    assert orjson.loads(event.data) == expected


@pytest.mark.parametrize(
    ("status", "openai_error", "anthropic_error"),
    [
        (400, openai.BadRequestError, anthropic.BadRequestError),
        (401, openai.AuthenticationError, anthropic.AuthenticationError),
        (404, openai.NotFoundError, anthropic.NotFoundError),
        (429, openai.RateLimitError, anthropic.RateLimitError),
        (529, openai.InternalServerError, anthropic.InternalServerError),
    ],
)
def test_the_sdks_raise_their_usual_exceptions(
    status: int, openai_error: type[Exception], anthropic_error: type[Exception]
) -> None:
    from_anthropic = anthropic_error_body("upstream says no", "api_error")
    body = translate_error_body(from_anthropic, status, "anthropic", "openai")
    client = openai.OpenAI(
        api_key="test",
        base_url="http://upstream",
        http_client=_answering(status, body),
        max_retries=0,
    )
    with pytest.raises(openai_error) as raised_openai:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert isinstance(raised_openai.value, openai.APIStatusError)
    assert isinstance(raised_openai.value.body, dict)
    assert raised_openai.value.body["type"] == error_type_for_status("openai", status)

    from_openai = openai_error_body("upstream says no", "server_error")
    body = translate_error_body(from_openai, status, "openai", "anthropic")
    anthropic_client = anthropic.Anthropic(
        api_key="test",
        base_url="http://upstream",
        http_client=_answering(status, body),
        max_retries=0,
    )
    with pytest.raises(anthropic_error) as raised_anthropic:
        anthropic_client.messages.create(
            model="claude-sonnet-4-6", max_tokens=1, messages=[{"role": "user", "content": "hi"}]
        )
    assert isinstance(raised_anthropic.value, anthropic.APIStatusError)
    assert raised_anthropic.value.body == orjson.loads(body)


def _answering(status: int, body: bytes) -> httpx2.Client:
    def answer(_request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, content=body, headers={"content-type": "application/json"})

    return httpx2.Client(transport=httpx2.MockTransport(answer))
