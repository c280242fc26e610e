"""The fake provider's aiohttp application: routes, and what happens before a handler runs.

Routes:

- OpenAI: `POST /v1/chat/completions`, `POST /v1/embeddings`,
  `POST /v1/responses`, `GET /v1/models`.
- Azure OpenAI: `POST /openai/deployments/{deployment}/chat/completions` and
  `.../embeddings`, with `?api-version=` required.
- Anthropic: `POST /v1/messages`.
- Admin: `/_fake/faults` and `/_fake/requests` (see `admin`).

Before a provider handler runs, in this order: the request is recorded; the
first matching fault rule is taken, and its `latency_ms`, `status` or
`context_length_exceeded` applied; the key is checked when the state expects
one (`Authorization: Bearer` for OpenAI; `api-key` for Azure; `x-api-key`, or
`Authorization: Bearer` as the anthropic SDK sends it, for Anthropic);
Azure's `api-version` is required; a POST body must be a JSON object.
Unknown paths get a 404 in the format of the family the path belongs to.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from sidelight_fake_provider.admin import STATE, add_admin_routes
from sidelight_fake_provider.anthropic_messages import messages
from sidelight_fake_provider.content import count_tokens_like_fake
from sidelight_fake_provider.delivery import CALL, Call, send_error, send_json
from sidelight_fake_provider.errors import (
    Family,
    context_length_body,
    default_error_body,
    request_id_headers,
)
from sidelight_fake_provider.faults import FaultRule
from sidelight_fake_provider.openai_chat import chat_completions, embeddings, models
from sidelight_fake_provider.openai_responses import responses
from sidelight_fake_provider.state import FakeState, RecordedRequest

__all__ = ["build_app"]

MAX_BODY_BYTES = 64 * 1024 * 1024
_NOT_JSON = object()


def build_app(state: FakeState) -> web.Application:
    """The application that plays the provider described by `state`."""
    app = web.Application(middlewares=[_provider], client_max_size=MAX_BODY_BYTES)
    app[STATE] = state
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/v1/responses", responses)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/messages", messages)
    azure = "/openai/deployments/{deployment}"
    app.router.add_post(f"{azure}/chat/completions", chat_completions)
    app.router.add_post(f"{azure}/embeddings", embeddings)
    add_admin_routes(app)
    return app


@web.middleware
async def _provider(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/_fake/"):
        return await handler(request)
    state = request.app[STATE]
    raw = await request.read()
    parsed = _parse(raw)
    state.record(
        RecordedRequest(
            endpoint_name=state.name,
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=None if parsed is _NOT_JSON else parsed,
            time=time.time(),
        )
    )
    body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    model = body.get("model")
    if not isinstance(model, str):
        model = request.match_info.get("deployment", "")
    fault = state.take_fault(request.path, model or None)
    call = Call(request, state, Family.of_path(request.path), body, model, fault)
    request[CALL] = call
    if fault is not None:
        refusal = await _apply_fault(call, fault)
        if refusal is not None:
            return refusal
    denial = _denial(call)
    if denial is not None:
        return await send_error(call, 401, denial[0], code=denial[1])
    if call.family is Family.AZURE and "api-version" not in request.query:
        return await send_error(call, 404, "Resource not found")
    if request.method == "POST" and not isinstance(parsed, dict):
        return await send_error(call, 400, "We could not parse the JSON body of your request.")
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return await _not_found(call)
    except web.HTTPMethodNotAllowed:
        return await _not_found(call)


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _NOT_JSON


async def _apply_fault(call: Call, fault: FaultRule) -> web.StreamResponse | None:
    """Sleep and answer an error as the rule says; None lets the request go on."""
    if fault.latency_ms:
        await asyncio.sleep(fault.latency_ms / 1000)
    headers = {"retry-after": fault.retry_after} if fault.retry_after is not None else {}
    if fault.status is not None and isinstance(fault.body, str):
        headers.update(request_id_headers(call.family))
        return web.Response(text=fault.body, status=fault.status, headers=headers)
    if fault.status is not None:
        body = (
            fault.body if fault.body is not None else default_error_body(call.family, fault.status)
        )
        return await send_json(call, body, status=fault.status, headers=headers)
    if fault.context_length_exceeded:
        tokens = count_tokens_like_fake(call.body)
        body = context_length_body(call.family, call.request.path, tokens)
        return await send_json(call, body, status=400, headers=headers)
    return None


def _denial(call: Call) -> tuple[str, str | None] | None:
    """The 401 message and code when a key is expected and not given, else None."""
    expected = call.state.api_keys.get(call.family.value)
    if expected is None:
        return None
    headers = call.request.headers
    if call.family is Family.ANTHROPIC:
        bearer = headers.get("Authorization", "").removeprefix("Bearer ") or None
        given = headers.get("x-api-key", bearer)
        if given is None:
            return "x-api-key header is required", None
        return None if given == expected else ("invalid x-api-key", None)
    if call.family is Family.AZURE:
        if headers.get("api-key") == expected:
            return None
        return (
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription and use a correct regional API "
            "endpoint for your resource.",
            None,
        )
    authorization = headers.get("Authorization")
    if authorization is None:
        return (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            None,
        )
    if authorization == f"Bearer {expected}":
        return None
    given = authorization.removeprefix("Bearer ")
    masked = f"{given[:3]}{'*' * max(len(given) - 7, 0)}{given[-4:] if len(given) > 7 else ''}"
    return (
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_api_key",
    )


async def _not_found(call: Call) -> web.StreamResponse:
    if call.family is Family.OPENAI:
        message = f"Invalid URL ({call.request.method} {call.request.path})"
        return await send_error(call, 404, message, error_type="invalid_request_error")
    return await send_error(
        call, 404, "Not Found" if call.family is Family.ANTHROPIC else "Resource not found"
    )
