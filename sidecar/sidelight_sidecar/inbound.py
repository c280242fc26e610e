"""The caller's side: read and check a request, answer errors in its format.

Every refusal is a 4xx with an error body shaped like the API the caller
spoke (OpenAI or Anthropic), so the official SDKs raise their usual
exceptions. Routing hints come from headers first, then from the body's
`metadata`: a header wins, because a platform can set headers for a whole
workload while a body is one call. The hint keys are removed from
`metadata` before the request goes upstream (providers reject unknown keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from sidelight_sidecar.errors import ApiFormat, error_body
from sidelight_sidecar.upstream import Operation

TASK_TYPE_HEADER = "x-sidelight-task-type"
PRIORITY_HEADER = "x-sidelight-priority"
TASK_TYPE_METADATA = "sidelight_task_type"
PRIORITY_METADATA = "sidelight_priority"


class BadRequest(Exception):
    """A request the sidecar refuses before routing."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def error_response(
    api_format: ApiFormat,
    status: int,
    message: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An error in the caller's API format."""
    return web.Response(
        status=status,
        body=error_body(api_format, status, message, code),
        content_type="application/json",
        headers=headers,
    )


@dataclass
class Inbound:
    """A checked request."""

    body: dict[str, Any]
    model: str
    stream: bool
    wants_usage: bool
    task_type: str | None
    priority: str | None


async def read_inbound(request: web.Request, op: Operation) -> Inbound:
    """Read, parse and check a request body; raise BadRequest when it is unusable."""
    if request.content_type != "application/json":
        raise BadRequest(415, "Content-Type must be application/json")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise BadRequest(413, "request body is larger than the sidecar accepts") from exc
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(400, "request body is not valid JSON in UTF-8") from exc
    if not isinstance(body, dict):
        raise BadRequest(400, "request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest(
            400, "'model' is required and must be a string", "missing_required_parameter"
        )
    _check_shape(body, op)
    stream = body.get("stream") is True
    options = body.get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    task_type, priority = _hints(request, body)
    return Inbound(body, model, stream, wants_usage, task_type, priority)


def _check_shape(body: dict[str, Any], op: Operation) -> None:
    if op in (Operation.CHAT, Operation.MESSAGES):
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest(400, "'messages' must be a non-empty array")
        if not all(isinstance(m, dict) for m in messages):
            raise BadRequest(400, "every item of 'messages' must be an object")
    if op is Operation.MESSAGES:
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise BadRequest(400, "max_tokens: field required (a positive integer)")
    if op in (Operation.EMBEDDINGS, Operation.RESPONSES) and body.get("input") in (None, "", []):
        raise BadRequest(400, "'input' is required")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise BadRequest(400, "'stream' must be a boolean")


def _hints(request: web.Request, body: dict[str, Any]) -> tuple[str | None, str | None]:
    task_type = request.headers.get(TASK_TYPE_HEADER)
    priority = request.headers.get(PRIORITY_HEADER)
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        meta_task = metadata.pop(TASK_TYPE_METADATA, None)
        meta_priority = metadata.pop(PRIORITY_METADATA, None)
        if not metadata:
            del body["metadata"]
        if task_type is None and isinstance(meta_task, str):
            task_type = meta_task
        if priority is None and isinstance(meta_priority, str):
            priority = meta_priority
    return task_type or None, priority or None
