"""One provider attempt: send, classify, and answer the caller on success.

A stream is committed to the caller only when its first translated event is
ready: until then any failure (status, connection, timeout, a stream cut or
malformed before its first event) lets the proxy retry or fall back. After
the first byte, a failure ends the stream with an in-band error event in the
caller's format.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp import web
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from sidelight_sidecar.errors import (
    ApiFormat,
    anthropic_stream_error,
    error_body,
    openai_stream_error,
)
from sidelight_sidecar.guard import (
    BLOCKED,
    BLOCKED_STATUS,
    OutputBlocked,
    RequestGuard,
    blocked_body,
    blocked_headers,
    blocked_stream_event,
)
from sidelight_sidecar.guard_stream import GuardedTranscoder
from sidelight_sidecar.inbound import Inbound
from sidelight_sidecar.quota import FREE, Reservation
from sidelight_sidecar.quota.meter import OutputLimitReached, QuotaMeter
from sidelight_sidecar.quota.request import QUOTA_EXCEEDED, quota_stream_error
from sidelight_sidecar.retry import Outcome, classify_status, parse_retry_after
from sidelight_sidecar.runtime import Backend, Decision, Policy, Provider
from sidelight_sidecar.sse import SSEParser
from sidelight_sidecar.streams import MalformedStream, Transcoder, transcoder_for
from sidelight_sidecar.translate import (
    TranslationError,
    anthropic_to_openai_chat,
    anthropic_to_openai_chat_response,
    anthropic_usage,
    openai_chat_to_anthropic,
    openai_chat_to_anthropic_response,
    openai_usage,
)
from sidelight_sidecar.upstream import Operation, upstream_headers, upstream_url

if TYPE_CHECKING:
    from sidelight_sidecar.proxy import Proxy

_PROPAGATOR = TraceContextTextMapPropagator()
_GEN_AI_PROVIDER = {
    Provider.OPENAI: "openai",
    Provider.AZURE_OPENAI: "azure.ai.openai",
    Provider.ANTHROPIC: "anthropic",
    Provider.OPENAI_COMPATIBLE: "openai",
}


@dataclass
class Exchange:
    """The state of one caller request across its attempts."""

    request: web.Request
    op: Operation
    span: Span
    trace_id: str
    inbound: Inbound | None = None
    decision: Decision | None = None
    config_version: str = ""
    counted_input_tokens: int | None = None
    attempts: int = 0
    served: Backend | None = None
    fallback: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    status: int = 0
    error_type: str = ""
    error_source: str = "proxy"  # who produced an error answer: proxy, guardrail or upstream
    payloads: dict[str, bytes] = field(default_factory=dict)
    guard: RequestGuard | None = None
    sent_sha256: str = ""  # of the last body sent to a provider, for the redaction receipt
    quota: Reservation = FREE  # budget held for this request until it is settled


@dataclass
class AttemptResult:
    """How one attempt ended."""

    outcome: Outcome
    reason: str
    backend: Backend | None = None
    status: int = 0
    body: bytes = b""
    retry_after: float | None = None
    response: web.StreamResponse | None = None


class _StreamCut(Exception):
    """The upstream stream ended before its terminal event."""


def visibility_headers(ex: Exchange) -> dict[str, str]:
    """Response headers that say what the proxy did."""
    headers = {"x-sidelight-trace-id": ex.trace_id}
    if ex.config_version:
        headers["x-sidelight-config-version"] = ex.config_version
    if ex.decision is not None:
        headers["x-sidelight-route-set"] = ex.decision.route.route_set
        headers["x-sidelight-route"] = ex.decision.route.name
    if ex.served is not None:
        headers["x-sidelight-backend"] = ex.served.name
        headers["x-sidelight-model"] = ex.served.model
    headers["x-sidelight-fallback"] = "true" if ex.fallback else "false"
    if ex.error_type:
        headers["x-sidelight-error-source"] = ex.error_source
    headers["x-sidelight-attempts"] = str(ex.attempts)
    return headers


def build_payload(ex: Exchange, backend: Backend, default_max_tokens: int) -> bytes:
    """The request body for `backend`, serialised once per request and backend."""
    cached = ex.payloads.get(backend.name)
    if cached is not None:
        return cached
    inbound = ex.inbound
    assert inbound is not None
    backend_format = backend.provider.api_format
    body: dict[str, Any]
    if ex.op.api_format == backend_format:
        body = dict(inbound.body)
        body["model"] = backend.model
    elif backend_format == "anthropic":
        body = openai_chat_to_anthropic(inbound.body, backend.model, default_max_tokens)
    else:
        body = anthropic_to_openai_chat(inbound.body, backend.model)
    if inbound.stream and backend_format == "openai" and ex.op is not Operation.RESPONSES:
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body["stream_options"] = options
    payload = orjson.dumps(body)
    ex.payloads[backend.name] = payload
    return payload


async def run_attempt(
    proxy: Proxy, ex: Exchange, backend: Backend, policy: Policy, deadline: float, index: int
) -> AttemptResult:
    """Make one call to `backend`; on success the caller has been answered."""
    inbound = ex.inbound
    assert inbound is not None
    ex.attempts += 1
    endpoint = backend.balancer.pick()
    url = upstream_url(backend, endpoint.url, ex.op)
    try:
        payload = build_payload(ex, backend, proxy.settings.default_max_tokens)
    except TranslationError as exc:
        # The caller's request has no equivalent in this backend's format: try the
        # next backend; if none is left the caller gets this 400.
        message = f"backend '{backend.name}' cannot take this request: {exc}"
        return AttemptResult(
            Outcome.FALLBACK,
            "untranslatable_request",
            backend,
            400,
            error_body(backend.provider.api_format, 400, message),
        )
    parts = urlsplit(endpoint.url)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": ex.op.gen_ai_operation,
        "gen_ai.provider.name": _GEN_AI_PROVIDER[backend.provider],
        "gen_ai.request.model": backend.model,
        "server.address": parts.hostname or "",
        "sidelight.backend": backend.name,
        "sidelight.endpoint": endpoint.url,
        "sidelight.attempt": ex.attempts,
        "sidelight.fallback_index": index,
    }
    if parts.port:
        attributes["server.port"] = parts.port
    if ex.guard is not None:
        ex.sent_sha256 = hashlib.sha256(payload).hexdigest()
        attributes["sidelight.request.body_sha256"] = ex.sent_sha256
    max_tokens = inbound.body.get("max_tokens") or inbound.body.get("max_completion_tokens")
    if isinstance(max_tokens, int):
        attributes["gen_ai.request.max_tokens"] = max_tokens
    with proxy.tracer.start_as_current_span(
        f"{ex.op.gen_ai_operation} {backend.model}", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        headers = upstream_headers(backend, ex.request.headers, carrier.get("traceparent"))
        backend.balancer.started(endpoint)
        started = time.monotonic()
        first_byte: float | None = None
        ok = False
        try:
            budget = min(policy.attempt_timeout_s, deadline - started)
            if budget <= 0:
                return _failed(span, backend, "deadline", Outcome.RETRY)
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=policy.connect_timeout_s)
            async with asyncio.timeout(budget):
                upstream = await proxy.session.post(
                    url, data=payload, headers=headers, timeout=timeout
                )
                first_byte = time.monotonic() - started
                span.set_attribute("http.response.status_code", upstream.status)
                if upstream.status >= 300 or not inbound.stream:
                    body = await upstream.read()
                    upstream.release()
            if upstream.status >= 300:
                outcome = classify_status(upstream.status, body)
                retry_after = parse_retry_after(upstream.headers)
                span.set_status(Status(StatusCode.ERROR))
                span.set_attribute("error.type", str(upstream.status))
                return AttemptResult(
                    outcome, f"http_{upstream.status}", backend, upstream.status, body, retry_after
                )
            ex.served = backend
            ex.fallback = index > 0
            if inbound.stream:
                result = await _stream(proxy, ex, backend, upstream, span, policy)
            else:
                result = _complete(ex, backend, body, span)
            ok = result.outcome is Outcome.SUCCESS
            return result
        except TimeoutError:
            return _failed(span, backend, "timeout", Outcome.RETRY)
        except (aiohttp.ClientError, OSError) as exc:
            return _failed(span, backend, f"connection_error:{type(exc).__name__}", Outcome.RETRY)
        finally:
            backend.balancer.finished(endpoint, ok, first_byte)


def _failed(span: Span, backend: Backend, reason: str, outcome: Outcome) -> AttemptResult:
    span.set_status(Status(StatusCode.ERROR))
    span.set_attribute("error.type", reason.split(":", 1)[0])
    return AttemptResult(outcome, reason.split(":", 1)[0], backend)


def _usage_of(backend: Backend, op: Operation, obj: dict[str, Any]) -> tuple[int, int]:
    if backend.provider is Provider.ANTHROPIC:
        return anthropic_usage(obj)
    if op is Operation.RESPONSES:
        usage = obj.get("usage") or {}
        return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    return openai_usage(obj)


def _complete(ex: Exchange, backend: Backend, body: bytes, span: Span) -> AttemptResult:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        ex.served = None
        return _failed(span, backend, "malformed_response", Outcome.RETRY)
    if not isinstance(obj, dict):
        ex.served = None
        return _failed(span, backend, "malformed_response", Outcome.RETRY)
    ex.input_tokens, ex.output_tokens = _usage_of(backend, ex.op, obj)
    _response_attributes(span, ex, obj)
    translated = ex.op.api_format != backend.provider.api_format
    if translated:
        try:
            obj = (
                anthropic_to_openai_chat_response(obj, backend.model)
                if ex.op.api_format == "openai"
                else openai_chat_to_anthropic_response(obj, backend.model)
            )
        except TranslationError:
            ex.served = None
            return _failed(span, backend, "malformed_response", Outcome.RETRY)
    guard = ex.guard
    if guard is not None and guard.filters_output:
        blocked = guard.check_output(obj)
        if blocked is not None:
            return _blocked_answer(ex, backend)
        body = orjson.dumps(obj)
    elif translated:
        body = orjson.dumps(obj)
    response = web.Response(
        status=200, body=body, content_type="application/json", headers=visibility_headers(ex)
    )
    return AttemptResult(Outcome.SUCCESS, "ok", backend, 200, response=response)


def _blocked_answer(ex: Exchange, backend: Backend) -> AttemptResult:
    """The caller's answer when an output rule blocked the provider's whole answer."""
    guard = ex.guard
    assert guard is not None
    assert guard.blocked_by is not None
    ex.error_type = BLOCKED
    ex.error_source = "guardrail"
    response = web.Response(
        status=BLOCKED_STATUS,
        body=blocked_body(ex.op.api_format, guard.blocked_by, "output"),
        content_type="application/json",
        headers={**visibility_headers(ex), **blocked_headers(guard.blocked_by)},
    )
    return AttemptResult(Outcome.SUCCESS, BLOCKED, backend, BLOCKED_STATUS, response=response)


def _response_attributes(span: Span, ex: Exchange, obj: dict[str, Any]) -> None:
    span.set_attributes(
        {
            "gen_ai.usage.input_tokens": ex.input_tokens,
            "gen_ai.usage.output_tokens": ex.output_tokens,
        }
    )
    model = obj.get("model")
    if isinstance(model, str):
        span.set_attribute("gen_ai.response.model", model)
    response_id = obj.get("id")
    if isinstance(response_id, str):
        span.set_attribute("gen_ai.response.id", response_id)
    reasons: list[str] = []
    stop = obj.get("stop_reason")
    if isinstance(stop, str):
        reasons.append(stop)
    for choice in obj.get("choices") or ():
        if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str):
            reasons.append(choice["finish_reason"])
    if reasons:
        span.set_attribute("gen_ai.response.finish_reasons", reasons)


async def _chunks(upstream: aiohttp.ClientResponse, idle_s: float) -> AsyncIterator[bytes]:
    """Upstream body chunks, each awaited at most `idle_s`."""
    while True:
        async with asyncio.timeout(idle_s):
            chunk = await upstream.content.readany()
        if not chunk:
            return
        yield chunk


async def _stream(
    proxy: Proxy,
    ex: Exchange,
    backend: Backend,
    upstream: aiohttp.ClientResponse,
    span: Span,
    policy: Policy,
) -> AttemptResult:
    inbound = ex.inbound
    assert inbound is not None
    transcoder: Transcoder = transcoder_for(
        ex.op.api_format,
        backend.provider.api_format,
        backend.model,
        inbound.wants_usage,
        responses=ex.op is Operation.RESPONSES,
    )
    guarded: GuardedTranscoder | None = None
    if ex.guard is not None and ex.guard.filters_output:
        transcoder = guarded = GuardedTranscoder(
            transcoder, ex.guard, ex.op.api_format, responses=ex.op is Operation.RESPONSES
        )
    limit = ex.quota.max_output_tokens if ex.quota.holds else None
    if limit is not None:
        transcoder = QuotaMeter(
            transcoder,
            limit,
            backend.provider.api_format,
            responses=ex.op is Operation.RESPONSES,
        )
    parser = SSEParser()
    downstream: web.StreamResponse | None = None
    try:
        try:
            async for chunk in _chunks(upstream, policy.attempt_timeout_s):
                out: list[bytes] = []
                for event in parser.feed(chunk):
                    if downstream is None and _is_error_event(event.event, event.data):
                        raise MalformedStream("upstream stream opened with an error event")
                    out.extend(transcoder.feed(event))
                if not out:
                    continue
                if downstream is None:
                    downstream = web.StreamResponse(
                        status=200,
                        headers={
                            "content-type": "text/event-stream",
                            "cache-control": "no-cache",
                            **visibility_headers(ex),
                        },
                    )
                    await downstream.prepare(ex.request)
                await downstream.write(b"".join(out))
            if not transcoder.finished:
                raise _StreamCut("upstream stream ended before its last event")
        except (
            _StreamCut,
            MalformedStream,
            TranslationError,
            aiohttp.ClientError,
            TimeoutError,
        ) as exc:
            ex.input_tokens, ex.output_tokens = transcoder.usage
            if downstream is None:
                ex.served = None
                ex.fallback = False
                return _failed(span, backend, _stream_reason(exc), Outcome.RETRY)
            ex.error_type = _stream_reason(exc)
            span.set_status(Status(StatusCode.ERROR))
            span.set_attribute("error.type", ex.error_type)
            await downstream.write(_stream_error(ex.op.api_format, str(exc)))
            await downstream.write_eof()
            return AttemptResult(Outcome.SUCCESS, ex.error_type, backend, 200, response=downstream)
    except OutputLimitReached as reached:
        ex.input_tokens, ex.output_tokens = transcoder.usage
        ex.output_tokens = max(ex.output_tokens, reached.limit)  # what the provider may bill
        ex.error_type = QUOTA_EXCEEDED
        ex.error_source = "quota"
        span.set_attribute("error.type", QUOTA_EXCEEDED)
        if downstream is None:
            body = error_body(backend.provider.api_format, 502, str(reached))
            return AttemptResult(Outcome.FAIL, QUOTA_EXCEEDED, backend, 502, body)
        await downstream.write(quota_stream_error(ex.op.api_format, str(reached)))
        await downstream.write_eof()
        return AttemptResult(Outcome.SUCCESS, QUOTA_EXCEEDED, backend, 200, response=downstream)
    except OutputBlocked as blocked:
        ex.input_tokens, ex.output_tokens = transcoder.usage
        if downstream is None:
            return _blocked_answer(ex, backend)
        ex.error_type = BLOCKED
        ex.error_source = "guardrail"
        await downstream.write(blocked_stream_event(ex.op.api_format, blocked.verdict, "output"))
        await downstream.write_eof()
        return AttemptResult(Outcome.SUCCESS, BLOCKED, backend, 200, response=downstream)
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        ex.error_type = "client_disconnected"
        ex.input_tokens, ex.output_tokens = transcoder.usage
        assert downstream is not None
        return AttemptResult(Outcome.SUCCESS, ex.error_type, backend, 499, response=downstream)
    finally:
        upstream.release()
        if guarded is not None:
            guarded.settle()
    ex.input_tokens, ex.output_tokens = transcoder.usage
    span.set_attributes(
        {
            "gen_ai.usage.input_tokens": ex.input_tokens,
            "gen_ai.usage.output_tokens": ex.output_tokens,
        }
    )
    assert downstream is not None
    await downstream.write_eof()
    return AttemptResult(Outcome.SUCCESS, "ok", backend, 200, response=downstream)


def _stream_error(api_format: ApiFormat, message: str) -> bytes:
    if api_format == "anthropic":
        return anthropic_stream_error(message, "api_error")
    return openai_stream_error(message, "server_error")


def _is_error_event(name: str | None, data: str) -> bool:
    return name == "error" or data.startswith('{"error"')


def _stream_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, (MalformedStream, TranslationError)):
        return "malformed_stream"
    if isinstance(exc, _StreamCut):
        return "stream_cut"
    return "connection_error"
