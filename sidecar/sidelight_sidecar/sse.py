"""Server-Sent Events: an incremental parser and an encoder.

The parser follows the WHATWG event-stream rules that matter to LLM APIs:
lines end in LF, CRLF or a lone CR (also when a CRLF pair is split across
two chunks); a blank line dispatches the event; `data:` lines accumulate,
joined by LF; lines starting with `:` are comments; a single space after the
colon is dropped; a leading byte-order mark is skipped. The `id` and `retry`
fields and unknown fields are ignored: neither the OpenAI nor the Anthropic
stream uses them. An event without any `data:` line is not dispatched, and an
unterminated event at the end of the stream is discarded, as the standard
says.

Chunks may be split at any byte. Only complete lines are decoded, so a UTF-8
sequence cut in two is never decoded half-way. Undecodable bytes become
U+FFFD rather than an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEEvent", "SSEParser", "encode_sse"]

_COLON = 0x3A


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its `event:` name (None when absent) and its data."""

    event: str | None
    data: str


class SSEParser:
    """Turn a byte stream into events; one instance per stream."""

    __slots__ = ("_buffer", "_data", "_event", "_first_line", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._data: list[str] = []
        self._event: str | None = None
        self._first_line = True
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume `chunk` and return the events it completes, in order."""
        if not chunk:
            return []
        if self._skip_lf:
            # The previous chunk ended in CR: an LF here completes that CRLF.
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        if b"\n" not in chunk and b"\r" not in chunk:
            self._buffer += chunk
            return []
        if self._buffer:
            self._buffer += chunk
            chunk = bytes(self._buffer)
            self._buffer.clear()
        lines = chunk.splitlines(keepends=True)
        last = lines[-1][-1]
        if last == 0x0D:
            self._skip_lf = True
        elif last != 0x0A:
            self._buffer += lines.pop()
        events: list[SSEEvent] = []
        for raw in lines:
            line = raw.rstrip(b"\r\n")
            if self._first_line:
                self._first_line = False
                line = line.removeprefix(b"\xef\xbb\xbf")
            if not line:
                if self._data:
                    events.append(SSEEvent(self._event, "\n".join(self._data)))
                    self._data = []
                self._event = None
            elif line[0] != _COLON:
                name, _, value = line.decode("utf-8", "replace").partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if name == "data":
                    self._data.append(value)
                elif name == "event":
                    self._event = value
        return events


def encode_sse(data: bytes, event: str | None = None) -> bytes:
    """Encode one event; `data` containing line breaks becomes several `data:` lines."""
    if b"\n" in data or b"\r" in data:
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        payload = b"".join([b"data: " + line + b"\n" for line in lines])
    else:
        payload = b"data: " + data + b"\n"
    if event is None:
        return payload + b"\n"
    return b"event: " + event.encode() + b"\n" + payload + b"\n"
