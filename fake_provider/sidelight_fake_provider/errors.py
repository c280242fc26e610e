"""Error bodies and request-id headers in each provider's real format.

OpenAI: `{"error": {"message", "type", "param", "code"}}` with `x-request-id`.
Azure OpenAI: its own gateway errors (401, 404, 429 and 5xx) are
`{"error": {"code": "<status>", "message"}}`; model errors such as a context
overflow are passed through in the OpenAI shape. Azure sends both
`x-request-id` and `apim-request-id`.
Anthropic: `{"type": "error", "error": {"type", "message"}}` with `request-id`.
"""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Any

__all__ = [
    "ANTHROPIC_CONTEXT_WINDOW",
    "OPENAI_CONTEXT_WINDOW",
    "Family",
    "context_length_body",
    "default_error_body",
    "error_body",
    "request_id_headers",
]

OPENAI_CONTEXT_WINDOW = 128_000
ANTHROPIC_CONTEXT_WINDOW = 200_000


class Family(Enum):
    """Which provider a path belongs to, and so which formats it speaks."""

    OPENAI = "openai"
    AZURE = "azure"
    ANTHROPIC = "anthropic"

    @classmethod
    def of_path(cls, path: str) -> Family:
        """The family that serves `path`."""
        if path.startswith("/openai/"):
            return cls.AZURE
        if path == "/v1/messages" or path.startswith("/v1/messages/"):
            return cls.ANTHROPIC
        return cls.OPENAI


_OPENAI_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to sample from this model."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_ANTHROPIC_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low."),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


def error_body(
    family: Family,
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """An error body in `family`'s format; the type defaults from the status."""
    if family is Family.ANTHROPIC:
        default_type = _ANTHROPIC_DEFAULTS.get(status, ("api_error", ""))[0]
        return {"type": "error", "error": {"type": error_type or default_type, "message": message}}
    if family is Family.AZURE and error_type is None:
        return {"error": {"code": code or str(status), "message": message}}
    default_type = _OPENAI_DEFAULTS.get(status, ("server_error", None, ""))[0]
    return {
        "error": {
            "message": message,
            "type": error_type or default_type,
            "param": param,
            "code": code,
        }
    }


def default_error_body(family: Family, status: int) -> dict[str, Any]:
    """The body a provider typically sends with `status` when nothing more is known."""
    if family is Family.ANTHROPIC:
        error_type, message = _ANTHROPIC_DEFAULTS.get(status, ("api_error", "Error"))
        return error_body(family, status, message, error_type=error_type)
    if family is Family.AZURE:
        return error_body(family, status, _OPENAI_DEFAULTS.get(status, ("", None, "Error"))[2])
    error_type, code, message = _OPENAI_DEFAULTS.get(status, ("server_error", None, "Error"))
    return error_body(family, status, message, error_type=error_type, code=code)


def context_length_body(family: Family, path: str, input_tokens: int) -> dict[str, Any]:
    """The 400 body a provider sends when the prompt exceeds the context window."""
    if family is Family.ANTHROPIC:
        window = ANTHROPIC_CONTEXT_WINDOW
        message = f"prompt is too long: {max(input_tokens, window + 1)} tokens > {window} maximum"
        return error_body(family, 400, message, error_type="invalid_request_error")
    window = OPENAI_CONTEXT_WINDOW
    message = (
        f"This model's maximum context length is {window} tokens. However, your messages "
        f"resulted in {max(input_tokens, window + 1)} tokens. "
        "Please reduce the length of the messages."
    )
    param = "messages" if path.endswith("/chat/completions") else "input"
    return error_body(
        family,
        400,
        message,
        error_type="invalid_request_error",
        param=param,
        code="context_length_exceeded",
    )


def request_id_headers(family: Family) -> dict[str, str]:
    """Fresh request-id headers under the names `family` uses."""
    request_id = f"req_{uuid.uuid4().hex}"
    if family is Family.ANTHROPIC:
        return {"request-id": request_id}
    if family is Family.AZURE:
        return {"x-request-id": request_id, "apim-request-id": str(uuid.uuid4())}
    return {"x-request-id": request_id}
