"""Typed placeholders, their numbering, and putting values back (also when streamed)."""

from __future__ import annotations

import pytest

from sidelight_sidecar.guardrails import Finding, RedactionMap, StreamRestorer, redact
from sidelight_sidecar.guardrails.redact import placeholder_type


def f(text: str, value: str, entity: str, nth: int = 0) -> Finding:
    start = -1
    for _ in range(nth + 1):
        start = text.index(value, start + 1)
    return Finding(start, start + len(value), entity, "test")


@pytest.mark.parametrize(
    ("entity", "kind"),
    [
        ("CREDIT_CARD", "CARD"),
        ("US_SSN", "SSN"),
        ("IP_ADDRESS", "IP"),
        ("DATE_OF_BIRTH", "DOB"),
        ("EMAIL", "EMAIL"),
        ("PHONE", "PHONE"),
        ("IBAN", "IBAN"),
        ("SECRET", "SECRET"),
        ("employee-id", "EMPLOYEE_ID"),
    ],
)
def test_placeholder_types(entity: str, kind: str) -> None:
    assert placeholder_type(entity) == kind


def test_numbering_is_per_type_and_consistent_across_messages() -> None:
    mapping = RedactionMap()
    one = "mail a@x.io and b@x.io, card 4111 1111 1111 1111"
    two = "again A@X.IO; card 4111-1111-1111-1111"
    out_one = redact(
        one,
        [
            f(one, "a@x.io", "EMAIL"),
            f(one, "b@x.io", "EMAIL"),
            f(one, "4111 1111 1111 1111", "CREDIT_CARD"),
        ],
        mapping,
    )
    out_two = redact(
        two, [f(two, "A@X.IO", "EMAIL"), f(two, "4111-1111-1111-1111", "CREDIT_CARD")], mapping
    )
    assert out_one == "mail <EMAIL_1> and <EMAIL_2>, card <CARD_1>"
    assert out_two == "again <EMAIL_1>; card <CARD_1>"
    assert mapping.counts() == {"EMAIL": 2, "CARD": 1}
    assert mapping.restore(out_one) == one


def test_overlapping_findings_keep_the_longest() -> None:
    text = "IBAN DE89 3704 0044 0532 0130 00"
    findings = [
        f(text, "0044 0532 0130 00", "PHONE"),
        f(text, "DE89 3704 0044 0532 0130 00", "IBAN"),
    ]
    assert redact(text, findings, RedactionMap()) == "IBAN <IBAN_1>"


def test_unrestorable_values_stay_redacted() -> None:
    mapping = RedactionMap()
    text = "key sk-abc and mail a@x.io"
    secret = f(text, "sk-abc", "SECRET")
    out = redact(text, [secret, f(text, "a@x.io", "EMAIL")], mapping, restorable=set())
    assert mapping.restore(out) == out
    out = redact(text, [secret, f(text, "a@x.io", "EMAIL")], mapping, restorable={secret})
    assert mapping.restore(out) == "key sk-abc and mail <EMAIL_1>"


def test_restore_leaves_unknown_placeholders_alone() -> None:
    mapping = RedactionMap()
    mapping.placeholder("EMAIL", "a@x.io")
    assert mapping.restore("<EMAIL_1> <EMAIL_2> <b>") == "a@x.io <EMAIL_2> <b>"


def test_repr_never_shows_values() -> None:
    mapping = RedactionMap()
    mapping.placeholder("SECRET", "sk-very-secret")
    assert "sk-very-secret" not in repr(mapping)
    assert "sk-very-secret" not in str(mapping)


def _stream(mapping: RedactionMap, chunks: list[str]) -> tuple[str, list[str]]:
    restorer = StreamRestorer(mapping)
    emitted = [restorer.feed(chunk) for chunk in chunks]
    emitted.append(restorer.flush())
    return "".join(emitted), emitted


def test_stream_restorer_handles_every_split_point() -> None:
    mapping = RedactionMap()
    mapping.placeholder("EMAIL", "jane@example.com")
    mapping.placeholder("CREDIT_CARD", "4111 1111 1111 1111")
    answer = "Write to <EMAIL_1> about card <CARD_1>; a < b and <i>x</i>."
    expected = "Write to jane@example.com about card 4111 1111 1111 1111; a < b and <i>x</i>."
    for i in range(len(answer)):
        for j in range(i, len(answer)):
            text, _ = _stream(mapping, [answer[:i], answer[i:j], answer[j:]])
            assert text == expected


def test_stream_restorer_holds_back_only_a_possible_placeholder() -> None:
    mapping = RedactionMap()
    mapping.placeholder("EMAIL", "jane@example.com")
    _, emitted = _stream(mapping, ["Hello <EM", "AIL_1> and <not a tag", " ok"])
    assert emitted == ["Hello ", "jane@example.com and <not a tag", " ok", ""]
    _, emitted = _stream(mapping, ["unfinished <EMAIL_"])
    assert emitted == ["unfinished ", "<EMAIL_"]
