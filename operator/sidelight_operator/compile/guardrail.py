"""One Guardrail's spec to one `snapshot_pb2.Guardrail`: stage, mode and ordered rules.

Every check of the CRD schema and its CEL rules is repeated here, because the
standalone file source has no API server to run them, and so are the checks
no schema can make: each regex must compile with Python's `re` (the
sidecar's engine). Anything the sidecar's `build_guardrails` would refuse is
refused here first, so that one broken Guardrail is left out with a
diagnostic instead of making every sidecar it reaches NACK the whole
snapshot. Defaults are written out: stage input, mode enforce, no restore,
pattern entity PATTERN. An empty or absent `pii.entities` stays empty: it
means every entity the sidecar's detectors know.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from sidelight_operator.compile.reader import Reader, child
from sidelight_operator.compile.routes import MAX_MODEL, MAX_TOKENS
from sidelight_operator.compile.selection import read_selector
from sidelight_proto.v1 import snapshot_pb2

STAGES = {
    "input": snapshot_pb2.GUARDRAIL_STAGE_INPUT,
    "output": snapshot_pb2.GUARDRAIL_STAGE_OUTPUT,
    "both": snapshot_pb2.GUARDRAIL_STAGE_BOTH,
}
MODES = ("enforce", "audit")
ACTIONS = {
    "block": snapshot_pb2.GUARDRAIL_ACTION_BLOCK,
    "redact": snapshot_pb2.GUARDRAIL_ACTION_REDACT,
    "audit": snapshot_pb2.GUARDRAIL_ACTION_AUDIT,
}
# The sidecar's detector registry reports exactly these (a contract test checks it).
PII_ENTITIES = (
    "EMAIL",
    "PHONE",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN",
    "IP_ADDRESS",
    "DATE_OF_BIRTH",
    "SECRET",
)
RULE_KINDS = ("pii", "pattern", "denyList", "promptInjection", "maxInputTokens", "models")
INPUT_ONLY = ("maxInputTokens", "models")

DEFAULT_STAGE = "input"
DEFAULT_MODE = "enforce"
DEFAULT_ENTITY = "PATTERN"

MAX_RULES = 64
MAX_NAME = 63
MAX_ENTITIES = len(PII_ENTITIES)
MAX_REGEXES = 16
MAX_REGEX = 1000
MAX_ENTITY = 63
MAX_PHRASES = 128
MAX_PHRASE = 200
MAX_MODELS = 64
MAX_LENGTHS = {
    "entities": 32,
    "regexes": MAX_REGEX,
    "phrases": MAX_PHRASE,
    "allowed": MAX_MODEL,
    "denied": MAX_MODEL,
}

RULE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
RULE_NAME_MESSAGE = (
    "must be lower-case letters, digits and '-', and start and end with a letter or digit"
)
ENTITY = re.compile(r"[A-Z][A-Z0-9_]*")
ENTITY_MESSAGE = "must be upper-case letters, digits and '_', starting with a letter (EMPLOYEE_ID)"
LETTER_OR_DIGIT = re.compile(r"[^\W_]")
ONE_KIND = "set exactly one of pii, pattern, denyList, promptInjection, maxInputTokens or models"

SPEC_FIELDS = ("podSelector", "stage", "mode", "restoreRedactions", "rules")
RULE_FIELDS = ("name", "action", *RULE_KINDS)


def build_guardrail(
    source: snapshot_pb2.ResourceRef, spec: object, reader: Reader
) -> snapshot_pb2.Guardrail:
    """The Guardrail of one resource; problems go to `reader`, values to the result."""
    guardrail = snapshot_pb2.Guardrail(source=source)
    s = reader.obj(spec, "spec", SPEC_FIELDS, required=("rules",))
    if s is None:
        return guardrail
    if "podSelector" in s:
        read_selector(reader, s["podSelector"], "spec.podSelector")
    stage = reader.string(s, "stage", "spec", max_length=8, enum=STAGES) or DEFAULT_STAGE
    mode = reader.string(s, "mode", "spec", max_length=8, enum=MODES) or DEFAULT_MODE
    guardrail.stage = STAGES[stage]
    guardrail.audit_only = mode == "audit"
    guardrail.restore_redactions = bool(reader.boolean(s, "restoreRedactions", "spec"))
    items = reader.array(s, "rules", "spec", min_items=1, max_items=MAX_RULES)
    names: dict[str, str] = {}
    for i, item in enumerate(items):
        path = f"spec.rules[{i}]"
        rule = _rule(reader, item, path, stage)
        if rule is None:
            continue
        if rule.name in names:
            also = f"{rule.name!r} (also {names[rule.name]})"
            reader.problems.error(child(path, "name"), f"duplicate rule name {also}")
        elif rule.name:
            names[rule.name] = path
        guardrail.rules.append(rule)
    if guardrail.restore_redactions:
        _check_restore(reader, guardrail, stage, mode)
    return guardrail


def _rule(
    reader: Reader, value: object, path: str, stage: str
) -> snapshot_pb2.GuardrailRule | None:
    r = reader.obj(value, path, RULE_FIELDS, required=("name", "action"))
    if r is None:
        return None
    name = reader.string(
        r, "name", path, max_length=MAX_NAME, pattern=RULE_NAME, pattern_message=RULE_NAME_MESSAGE
    )
    action = reader.string(r, "action", path, max_length=8, enum=ACTIONS)
    rule = snapshot_pb2.GuardrailRule(
        name=name or "",
        action=ACTIONS.get(action or "", snapshot_pb2.GUARDRAIL_ACTION_UNSPECIFIED),
    )
    kinds = [k for k in RULE_KINDS if k in r]
    if len(kinds) != 1:
        reader.problems.error(path, ONE_KIND)
    for kind in kinds:
        _KINDS[kind](reader, r, path, rule)
    input_only = [k for k in kinds if k in INPUT_ONLY]
    if input_only and action == "redact":
        reader.problems.error(
            child(path, "action"), f"{input_only[0]} rules cannot redact; use block or audit"
        )
    if input_only and stage == "output":
        reader.problems.error(
            path,
            f"{input_only[0]} rules check the request; "
            "they cannot be in a guardrail with stage output",
        )
    return rule


def _pii(reader: Reader, r: Mapping[str, Any], path: str, rule: snapshot_pb2.GuardrailRule) -> None:
    where = child(path, "pii")
    p = reader.obj(r["pii"], where, ("entities",))
    rule.pii.SetInParent()
    if p is not None:
        rule.pii.entities.extend(
            _strings(reader, p, "entities", where, max_items=MAX_ENTITIES, check=_entity)
        )


def _pattern(
    reader: Reader, r: Mapping[str, Any], path: str, rule: snapshot_pb2.GuardrailRule
) -> None:
    where = child(path, "pattern")
    p = reader.obj(r["pattern"], where, ("regexes", "entity"), required=("regexes",))
    rule.pattern.SetInParent()
    if p is None:
        return
    rule.pattern.regexes.extend(
        _strings(reader, p, "regexes", where, max_items=MAX_REGEXES, min_items=1, check=_regex)
    )
    entity = reader.string(
        p, "entity", where, max_length=MAX_ENTITY, pattern=ENTITY, pattern_message=ENTITY_MESSAGE
    )
    rule.pattern.entity = entity or DEFAULT_ENTITY


def _deny_list(
    reader: Reader, r: Mapping[str, Any], path: str, rule: snapshot_pb2.GuardrailRule
) -> None:
    where = child(path, "denyList")
    d = reader.obj(r["denyList"], where, ("phrases",), required=("phrases",))
    rule.deny_list.SetInParent()
    if d is not None:
        rule.deny_list.phrases.extend(
            _strings(reader, d, "phrases", where, max_items=MAX_PHRASES, min_items=1, check=_phrase)
        )


def _prompt_injection(
    reader: Reader, r: Mapping[str, Any], path: str, rule: snapshot_pb2.GuardrailRule
) -> None:
    reader.obj(r["promptInjection"], child(path, "promptInjection"), ())
    rule.prompt_injection.SetInParent()


def _max_input_tokens(
    reader: Reader, r: Mapping[str, Any], path: str, rule: snapshot_pb2.GuardrailRule
) -> None:
    limit = reader.integer(r, "maxInputTokens", path, minimum=1, maximum=MAX_TOKENS)
    rule.max_input_tokens = limit or 0


def _models(
    reader: Reader, r: Mapping[str, Any], path: str, rule: snapshot_pb2.GuardrailRule
) -> None:
    where = child(path, "models")
    m = reader.obj(r["models"], where, ("allowed", "denied"))
    rule.models.SetInParent()
    if m is None:
        return
    if not m:
        reader.problems.error(where, "must set allowed or denied (or both)")
    for key, target in (("allowed", rule.models.allowed), ("denied", rule.models.denied)):
        target.extend(_strings(reader, m, key, where, max_items=MAX_MODELS, min_items=1))


_KINDS: dict[str, Callable[[Reader, Mapping[str, Any], str, snapshot_pb2.GuardrailRule], None]] = {
    "pii": _pii,
    "pattern": _pattern,
    "denyList": _deny_list,
    "promptInjection": _prompt_injection,
    "maxInputTokens": _max_input_tokens,
    "models": _models,
}


def _entity(value: str) -> str | None:
    return None if value in PII_ENTITIES else f"must be one of: {', '.join(PII_ENTITIES)}"


def _regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    return None


def _phrase(value: str) -> str | None:
    return None if LETTER_OR_DIGIT.search(value) else "a phrase needs at least one letter or digit"


def _strings(
    reader: Reader,
    m: Mapping[str, Any],
    key: str,
    path: str,
    *,
    max_items: int,
    min_items: int = 0,
    check: Callable[[str], str | None] = lambda _: None,
) -> list[str]:
    """The valid items of a list of distinct non-empty strings within `MAX_LENGTHS[key]`.

    `check` returns what is wrong with an item, or None.
    """
    items = reader.array(m, key, path, min_items=min_items, max_items=max_items)
    max_length = MAX_LENGTHS[key]
    found: list[str] = []
    first: dict[str, int] = {}
    for k, item in enumerate(items):
        where = f"{child(path, key)}[{k}]"
        problem = None
        if not isinstance(item, str):
            problem = "must be a string"
        elif not item:
            problem = "must not be empty"
        elif len(item) > max_length:
            problem = f"must be at most {max_length} characters"
        elif item in first:
            problem = f"duplicate of {key}[{first[item]}]"
        else:
            first[item] = k
            problem = check(item)
        if problem is None:
            found.append(item)
        else:
            reader.problems.error(where, problem)
    return found


def _check_restore(
    reader: Reader, guardrail: snapshot_pb2.Guardrail, stage: str, mode: str
) -> None:
    """restoreRedactions is for values the input rules redacted: warn when there are none."""
    where = "spec.restoreRedactions"
    if stage == "output":
        reader.problems.warning(where, "has no effect: only input redactions are restored")
    elif mode == "audit":
        reader.problems.warning(where, "has no effect: in mode audit nothing is redacted")
    elif not any(r.action == snapshot_pb2.GUARDRAIL_ACTION_REDACT for r in guardrail.rules):
        reader.problems.warning(where, "has no effect: no rule redacts")
