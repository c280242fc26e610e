"""Output guardrails and reversible redaction on a streamed answer.

`GuardedTranscoder` wraps an attempt's transcoder: it reads the caller-format
events the transcoder produces, passes each text delta through a
`TextFilter` per choice (OpenAI) or content block (Anthropic), and writes the
events back with the text the filter releases.

Placeholders are put back first (`StreamRestorer`, which holds back at most
a partial placeholder), so the output rules read what the caller would get.
A filter with output rules then holds back the last `holdback` characters of the
text and releases it in steps of at least `STEP` characters: each step is
evaluated whole, the cut is moved before any finding that straddles it, and
only the part before the cut is redacted and released. So an entity shorter
than `holdback` characters is always seen whole, wherever the chunks split
it, and a block stops the stream before any of the blocked text went out.
The price is latency: text reaches the caller `holdback` characters late.

For the OpenAI Responses API the text deltas are filtered the same way,
and the events that repeat the whole text (`response.output_text.done`,
`response.content_part.done`, `response.output_item.done`,
`response.completed`) are rewritten to say what was actually sent.

Tool-call arguments streamed as JSON fragments are not scanned here; the
whole-answer path (`RequestGuard.check_output`) scans them.
"""

from __future__ import annotations

from typing import Any

import orjson

from sidelight_sidecar.errors import ApiFormat
from sidelight_sidecar.guard import RequestGuard
from sidelight_sidecar.guardrails import Evaluation, StreamRestorer
from sidelight_sidecar.sse import SSEEvent, SSEParser, encode_sse
from sidelight_sidecar.streams import DONE, MalformedStream, Transcoder, TranscoderWrapper

HOLDBACK = 160  # covers provider keys, IBANs, cards, e-mail addresses
STEP = 64  # each evaluation releases at least this much: ~3.5x scans per character


class TextFilter:
    """One streamed text: scanned in steps, redacted and restored on the way out."""

    def __init__(self, guard: RequestGuard, holdback: int = HOLDBACK) -> None:
        self._guard = guard
        self._holdback = holdback
        self._scan = bool(guard.runtime.output_rules)
        self._restorer = StreamRestorer(guard.redactions) if guard.redactions.restorable else None
        self._pending = ""
        self.evaluations: list[Evaluation] = []

    def feed(self, text: str) -> str:
        """What can go to the caller after `text` arrived."""
        if self._restorer is not None:
            text = self._restorer.feed(text)
        if not self._scan:
            return text
        self._pending += text
        if len(self._pending) < self._holdback + STEP:
            return ""
        return self._release(len(self._pending) - self._holdback)

    def finish(self) -> str:
        """Everything still held, restored and checked: the text has ended."""
        tail = self._restorer.flush() if self._restorer is not None else ""
        if not self._scan:
            return tail
        self._pending += tail
        return self._release(len(self._pending)) if self._pending else ""

    def _release(self, cut: int) -> str:
        pending = self._pending
        if cut < len(pending):
            whole = self._guard.scan_output(pending)
            cut = _safe_cut(cut, whole.spans[0] if whole.spans else ())
            if cut == 0:
                return ""
        head = self._guard.scan_output(pending[:cut])
        self.evaluations.append(head)
        self._pending = pending[cut:]
        return head.texts[0]


def _safe_cut(cut: int, spans: tuple[tuple[int, int], ...]) -> int:
    """`cut`, moved left until no finding straddles it."""
    moved = True
    while moved:
        moved = False
        for start, end in spans:
            if start < cut < end:
                cut, moved = start, True
    return cut


class GuardedTranscoder(TranscoderWrapper):
    """A transcoder whose caller events pass through the request's output guardrails."""

    def __init__(
        self, inner: Transcoder, guard: RequestGuard, api: ApiFormat, *, responses: bool = False
    ) -> None:
        super().__init__(inner)
        self._guard = guard
        self._api = api
        self._responses = responses
        self._parser = SSEParser()
        self._filters: dict[object, TextFilter] = {}
        self._emitted: dict[tuple[int, int], str] = {}  # Responses API: text sent, per part

    def feed(self, event: SSEEvent) -> list[bytes]:
        """Caller bytes for one upstream event, filtered; raises OutputBlocked."""
        out: list[bytes] = []
        for raw in self._inner.feed(event):
            for caller_event in self._parser.feed(raw):
                if self._responses:
                    out.extend(self._responses_event(caller_event))
                elif self._api == "openai":
                    out.append(self._openai(caller_event))
                else:
                    out.extend(self._anthropic(caller_event))
        return out

    def settle(self) -> None:
        """Record the stream's output verdicts on the request's guard."""
        self._guard.settle_stream(e for f in self._filters.values() for e in f.evaluations)

    def _filter(self, index: object) -> TextFilter:
        key = index if isinstance(index, (int, tuple)) else 0
        found = self._filters.get(key)
        if found is None:
            found = self._filters[key] = TextFilter(self._guard)
        return found

    def _openai(self, event: SSEEvent) -> bytes:
        if event.data == "[DONE]":
            return DONE
        chunk = _object(event.data)
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return encode_sse(event.data.encode())
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            delta = delta if isinstance(delta, dict) else {}
            content = delta.get("content")
            text = ""
            if isinstance(content, str) and content:
                text = self._filter(choice.get("index")).feed(content)
            if choice.get("finish_reason"):
                text += self._filter(choice.get("index")).finish()
            if isinstance(content, str) or text:
                delta["content"] = text
                choice["delta"] = delta
        return encode_sse(orjson.dumps(chunk))

    def _anthropic(self, event: SSEEvent) -> list[bytes]:
        name = event.event
        if name == "content_block_delta":
            obj = _object(event.data)
            delta = obj.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                text = self._filter(obj.get("index")).feed(str(delta.get("text", "")))
                if not text:
                    return []
                delta["text"] = text
                return [encode_sse(orjson.dumps(obj), name)]
        elif name == "content_block_stop":
            index = _object(event.data).get("index")
            key = index if isinstance(index, int) else 0
            tail = self._filters[key].finish() if key in self._filters else ""
            if tail:
                flushed = {
                    "type": "content_block_delta",
                    "index": key,
                    "delta": {"type": "text_delta", "text": tail},
                }
                return [
                    encode_sse(orjson.dumps(flushed), "content_block_delta"),
                    encode_sse(event.data.encode(), name),
                ]
        return [encode_sse(event.data.encode(), name)]

    def _responses_event(self, event: SSEEvent) -> list[bytes]:
        """Responses API: filter text deltas; whole texts in later events say what was sent."""
        name = event.event or ""
        if not name.startswith("response."):
            return [encode_sse(event.data.encode(), event.event)]
        obj = _object(event.data)
        key = (_int(obj.get("output_index")), _int(obj.get("content_index")))
        out: list[bytes] = []
        if name == "response.output_text.delta":
            text = self._filter(key).feed(str(obj.get("delta", "")))
            self._emitted[key] = self._emitted.get(key, "") + text
            if not text:
                return []
            obj["delta"] = text
        elif name == "response.output_text.done":
            tail = self._filters[key].finish() if key in self._filters else ""
            if tail:
                self._emitted[key] = self._emitted.get(key, "") + tail
                flushed = {**obj, "type": "response.output_text.delta", "delta": tail}
                flushed.pop("text", None)
                out.append(encode_sse(orjson.dumps(flushed), "response.output_text.delta"))
            obj["text"] = self._emitted.get(key, "")
        elif name == "response.content_part.done" and isinstance(obj.get("part"), dict):
            obj["part"]["text"] = self._emitted.get(key, obj["part"].get("text", ""))
        elif name == "response.output_item.done":
            self._rewrite_item(obj.get("item"), key[0])
        elif name in ("response.completed", "response.incomplete"):
            response = obj.get("response")
            output = response.get("output") if isinstance(response, dict) else None
            for index, item in enumerate(output if isinstance(output, list) else ()):
                self._rewrite_item(item, index)
        out.append(encode_sse(orjson.dumps(obj), name))
        return out

    def _rewrite_item(self, item: object, output_index: int) -> None:
        content = item.get("content") if isinstance(item, dict) else None
        for index, part in enumerate(content if isinstance(content, list) else ()):
            sent = self._emitted.get((output_index, index))
            if isinstance(part, dict) and "text" in part and sent is not None:
                part["text"] = sent


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _object(data: str) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedStream("a stream event is not JSON") from exc
    if not isinstance(obj, dict):
        raise MalformedStream("a stream event is not an object")
    return obj
