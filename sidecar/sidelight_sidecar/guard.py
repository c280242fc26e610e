"""Guardrails in the request path: one `RequestGuard` per request.

The guard runs the input rules over the request body before routing (so
nothing unredacted can reach any backend, retries and fallbacks included),
the output rules over the answer, and puts the caller's redacted values back
into the answer when the guardrail asks for reversible redaction. It keeps
the verdicts of both stages for the spans and the usage record.

Evidence, never the data: a span per guardrail and stage holds the rule
verdicts, entity types and counts and latencies; the request span gets a
redaction receipt (detector set version, entity counts, the hash of the body
actually sent). Matched values live only in the request's `RedactionMap`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry.trace import Span, Tracer, set_span_in_context

from sidelight_proto.v1 import usage_pb2
from sidelight_sidecar.errors import ApiFormat
from sidelight_sidecar.guardrails import (
    Evaluation,
    GuardrailRuntime,
    RedactionMap,
    RuleVerdict,
    Verdict,
)
from sidelight_sidecar.guardrails.detectors import detector_set_version
from sidelight_sidecar.guardrails.texts import request_slots, response_slots
from sidelight_sidecar.sse import encode_sse

BLOCKED = "guardrail_blocked"
BLOCKED_STATUS = 400
GUARDRAIL_HEADER = "x-sidelight-guardrail"
RULE_HEADER = "x-sidelight-guardrail-rule"

_RANK = {Verdict.PASS: 0, Verdict.FLAGGED: 1, Verdict.REDACTED: 2, Verdict.BLOCKED: 3}


class OutputBlocked(Exception):
    """An output rule blocked the answer."""

    def __init__(self, verdict: RuleVerdict) -> None:
        super().__init__(f"{verdict.guardrail} {verdict.rule}")
        self.verdict = verdict


@dataclass
class RequestGuard:
    """The guardrails of one request: its redactions and its verdicts per stage."""

    runtime: GuardrailRuntime
    tracer: Tracer
    parent: Span  # the request's server span: guardrail spans are its children
    redactions: RedactionMap = field(default_factory=RedactionMap)
    input_verdicts: list[RuleVerdict] = field(default_factory=list)
    output_verdicts: list[RuleVerdict] = field(default_factory=list)
    blocked_by: RuleVerdict | None = None
    blocked_stage: str = ""

    def check_input(
        self, body: dict[str, Any], model: str, input_tokens: Callable[[], int]
    ) -> RuleVerdict | None:
        """Run the input rules; redact `body` in place; the blocking verdict, if any."""
        if not self.runtime.input_rules:
            return None
        slots = request_slots(body)
        tokens = input_tokens() if self.runtime.needs_tokens else 0
        evaluation = self.runtime.evaluate_input(slots.texts(), model, tokens, self.redactions)
        self.input_verdicts = list(evaluation.verdicts)
        self._trace("input", evaluation.verdicts, evaluation.latency_us)
        if evaluation.blocked_by is not None:
            self._block(evaluation.blocked_by, "input")
            return evaluation.blocked_by
        if evaluation.redacted:
            slots.replace(evaluation.texts)
        return None

    @property
    def filters_output(self) -> bool:
        """True when answers must be read: output rules, or values to put back."""
        return bool(self.runtime.output_rules) or self.redactions.restorable

    def check_output(self, body: dict[str, Any]) -> RuleVerdict | None:
        """Restore placeholders in a whole answer, then run the output rules, in place.

        The output rules read what the caller would get: a value the caller
        sent, put back by reversible redaction, is still subject to them.
        """
        slots = response_slots(body)
        texts: Sequence[str] = slots.texts()
        if self.redactions.restorable:
            texts = [self.redactions.restore(t) for t in texts]
        if self.runtime.output_rules:
            evaluation = self.runtime.evaluate_output(texts, self.redactions)
            self.output_verdicts = list(evaluation.verdicts)
            self._trace("output", evaluation.verdicts, evaluation.latency_us)
            if evaluation.blocked_by is not None:
                self._block(evaluation.blocked_by, "output")
                return evaluation.blocked_by
            texts = evaluation.texts
        slots.replace(texts)
        return None

    def scan_output(self, text: str) -> Evaluation:
        """Evaluate a piece of a streamed answer; raise OutputBlocked on a block."""
        evaluation = self.runtime.evaluate_output((text,), self.redactions)
        if evaluation.blocked_by is not None:
            self.output_verdicts = merge(self.output_verdicts, evaluation.verdicts)
            self._block(evaluation.blocked_by, "output")
            raise OutputBlocked(evaluation.blocked_by)
        return evaluation

    def settle_stream(self, evaluations: Iterable[Evaluation]) -> None:
        """Record the verdicts of the pieces of a streamed answer, merged per rule."""
        verdicts = self.output_verdicts
        latency = 0.0
        for evaluation in evaluations:
            verdicts = merge(verdicts, evaluation.verdicts)
            latency += evaluation.latency_us
        self.output_verdicts = verdicts
        if verdicts:
            self._trace("output", verdicts, latency)

    def _block(self, verdict: RuleVerdict, stage: str) -> None:
        self.blocked_by = verdict
        self.blocked_stage = stage

    # ------------------------------------------------------------ evidence

    def _trace(self, stage: str, verdicts: Sequence[RuleVerdict], latency_us: float) -> None:
        """One span per guardrail for this stage, its rules as events."""
        end = time.time_ns()
        start = end - int(latency_us * 1000)
        for guardrail, rules in _by_guardrail(verdicts).items():
            span = self.tracer.start_span(
                f"sidelight.guardrail {stage}",
                context=set_span_in_context(self.parent),
                start_time=start,
                attributes={
                    "sidelight.guardrail.name": guardrail,
                    "sidelight.guardrail.stage": stage,
                    "sidelight.guardrail.mode": "audit" if rules[0].audit else "enforce",
                    "sidelight.guardrail.verdict": worst(rules).value,
                    "sidelight.guardrail.rules": [r.rule for r in rules],
                    "sidelight.guardrail.entities": _entity_list(rules),
                    "sidelight.guardrail.latency_us": round(sum(r.latency_us for r in rules), 1),
                },
            )
            for rule in rules:
                span.add_event("sidelight.guardrail.rule", _rule_attributes(rule), timestamp=end)
            span.end(end_time=end)

    def receipt(self, span: Span, sent_body_sha256: str) -> None:
        """The redaction receipt on the request span, when something was redacted."""
        redacted = [v for v in self.input_verdicts if v.verdict is Verdict.REDACTED]
        if not redacted:
            return
        span.set_attributes(
            {
                "sidelight.redaction.detector_set_version": detector_set_version(),
                "sidelight.redaction.entities": _entity_list(redacted),
                "sidelight.redaction.sent_body_sha256": sent_body_sha256,
            }
        )

    def usage_verdicts(self) -> list[usage_pb2.GuardrailVerdict]:
        """The verdicts of both stages, for the usage record."""
        return [
            usage_pb2.GuardrailVerdict(
                guardrail=v.guardrail,
                rule=v.rule,
                action=v.action.value,
                verdict=v.verdict.value,
                entity_counts=dict(v.entities),
            )
            for v in (*self.input_verdicts, *self.output_verdicts)
        ]


def merge(base: Sequence[RuleVerdict], more: Sequence[RuleVerdict]) -> list[RuleVerdict]:
    """Verdicts per rule over several evaluations: the worst verdict, counts summed."""
    merged = {(v.guardrail, v.rule): v for v in base}
    for v in more:
        key = (v.guardrail, v.rule)
        old = merged.get(key)
        if old is None:
            merged[key] = v
            continue
        counts = dict(old.entities)
        for entity, n in v.entities.items():
            counts[entity] = counts.get(entity, 0) + n
        merged[key] = old._replace(
            verdict=max(old.verdict, v.verdict, key=_RANK.__getitem__),
            entities=counts,
            score=max((s for s in (old.score, v.score) if s is not None), default=None),
            latency_us=old.latency_us + v.latency_us,
            detail=old.detail or v.detail,
        )
    return list(merged.values())


def worst(verdicts: Iterable[RuleVerdict]) -> Verdict:
    """The strongest verdict among `verdicts` (PASS when empty)."""
    return max((v.verdict for v in verdicts), key=_RANK.__getitem__, default=Verdict.PASS)


def _by_guardrail(verdicts: Iterable[RuleVerdict]) -> dict[str, list[RuleVerdict]]:
    groups: dict[str, list[RuleVerdict]] = {}
    for v in verdicts:
        groups.setdefault(v.guardrail, []).append(v)
    return groups


def _entity_list(verdicts: Iterable[RuleVerdict]) -> list[str]:
    counts: dict[str, int] = {}
    for v in verdicts:
        for entity, n in v.entities.items():
            counts[entity] = counts.get(entity, 0) + n
    return [f"{entity}={n}" for entity, n in sorted(counts.items())]


def _rule_attributes(rule: RuleVerdict) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "sidelight.guardrail.rule": rule.rule,
        "sidelight.guardrail.action": rule.action.value,
        "sidelight.guardrail.verdict": rule.verdict.value,
        "sidelight.guardrail.entities": _entity_list((rule,)),
        "sidelight.guardrail.latency_us": round(rule.latency_us, 1),
    }
    if rule.verdict is Verdict.FLAGGED:
        attributes["sidelight.guardrail.intended"] = rule.intended.value
    if rule.score is not None:
        attributes["sidelight.guardrail.score"] = rule.score
    if rule.detail:
        attributes["sidelight.guardrail.detail"] = rule.detail
    return attributes


# ---------------------------------------------------------------- errors


def blocked_message(verdict: RuleVerdict, stage: str) -> str:
    """The caller's message for a block: the guardrail and rule, never the data."""
    what = "request" if stage == "input" else "response"
    found = ", ".join(sorted(verdict.entities))
    reason = verdict.detail or (f"found {found}" if found else "")
    return (
        f"The {what} was blocked by guardrail {verdict.guardrail}, rule {verdict.rule}"
        + (f" ({reason})" if reason else "")
        + ". This is the Sidelight proxy, not the model."
    )


def blocked_body(api: ApiFormat, verdict: RuleVerdict, stage: str) -> bytes:
    """A `guardrail_blocked` error body in the caller's format."""
    return orjson.dumps(_blocked_error(api, verdict, stage))


def blocked_stream_event(api: ApiFormat, verdict: RuleVerdict, stage: str) -> bytes:
    """The in-band error event that ends a stream whose continuation was blocked."""
    payload = orjson.dumps(_blocked_error(api, verdict, stage))
    return encode_sse(payload, "error" if api == "anthropic" else None)


def blocked_headers(verdict: RuleVerdict) -> dict[str, str]:
    """Response headers that name the guardrail and the rule."""
    return {GUARDRAIL_HEADER: verdict.guardrail, RULE_HEADER: verdict.rule}


def _blocked_error(api: ApiFormat, verdict: RuleVerdict, stage: str) -> dict[str, Any]:
    error: dict[str, Any] = {"type": BLOCKED, "message": blocked_message(verdict, stage)}
    if api == "openai":
        error.update(param=None, code=BLOCKED)
    error.update(guardrail=verdict.guardrail, rule=verdict.rule, stage=stage)
    if api == "anthropic":
        return {"type": "error", "error": error}
    return {"error": error}
