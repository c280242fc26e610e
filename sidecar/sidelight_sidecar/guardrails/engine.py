"""The guardrail runtime: built once per snapshot version, evaluated per request.

`build_guardrails` turns the wire `Guardrail`s into rules with their
detectors compiled (STYLE principle 2); a guardrail that cannot be built
raises `GuardrailConfigError`, whose message names it, for the NACK.

Per request the caller extracts the message texts and calls
`evaluate_input` (before anything leaves the pod) or `evaluate_output`.
Rules run in order on the original texts. The first rule that blocks ends
the evaluation. Redactions of all rules are applied together at the end,
numbered in one `RedactionMap` for the request. In audit mode (the
guardrail's `audit_only`, or a rule's AUDIT action) a rule that finds
something is FLAGGED and changes nothing; `RuleVerdict.intended` says what
its action would have done. An `Evaluation` holds entity types and counts,
never matched values; only its `RedactionMap` holds those.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from time import perf_counter_ns
from typing import NamedTuple

from sidelight_proto.v1 import snapshot_pb2
from sidelight_sidecar.guardrails.detectors import (
    DenyListDetector,
    Detector,
    DetectorRegistry,
    Finding,
    InjectionDetector,
    PatternDetector,
    UnknownEntityError,
    default_registry,
    resolve_overlaps,
)
from sidelight_sidecar.guardrails.redact import RedactionMap, redact


class GuardrailConfigError(ValueError):
    """A guardrail this sidecar cannot build; the message goes into the NACK."""


class Action(StrEnum):
    """What a rule does when it finds something."""

    BLOCK = "block"
    REDACT = "redact"
    AUDIT = "audit"


class Verdict(StrEnum):
    """What a rule did to this request."""

    PASS = "pass"
    BLOCKED = "blocked"
    REDACTED = "redacted"
    FLAGGED = "flagged"


_ACTIONS = {
    snapshot_pb2.GUARDRAIL_ACTION_UNSPECIFIED: Action.BLOCK,
    snapshot_pb2.GUARDRAIL_ACTION_BLOCK: Action.BLOCK,
    snapshot_pb2.GUARDRAIL_ACTION_REDACT: Action.REDACT,
    snapshot_pb2.GUARDRAIL_ACTION_AUDIT: Action.AUDIT,
}
_INTENDED = {Action.BLOCK: Verdict.BLOCKED, Action.REDACT: Verdict.REDACTED}


class RuleVerdict(NamedTuple):
    """One rule's outcome. `entities` counts findings by type; no values."""

    guardrail: str
    rule: str
    action: Action
    verdict: Verdict
    audit: bool
    entities: Mapping[str, int]
    score: float | None
    latency_us: float
    detail: str = ""

    @property
    def intended(self) -> Verdict:
        """What the action does (or, in audit mode, would have done) on a finding."""
        return _INTENDED.get(self.action, Verdict.FLAGGED)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of one stage for one request."""

    verdicts: tuple[RuleVerdict, ...]
    blocked_by: RuleVerdict | None
    texts: tuple[str, ...] = field(repr=False)  # the texts to send on, redacted
    redactions: RedactionMap = field(repr=False)
    latency_us: float = 0.0
    # Per text, the (start, end) offsets of every finding of every rule, in the
    # original text: where a streamed text may not be cut.
    spans: tuple[tuple[tuple[int, int], ...], ...] = ()

    @property
    def blocked(self) -> bool:
        """True when a rule blocks the request."""
        return self.blocked_by is not None

    @property
    def redacted(self) -> bool:
        """True when some text was changed."""
        return any(v.verdict is Verdict.REDACTED for v in self.verdicts)


class _Hit(NamedTuple):
    findings: tuple[list[Finding], ...] = ()  # per text, without overlaps
    detail: str = ""


_Check = Callable[[Sequence[str], str, int], "_Hit | None"]


def _detect(detectors: tuple[Detector, ...]) -> _Check:
    finders = tuple(d.find for d in detectors)
    if len(finders) == 1:
        (find,) = finders

        def check_one(texts: Sequence[str], model: str, input_tokens: int) -> _Hit | None:
            found = [find(t) for t in texts]
            return _resolved(found) if any(found) else None

        return check_one

    def check(texts: Sequence[str], model: str, input_tokens: int) -> _Hit | None:
        found = [[f for find in finders for f in find(t)] for t in texts]
        return _resolved(found) if any(found) else None

    return check


def _resolved(found: list[list[Finding]]) -> _Hit | None:
    resolved = tuple([resolve_overlaps(f) for f in found])
    return _Hit(resolved) if any(resolved) else None


def _token_limit(limit: int) -> _Check:
    def check(texts: Sequence[str], model: str, input_tokens: int) -> _Hit | None:
        return (
            _Hit(detail=f"input tokens {input_tokens} > {limit}") if input_tokens > limit else None
        )

    return check


def _models(allowed: tuple[str, ...], denied: tuple[str, ...]) -> _Check:
    def check(texts: Sequence[str], model: str, input_tokens: int) -> _Hit | None:
        if any(fnmatch.fnmatchcase(model, p) for p in denied):
            return _Hit(detail=f"model {model!r} is denied")
        if allowed and not any(fnmatch.fnmatchcase(model, p) for p in allowed):
            return _Hit(detail=f"model {model!r} is not allowed")
        return None

    return check


@dataclass(frozen=True, eq=False)
class Rule:
    """One rule of one guardrail, ready to run."""

    guardrail: str
    name: str
    action: Action
    audit: bool
    restore: bool
    check: _Check = field(repr=False)
    input_only: bool = False
    needs_tokens: bool = False


class GuardrailRuntime:
    """The guardrails of one snapshot version, compiled."""

    def __init__(self, input_rules: Sequence[Rule], output_rules: Sequence[Rule]) -> None:
        self.input_rules = tuple(input_rules)
        self.output_rules = tuple(output_rules)

    @property
    def restores(self) -> bool:
        """True when some redacting rule wants its values back in the response."""
        return any(r.restore for r in self.input_rules)

    @property
    def needs_tokens(self) -> bool:
        """True when an input rule reads the request's input token count."""
        return any(r.needs_tokens for r in self.input_rules)

    def __bool__(self) -> bool:
        return bool(self.input_rules or self.output_rules)

    def evaluate_input(
        self,
        texts: Sequence[str],
        model: str,
        input_tokens: int,
        redactions: RedactionMap | None = None,
    ) -> Evaluation:
        """Run the input rules over the request's message texts."""
        return _evaluate(self.input_rules, texts, model, input_tokens, redactions, restoring=True)

    def evaluate_output(
        self, texts: Sequence[str], redactions: RedactionMap | None = None
    ) -> Evaluation:
        """Run the output rules over the response's texts.

        Values redacted here are never restorable: a placeholder in the answer
        stands for what the model said, and only the caller's own values go back.
        """
        return _evaluate(self.output_rules, texts, "", 0, redactions, restoring=False)


def _evaluate(
    rules: Sequence[Rule],
    texts: Sequence[str],
    model: str,
    input_tokens: int,
    redactions: RedactionMap | None,
    *,
    restoring: bool,
) -> Evaluation:
    started = perf_counter_ns()
    mapping = redactions if redactions is not None else RedactionMap()
    verdicts: list[RuleVerdict] = []
    to_redact: list[list[Finding]] | None = None
    found_at: list[list[tuple[int, int]]] | None = None
    restorable: set[Finding] = set()
    blocked_by: RuleVerdict | None = None
    t0 = started
    for rule in rules:
        hit = rule.check(texts, model, input_tokens)
        if hit is None:
            t1 = perf_counter_ns()
            verdicts.append(
                _new_verdict(
                    (
                        rule.guardrail,
                        rule.name,
                        rule.action,
                        _PASS,
                        rule.audit,
                        {},
                        None,
                        (t1 - t0) / 1000,
                        "",
                    )
                )
            )
            t0 = t1
            continue
        verdict = _verdict(rule)
        findings = hit.findings
        if findings:
            if found_at is None:
                found_at = [[] for _ in texts]
            for at, found in zip(found_at, findings, strict=False):
                at.extend([f[:2] for f in found])  # (start, end)
            if verdict is _REDACTED:
                if to_redact is None:
                    to_redact = [[] for _ in texts]
                for pending, found in zip(to_redact, findings, strict=True):
                    pending.extend(found)
                    if rule.restore and restoring:
                        restorable.update(found)
        entities, score = _counts(findings), _score(findings)
        t1 = perf_counter_ns()
        result = _new_verdict(
            (
                rule.guardrail,
                rule.name,
                rule.action,
                verdict,
                rule.audit,
                entities,
                score,
                (t1 - t0) / 1000,
                hit.detail,
            )
        )
        t0 = t1
        verdicts.append(result)
        if verdict is _BLOCKED:
            blocked_by = result
            break
    out = tuple(texts)
    if blocked_by is None and to_redact is not None and any(to_redact):
        out = tuple(
            [
                redact(text, found, mapping, restorable=restorable or False)
                for text, found in zip(texts, to_redact, strict=True)
            ]
        )
    return Evaluation(
        verdicts=tuple(verdicts),
        blocked_by=blocked_by,
        texts=out,
        redactions=mapping,
        latency_us=(perf_counter_ns() - started) / 1000,
        spans=tuple([tuple(at) for at in found_at]) if found_at else ((),) * len(texts),
    )


_PASS, _BLOCKED, _REDACTED = Verdict.PASS, Verdict.BLOCKED, Verdict.REDACTED


def _new_verdict(fields: tuple[object, ...]) -> RuleVerdict:
    """A `RuleVerdict` from all its fields, without the Python-level `__new__` (it is per rule)."""
    return tuple.__new__(RuleVerdict, fields)


def _verdict(rule: Rule) -> Verdict:
    """What a rule that found something does."""
    if rule.audit or rule.action is Action.AUDIT:
        return Verdict.FLAGGED
    return _INTENDED[rule.action]


def _counts(findings: tuple[list[Finding], ...]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for found in findings:
        for f in found:
            counts[f.entity] = counts.get(f.entity, 0) + 1
    return counts


def _score(findings: tuple[list[Finding], ...]) -> float | None:
    if not findings:
        return None
    return max([f.score for found in findings for f in found])


# ------------------------------------------------------------------ build


def build_guardrails(
    guardrails: Iterable[snapshot_pb2.Guardrail], registry: DetectorRegistry | None = None
) -> GuardrailRuntime:
    """Compile the snapshot's guardrails, in order, into a runtime."""
    registry = registry if registry is not None else default_registry()
    input_rules: list[Rule] = []
    output_rules: list[Rule] = []
    for guardrail in guardrails:
        ref = f"{guardrail.source.namespace}/{guardrail.source.name}"
        for i, spec in enumerate(guardrail.rules):
            try:
                rule = _build_rule(ref, spec, i, guardrail, registry)
            except (ValueError, re.error) as exc:
                raise GuardrailConfigError(f"guardrail {ref} rule {spec.name or i}: {exc}") from exc
            stage = guardrail.stage
            if stage != snapshot_pb2.GUARDRAIL_STAGE_OUTPUT:
                input_rules.append(rule)
            if stage in (snapshot_pb2.GUARDRAIL_STAGE_OUTPUT, snapshot_pb2.GUARDRAIL_STAGE_BOTH):
                if stage == snapshot_pb2.GUARDRAIL_STAGE_OUTPUT and rule.input_only:
                    raise GuardrailConfigError(
                        f"guardrail {ref} rule {rule.name}: applies to the input only"
                    )
                if not rule.input_only:
                    output_rules.append(rule)
    return GuardrailRuntime(input_rules, output_rules)


def _build_rule(
    ref: str,
    spec: snapshot_pb2.GuardrailRule,
    index: int,
    guardrail: snapshot_pb2.Guardrail,
    registry: DetectorRegistry,
) -> Rule:
    kind = spec.WhichOneof("kind")
    action = _ACTIONS[spec.action]
    input_only = kind in ("max_input_tokens", "models")
    if input_only and action is Action.REDACT:
        raise ValueError(f"a {kind} rule cannot redact")
    check: _Check
    if kind == "pii":
        try:
            detectors = registry.build(spec.pii.entities or sorted(registry.entities))
        except UnknownEntityError as exc:
            raise ValueError(str(exc)) from exc
        check = _detect(detectors)
    elif kind == "pattern":
        if not spec.pattern.regexes:
            raise ValueError("a pattern rule needs at least one regex")
        check = _detect((PatternDetector(spec.pattern.regexes, spec.pattern.entity or "PATTERN"),))
    elif kind == "deny_list":
        check = _detect((DenyListDetector(spec.deny_list.phrases),))
    elif kind == "prompt_injection":
        check = _detect((InjectionDetector(),))
    elif kind == "max_input_tokens":
        check = _token_limit(spec.max_input_tokens)
    elif kind == "models":
        check = _models(tuple(spec.models.allowed), tuple(spec.models.denied))
    else:
        raise ValueError("a rule needs a kind")
    return Rule(
        guardrail=ref,
        name=spec.name or f"rule-{index}",
        action=action,
        audit=guardrail.audit_only,
        restore=guardrail.restore_redactions,
        check=check,
        input_only=input_only,
        needs_tokens=kind == "max_input_tokens",
    )
