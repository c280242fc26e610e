"""How to address a backend: URL, credential headers, and nothing of the caller's.

Upstream headers are built fresh for every attempt. The caller's
`Authorization` and `x-api-key` (a placeholder in a pod) never go upstream;
the backend's key goes in the provider's header. Only `anthropic-version` and
`anthropic-beta` are carried over from an Anthropic-format caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from sidelight_sidecar.errors import ApiFormat
from sidelight_sidecar.runtime import Backend, Provider

ANTHROPIC_VERSION = "2023-06-01"
USER_AGENT = "sidelight-sidecar/0.1"


class Operation(Enum):
    """An API operation the sidecar serves, with its wire format."""

    CHAT = ("openai", "chat")
    EMBEDDINGS = ("openai", "embeddings")
    RESPONSES = ("openai", "responses")
    MESSAGES = ("anthropic", "chat")

    @property
    def api_format(self) -> ApiFormat:
        """The caller's wire format."""
        return "anthropic" if self is Operation.MESSAGES else "openai"

    @property
    def gen_ai_operation(self) -> str:
        """The `gen_ai.operation.name` of this operation."""
        return {"chat": "chat", "embeddings": "embeddings", "responses": "chat"}[self.value[1]]


_OPENAI_PATHS = {
    Operation.CHAT: "/chat/completions",
    Operation.MESSAGES: "/chat/completions",
    Operation.EMBEDDINGS: "/embeddings",
    Operation.RESPONSES: "/responses",
}


def upstream_url(backend: Backend, endpoint: str, op: Operation) -> str:
    """The URL of `op` on `endpoint` of `backend` (the op as the backend speaks it)."""
    if backend.provider is Provider.ANTHROPIC:
        return endpoint + ("/messages" if endpoint.endswith("/v1") else "/v1/messages")
    path = _OPENAI_PATHS[op]
    if backend.provider is Provider.AZURE_OPENAI:
        return (
            f"{endpoint}/openai/deployments/{backend.model}{path}?api-version={backend.api_version}"
        )
    return endpoint + path


def upstream_headers(
    backend: Backend, caller: Mapping[str, str], traceparent: str | None
) -> dict[str, str]:
    """Headers for one attempt to `backend`."""
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "user-agent": USER_AGENT,
    }
    if traceparent:
        headers["traceparent"] = traceparent
    if backend.provider is Provider.ANTHROPIC:
        headers["anthropic-version"] = caller.get("anthropic-version", ANTHROPIC_VERSION)
        beta = caller.get("anthropic-beta")
        if beta:
            headers["anthropic-beta"] = beta
        if backend.key:
            headers["x-api-key"] = backend.key
    elif backend.provider is Provider.AZURE_OPENAI:
        if backend.key:
            headers["api-key"] = backend.key
    elif backend.key:
        headers["authorization"] = f"Bearer {backend.key}"
    return headers
