"""Text slots of bodies, and output guardrails over text cut into arbitrary chunks."""

from __future__ import annotations

import random
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from sidelight_proto.v1 import snapshot_pb2 as pb
from sidelight_sidecar.guard import OutputBlocked, RequestGuard
from sidelight_sidecar.guard_stream import HOLDBACK, TextFilter
from sidelight_sidecar.guardrails import build_guardrails
from sidelight_sidecar.guardrails.texts import request_slots, response_slots

CARD = "4111 1111 1111 1111"
EMAIL = "ada@example.com"
TRACER = TracerProvider().get_tracer("test")


def output_guard(
    action: pb.GuardrailAction.ValueType, *, restore_email: bool = False
) -> RequestGuard:
    rules = [
        pb.GuardrailRule(name="cards", action=action, pii=pb.PiiRule(entities=["CREDIT_CARD"]))
    ]
    guardrails = [
        pb.Guardrail(
            source=pb.ResourceRef(namespace="ns", name="out"),
            stage=pb.GUARDRAIL_STAGE_OUTPUT,
            rules=rules,
        )
    ]
    if restore_email:
        guardrails.append(
            pb.Guardrail(
                source=pb.ResourceRef(namespace="ns", name="in"),
                stage=pb.GUARDRAIL_STAGE_INPUT,
                restore_redactions=True,
                rules=[
                    pb.GuardrailRule(
                        name="mail",
                        action=pb.GUARDRAIL_ACTION_REDACT,
                        pii=pb.PiiRule(entities=["EMAIL"]),
                    )
                ],
            )
        )
    parent = TRACER.start_span("request")
    return RequestGuard(build_guardrails(guardrails), TRACER, parent)


def chunks(text: str, rng: random.Random) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(text):
        n = rng.randint(1, 9)
        out.append(text[i : i + n])
        i += n
    return out


def run(text_filter: TextFilter, pieces: list[str]) -> str:
    return "".join(text_filter.feed(p) for p in pieces) + text_filter.finish()


@pytest.mark.parametrize("seed", range(20))
def test_a_card_split_anywhere_is_redacted(seed: int) -> None:
    rng = random.Random(seed)
    before = " ".join(f"a{i}" for i in range(rng.randint(0, 120)))
    after = " ".join(f"b{i}" for i in range(rng.randint(0, 120)))
    text = f"{before} {CARD} {after} {CARD}"
    guard = output_guard(pb.GUARDRAIL_ACTION_REDACT)
    text_filter = TextFilter(guard)
    assert run(text_filter, chunks(text, rng)) == f"{before} <CARD_1> {after} <CARD_1>"
    guard.settle_stream(text_filter.evaluations)
    (verdict,) = guard.output_verdicts
    assert verdict.entities == {"CREDIT_CARD": 2}


@pytest.mark.parametrize("seed", range(10))
def test_a_block_stops_before_any_of_the_value_went_out(seed: int) -> None:
    rng = random.Random(seed)
    text = " ".join(f"w{i}" for i in range(rng.randint(0, 150))) + f" {CARD} tail"
    text_filter = TextFilter(output_guard(pb.GUARDRAIL_ACTION_BLOCK))
    out: list[str] = []

    def drain() -> None:
        out.extend(text_filter.feed(piece) for piece in chunks(text, rng))
        out.append(text_filter.finish())

    with pytest.raises(OutputBlocked):
        drain()
    released = "".join(out)
    assert "1111" not in released
    assert text.startswith(released)


def test_text_is_held_back_only_by_the_holdback() -> None:
    text_filter = TextFilter(output_guard(pb.GUARDRAIL_ACTION_REDACT))
    released = "".join(text_filter.feed("x" * 10 + " ") for _ in range(100))
    assert 1100 - HOLDBACK - 80 <= len(released) <= 1100 - HOLDBACK


@pytest.mark.parametrize("seed", range(10))
def test_restored_values_are_checked_by_the_output_rules(seed: int) -> None:
    guard = output_guard(pb.GUARDRAIL_ACTION_REDACT, restore_email=True)
    body: dict[str, Any] = {"messages": [{"role": "user", "content": f"to {EMAIL}"}]}
    assert guard.check_input(body, "m", lambda: 0) is None
    assert body["messages"][0]["content"] == "to <EMAIL_1>"
    rng = random.Random(seed)
    answer = f"writing to <EMAIL_1> with card {CARD} ok"
    assert (
        run(TextFilter(guard), chunks(answer, rng)) == f"writing to {EMAIL} with card <CARD_1> ok"
    )


def test_request_slots_cover_text_and_skip_what_must_not_change() -> None:
    body: dict[str, Any] = {
        "model": "m",
        "system": [{"type": "text", "text": "sys"}],
        "messages": [
            {"role": "user", "content": "hello"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "part"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
                ],
            },
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"q": "args"}'},
                    }
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "secret plan", "signature": "sig"},
                    {"type": "tool_use", "id": "t", "name": "f", "input": {"q": "tool input"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": "result"}],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "f", "description": "schema text"}}],
    }
    slots = request_slots(body)
    assert slots.texts() == ["sys", "hello", "part", '{"q": "args"}', "tool input", "result"]
    slots.replace([t.upper() for t in slots.texts()])
    assert body["messages"][3]["content"][0]["thinking"] == "secret plan"
    assert body["messages"][3]["content"][1]["input"] == {"q": "TOOL INPUT"}
    assert body["tools"][0]["function"]["description"] == "schema text"


def test_embedding_and_responses_inputs_are_slots() -> None:
    assert request_slots({"input": ["one", "two", [1, 2]]}).texts() == ["one", "two"]
    body = {
        "instructions": "be brief",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
    }
    assert request_slots(body).texts() == ["hi", "be brief"]


def test_response_slots_of_both_formats() -> None:
    openai_answer = {
        "id": "x",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "answer"},
            }
        ],
        "usage": {"prompt_tokens": 1},
    }
    assert response_slots(openai_answer).texts() == ["answer"]
    anthropic_answer = {
        "id": "m",
        "content": [{"type": "text", "text": "answer"}],
        "stop_reason": "end_turn",
    }
    assert response_slots(anthropic_answer).texts() == ["answer"]
