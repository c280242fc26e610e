"""Sending answers: JSON bodies and server-sent event streams, with stream faults applied.

`parse_events` reads such a stream back, for tests that check the raw wire.

A handler builds its whole answer first (the content is deterministic), then
hands it here. This is where `first_byte_latency_ms`, `cut_after_chunks` and
`malformed_chunk_at` take effect, so every endpoint gets them the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from sidelight_fake_provider.errors import Family, error_body, request_id_headers
from sidelight_fake_provider.faults import FaultRule
from sidelight_fake_provider.state import FakeState

__all__ = [
    "CALL",
    "DONE",
    "Call",
    "Event",
    "parse_events",
    "send_error",
    "send_events",
    "send_json",
]

DONE = "[DONE]"
"""OpenAI's terminal data line; a `str` payload is sent as is, not as JSON."""

MALFORMED_DATA = b'{"this is not": json'


@dataclass(frozen=True)
class Call:
    """A provider request as its handler sees it."""

    request: web.Request
    state: FakeState
    family: Family
    body: dict[str, Any]
    """The JSON object body; empty for a GET."""
    model: str
    """The request's `model`, else the Azure deployment, else empty."""
    fault: FaultRule | None


CALL = web.RequestKey("sidelight_fake_provider.call", Call)


@dataclass(frozen=True)
class Event:
    """One server-sent event: an optional `event:` name and a JSON (or raw string) payload."""

    payload: object
    name: str | None = None

    def encode(self, *, malformed: bool = False) -> bytes:
        """The event on the wire, with a non-JSON data line when `malformed`."""
        if malformed:
            data = MALFORMED_DATA
        elif isinstance(self.payload, str):
            data = self.payload.encode()
        else:
            data = orjson.dumps(self.payload)
        head = b"event: " + self.name.encode() + b"\n" if self.name else b""
        return head + b"data: " + data + b"\n\n"


def parse_events(text: str) -> list[Event]:
    """The events of a stream body as `send_events` writes it, for tests reading raw bytes.

    A data line that is not JSON stays a `str` payload (`[DONE]`, a malformed chunk).
    """
    events = []
    for block in text.split("\n\n"):
        name = None
        data = None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
        if data is not None:
            try:
                events.append(Event(orjson.loads(data), name=name))
            except orjson.JSONDecodeError:
                events.append(Event(data, name=name))
    return events


async def send_json(
    call: Call, payload: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    """A JSON response with the family's request-id headers."""
    data = orjson.dumps(payload)
    all_headers = {**request_id_headers(call.family), **(headers or {})}
    delay = call.fault.first_byte_latency_ms if call.fault else 0
    if not delay:
        return web.Response(
            body=data, status=status, headers=all_headers, content_type="application/json"
        )
    response = web.StreamResponse(status=status, headers=all_headers)
    response.content_type = "application/json"
    response.content_length = len(data)
    await response.prepare(call.request)
    await asyncio.sleep(delay / 1000)
    await response.write(data)
    await response.write_eof()
    return response


async def send_error(
    call: Call,
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    param: str | None = None,
    code: str | None = None,
) -> web.StreamResponse:
    """An error in the family's format."""
    body = error_body(call.family, status, message, error_type=error_type, param=param, code=code)
    return await send_json(call, body, status=status)


async def send_events(call: Call, events: Sequence[Event]) -> web.StreamResponse:
    """A `text/event-stream` response carrying `events`, faults applied."""
    response = web.StreamResponse(
        headers={**request_id_headers(call.family), "Cache-Control": "no-cache"}
    )
    response.content_type = "text/event-stream"
    response.charset = "utf-8"
    await response.prepare(call.request)
    fault = call.fault or FaultRule()
    if fault.first_byte_latency_ms:
        await asyncio.sleep(fault.first_byte_latency_ms / 1000)
    for number, event in enumerate(events, start=1):
        if fault.cut_after_chunks is not None and number > fault.cut_after_chunks:
            _cut(call.request)
            return response
        await response.write(event.encode(malformed=number == fault.malformed_chunk_at))
    await response.write_eof()
    return response


def _cut(request: web.Request) -> None:
    """Close the connection mid-body: no terminal event, no end of the chunked body."""
    transport = request.transport
    if transport is not None:
        transport.close()
