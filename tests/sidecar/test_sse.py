"""The incremental SSE parser and the encoder."""

from __future__ import annotations

import pytest

from sidelight_sidecar.sse import SSEEvent, SSEParser, encode_sse

ANTHROPIC_STREAM = (
    b"event: message_start\n"
    b'data: {"type":"message_start"}\n'
    b"\n"
    b"event: ping\n"
    b'data: {"type": "ping"}\n'
    b"\n"
    b": a comment\n"
    b"event: content_block_delta\n"
    b'data: {"text":"h\xc3\xa9llo \xe2\x9c\x93"}\n'
    b"\n"
)
ANTHROPIC_EVENTS = [
    SSEEvent("message_start", '{"type":"message_start"}'),
    SSEEvent("ping", '{"type": "ping"}'),
    SSEEvent("content_block_delta", '{"text":"héllo ✓"}'),
]


def _feed_all(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_parses_a_whole_stream() -> None:
    assert _feed_all([ANTHROPIC_STREAM]) == ANTHROPIC_EVENTS


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_other_line_endings(newline: bytes) -> None:
    assert _feed_all([ANTHROPIC_STREAM.replace(b"\n", newline)]) == ANTHROPIC_EVENTS


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_split_point(newline: bytes) -> None:
    stream = ANTHROPIC_STREAM.replace(b"\n", newline)
    for cut in range(len(stream) + 1):
        assert _feed_all([stream[:cut], stream[cut:]]) == ANTHROPIC_EVENTS, cut


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_byte_by_byte(newline: bytes) -> None:
    stream = ANTHROPIC_STREAM.replace(b"\n", newline)
    assert _feed_all([stream[i : i + 1] for i in range(len(stream))]) == ANTHROPIC_EVENTS


def test_events_are_returned_as_soon_as_complete() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: one\n") == []
    assert parser.feed(b"\ndata: tw") == [SSEEvent(None, "one")]
    assert parser.feed(b"o\n\n") == [SSEEvent(None, "two")]


def test_openai_stream_has_no_event_names() -> None:
    assert _feed_all([b'data: {"a":1}\n\ndata: [DONE]\n\n']) == [
        SSEEvent(None, '{"a":1}'),
        SSEEvent(None, "[DONE]"),
    ]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert _feed_all([b"data: a\ndata:b\ndata\ndata:  c\n\n"]) == [SSEEvent(None, "a\nb\n\n c")]


def test_event_name_does_not_leak_into_the_next_event() -> None:
    assert _feed_all([b"event: x\ndata: 1\n\ndata: 2\n\n"]) == [
        SSEEvent("x", "1"),
        SSEEvent(None, "2"),
    ]


def test_events_without_data_are_not_dispatched() -> None:
    assert _feed_all([b"event: x\n\n: only a comment\n\nid: 7\nretry: 10\n\n"]) == []


def test_empty_data_line_dispatches_an_empty_event() -> None:
    assert _feed_all([b"event: ping\ndata:\n\n"]) == [SSEEvent("ping", "")]


def test_unknown_fields_are_ignored() -> None:
    assert _feed_all([b"id: 1\nfoo: bar\nretry: 5\ndata: x\n\n"]) == [SSEEvent(None, "x")]


def test_an_unterminated_event_is_not_dispatched() -> None:
    assert _feed_all([b"data: partial\n"]) == []


def test_leading_byte_order_mark_is_skipped() -> None:
    stream = b"\xef\xbb\xbfdata: x\n\n"
    assert _feed_all([stream[i : i + 1] for i in range(len(stream))]) == [SSEEvent(None, "x")]


def test_invalid_utf8_is_replaced() -> None:
    assert _feed_all([b"data: \xff\n\n"]) == [SSEEvent(None, "\ufffd")]


def test_empty_chunks_change_nothing() -> None:
    assert _feed_all([b"data: x\r", b"", b"\n", b"", b"\n"]) == [SSEEvent(None, "x")]


def test_encode_sse() -> None:
    assert encode_sse(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_sse(b"{}", "message_stop") == b"event: message_stop\ndata: {}\n\n"


@pytest.mark.parametrize("data", [b"a\nb", b"a\r\nb\rc", b"x\n", b"", b"\n"])
def test_encode_round_trips_through_the_parser(data: bytes) -> None:
    expected = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").decode()
    assert SSEParser().feed(encode_sse(data, "e")) == [SSEEvent("e", expected)]
