"""The per-request pipeline: route, call the provider, retry, fall back, settle.

Hot path (STYLE principle 12): the body is parsed once (orjson), the
payload for a backend is serialised once per request and reused by retries,
same-format answers pass through as the provider's bytes, and telemetry
(spans, usage records) is handed off to batching queues.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from sidelight_proto.v1 import usage_pb2
from sidelight_sidecar.attempt import AttemptResult, Exchange, run_attempt, visibility_headers
from sidelight_sidecar.config_store import ConfigStore
from sidelight_sidecar.errors import translate_error_body
from sidelight_sidecar.guard import (
    BLOCKED,
    BLOCKED_STATUS,
    RequestGuard,
    blocked_body,
    blocked_headers,
)
from sidelight_sidecar.identity import Identity
from sidelight_sidecar.inbound import BadRequest, error_response, read_inbound
from sidelight_sidecar.quota import QuotaGate
from sidelight_sidecar.quota.check import check_quota, settle_quota
from sidelight_sidecar.retry import Outcome
from sidelight_sidecar.runtime import Backend, Decision, Provider, RequestFacts, RuntimeConfig
from sidelight_sidecar.tokens import TokenCounter
from sidelight_sidecar.upstream import Operation
from sidelight_sidecar.usage import UsageQueue


@dataclass(frozen=True)
class Settings:
    """Knobs of the proxy."""

    max_body_bytes: int = 10 * 1024 * 1024
    default_max_tokens: int = 4096  # for OpenAI-format requests sent to Anthropic
    capture_content: bool = False  # prompts and completions never reach spans unless set


@dataclass
class Proxy:
    """Serves API operations from the current configuration."""

    store: ConfigStore
    counter: TokenCounter
    session: aiohttp.ClientSession
    usage: UsageQueue
    identity: Identity
    tracer: Tracer
    settings: Settings = field(default_factory=Settings)
    rng: random.Random = field(default_factory=random.Random)
    quota: QuotaGate | None = None

    async def handle(self, request: web.Request, op: Operation) -> web.StreamResponse:
        """Serve one API request."""
        started = time.perf_counter()
        with self.tracer.start_as_current_span(
            f"{request.method} {request.path}",
            context=extract(request.headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "url.path": request.path},
        ) as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            ex = Exchange(request=request, op=op, span=span, trace_id=trace_id)
            try:
                response = await self._serve(ex)
            finally:  # whatever happened, the budget held is released
                if self.quota is not None and ex.quota.holds:
                    settle_quota(self.quota, ex)
            ex.status = response.status
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            self._record(ex, started)
            return response

    async def _serve(self, ex: Exchange) -> web.StreamResponse:
        fmt = ex.op.api_format
        config = self.store.current
        if config is None:
            return error_response(fmt, 503, "the sidecar has no configuration yet")
        ex.config_version = config.version
        try:
            inbound = await read_inbound(ex.request, ex.op)
        except BadRequest as exc:
            ex.error_type = "bad_request"
            return error_response(fmt, exc.status, exc.message, exc.code, visibility_headers(ex))
        ex.inbound = inbound
        ex.span.set_attribute("sidelight.requested_model", inbound.model)
        if config.guardrails:
            ex.guard = RequestGuard(config.guardrails, self.tracer, ex.span)
            blocked = ex.guard.check_input(
                inbound.body, inbound.model, lambda: self._input_tokens(ex)
            )
            if blocked is not None:
                ex.error_type = BLOCKED
                ex.error_source = "guardrail"
                return web.Response(
                    status=BLOCKED_STATUS,
                    body=blocked_body(fmt, blocked, "input"),
                    content_type="application/json",
                    headers={**visibility_headers(ex), **blocked_headers(blocked)},
                )
        decision = self._route(ex, config)
        if decision is None:
            ex.error_type = "model_not_found"
            return error_response(
                fmt,
                404,
                f"The model '{inbound.model}' does not exist: no route matches it",
                "model_not_found",
                visibility_headers(ex),
            )
        ex.decision = decision
        candidates = [b for b in decision.route.candidates if _serves(b, ex.op)]
        if not candidates:
            ex.error_type = "unsupported_operation"
            return error_response(
                fmt,
                400,
                f"route '{decision.route.name}' has no backend that serves this operation",
                headers=visibility_headers(ex),
            )
        if self.quota is not None and config.quotas:
            checked = await check_quota(
                self.quota, ex, config, candidates, self._input_tokens(ex), _serves
            )
            if isinstance(checked, web.Response):
                return checked
            decision, candidates = checked
        return await self._call(ex, decision, candidates)

    def _route(self, ex: Exchange, config: RuntimeConfig) -> Decision | None:
        inbound = ex.inbound
        assert inbound is not None
        with self.tracer.start_as_current_span("sidelight.route") as span:
            facts = RequestFacts(
                model=inbound.model,
                task_type=inbound.task_type,
                priority=inbound.priority,
                headers=ex.request.headers,
                input_tokens=lambda: self._input_tokens(ex),
            )
            decision = config.route(facts)
            if inbound.task_type:
                span.set_attribute("sidelight.task_type", inbound.task_type)
            if inbound.priority:
                span.set_attribute("sidelight.user_priority", inbound.priority)
            if ex.counted_input_tokens is not None:
                span.set_attribute("sidelight.input_tokens.counted", ex.counted_input_tokens)
            if decision is None:
                span.set_attribute("sidelight.route.matched", False)
                return None
            route = decision.route
            span.set_attributes(
                {
                    "sidelight.route.matched": True,
                    "sidelight.route_set": route.route_set,
                    "sidelight.route": route.name,
                    "sidelight.route.direct": decision.direct,
                    "sidelight.route.candidates": [b.name for b in route.candidates],
                }
            )
            return decision

    def _input_tokens(self, ex: Exchange) -> int:
        """The request's input tokens, counted once, when first needed."""
        if ex.counted_input_tokens is None:
            assert ex.inbound is not None
            ex.counted_input_tokens = self.counter.count_chat(ex.inbound.body, ex.inbound.model)
        return ex.counted_input_tokens

    async def _call(
        self, ex: Exchange, decision: Decision, candidates: list[Backend]
    ) -> web.StreamResponse:
        policy = decision.policy
        deadline = time.monotonic() + policy.request_timeout_s
        last: AttemptResult | None = None
        for index, backend in enumerate(candidates):
            if index:
                ex.span.add_event(
                    "sidelight.fallback",
                    {
                        "sidelight.fallback.from": candidates[index - 1].name,
                        "sidelight.fallback.to": backend.name,
                        "sidelight.fallback.reason": last.reason if last else "",
                    },
                )
            for attempt in range(policy.attempts):
                if attempt:
                    assert last is not None
                    delay = max(policy.backoff.delay(attempt, self.rng), last.retry_after or 0.0)
                    if time.monotonic() + delay >= deadline:
                        break
                    ex.span.add_event(
                        "sidelight.retry",
                        {
                            "sidelight.backend": backend.name,
                            "sidelight.retry.attempt": attempt + 1,
                            "sidelight.retry.reason": last.reason,
                            "sidelight.retry.delay_s": round(delay, 4),
                        },
                    )
                    await asyncio.sleep(delay)
                if time.monotonic() >= deadline:
                    break
                result = await run_attempt(self, ex, backend, policy, deadline, index)
                last = result
                if result.outcome is Outcome.SUCCESS:
                    assert result.response is not None
                    return result.response
                if result.outcome is Outcome.FAIL:
                    return self._upstream_error(ex, result)
                if result.outcome is Outcome.FALLBACK:
                    break
        return self._exhausted(ex, last)

    def _upstream_error(self, ex: Exchange, result: AttemptResult) -> web.Response:
        """Pass an upstream error through in the caller's format, with its status."""
        assert result.backend is not None
        ex.error_type = result.reason
        ex.served = result.backend
        ex.error_source = "upstream"
        body = translate_error_body(
            result.body,
            result.status,
            result.backend.provider.api_format,
            ex.op.api_format,
        )
        return web.Response(
            status=result.status,
            body=body,
            content_type="application/json",
            headers=visibility_headers(ex),
        )

    def _exhausted(self, ex: Exchange, last: AttemptResult | None) -> web.Response:
        if last is not None and last.status:
            return self._upstream_error(ex, last)
        reason = last.reason if last else "deadline"
        ex.error_type = reason
        status = 504 if reason in ("timeout", "deadline") else 502
        message = (
            "no provider answered in time"
            if status == 504
            else "no provider could be reached or the answer was malformed"
        )
        return error_response(ex.op.api_format, status, message, headers=visibility_headers(ex))

    def _record(self, ex: Exchange, started: float) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        inbound = ex.inbound
        decision = ex.decision
        served = ex.served
        cost = 0.0
        if served is not None and served.price is not None:
            cost = served.price.cost(ex.input_tokens, ex.output_tokens)
        span = ex.span
        span.set_attributes(
            {
                "sidelight.attempts": ex.attempts,
                "sidelight.fallback": ex.fallback,
                "gen_ai.usage.input_tokens": ex.input_tokens,
                "gen_ai.usage.output_tokens": ex.output_tokens,
                "sidelight.cost_usd": cost,
                "sidelight.config_version": ex.config_version,
            }
        )
        if served is not None:
            span.set_attributes(
                {"sidelight.backend": served.name, "sidelight.served_model": served.model}
            )
        if ex.error_type:
            span.set_attribute("error.type", ex.error_type)
        guard = ex.guard
        if guard is not None:
            guard.receipt(span, ex.sent_sha256)
            if guard.blocked_by is not None:
                span.set_attributes(
                    {
                        "sidelight.guardrail.blocked_by": guard.blocked_by.guardrail,
                        "sidelight.guardrail.blocked_rule": guard.blocked_by.rule,
                        "sidelight.guardrail.blocked_stage": guard.blocked_stage,
                    }
                )
        now = Timestamp()
        now.GetCurrentTime()
        ident = self.identity
        record = usage_pb2.UsageRecord(
            id=f"{ex.trace_id}-{format(span.get_span_context().span_id, '016x')}",
            time=now,
            identity=usage_pb2.Identity(
                namespace=ident.namespace,
                pod=ident.pod,
                workload=ident.workload,
                team=ident.team,
                application=ident.application,
                environment=ident.environment,
            ),
            api_format=ex.op.api_format,
            endpoint=ex.op.name.lower(),
            requested_model=inbound.model if inbound else "",
            served_model=served.model if served else "",
            backend=served.name if served else "",
            route_set=decision.route.route_set if decision else "",
            route=decision.route.name if decision else "",
            attempts=ex.attempts,
            fallback=ex.fallback,
            input_tokens=ex.input_tokens,
            output_tokens=ex.output_tokens,
            cost_usd=cost,
            latency_ms=latency_ms,
            status=ex.status,
            error_type=ex.error_type,
            trace_id=ex.trace_id,
            stream=bool(inbound and inbound.stream),
            snapshot_version=ex.config_version,
            guardrails=guard.usage_verdicts() if guard is not None else (),
        )
        self.usage.submit(record)


def _serves(backend: Backend, op: Operation) -> bool:
    if op in (Operation.CHAT, Operation.MESSAGES):
        return True
    if op is Operation.RESPONSES:
        return backend.provider in (Provider.OPENAI, Provider.OPENAI_COMPATIBLE)
    return backend.provider is not Provider.ANTHROPIC
