"""Output counted as a stream comes, and a stream ended where its reservation ends.

The request carries the output limit its reservation covers, so a provider
that honours `max_tokens` stops there by itself. `QuotaMeter` is the check
for one that does not: it wraps a stream's transcoder and counts the
upstream events that carry output (an OpenAI chunk with content or tool-call
text, an Anthropic `content_block_delta`, a Responses `*.delta` event). Each
carries at least one token, so the count never exceeds the tokens produced,
and an honest stream is never cut; a stream with more such events than its
limit raises `OutputLimitReached`, and the proxy ends it with an in-band
error in the caller's format.
"""

from __future__ import annotations

import orjson

from sidelight_sidecar.errors import ApiFormat
from sidelight_sidecar.sse import SSEEvent
from sidelight_sidecar.streams import Transcoder, TranscoderWrapper


class OutputLimitReached(Exception):
    """The provider streamed more output than the reservation covers."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer reached its quota reservation of {limit} output tokens")
        self.limit = limit


class QuotaMeter(TranscoderWrapper):
    """A transcoder that counts output events and stops past `limit` of them."""

    def __init__(
        self, inner: Transcoder, limit: int, upstream: ApiFormat, *, responses: bool = False
    ) -> None:
        super().__init__(inner)
        self.limit = limit
        self.counted = 0
        self._upstream = upstream
        self._responses = responses

    def feed(self, event: SSEEvent) -> list[bytes]:
        """Count the event's output, then pass it on; raises OutputLimitReached."""
        self.counted += self._output_events(event)
        if self.counted > self.limit:
            raise OutputLimitReached(self.limit)
        return self._inner.feed(event)

    def _output_events(self, event: SSEEvent) -> int:
        name = event.event
        if self._responses:
            return int(name is not None and name.endswith(".delta"))
        if self._upstream == "anthropic":
            return int(name == "content_block_delta")
        if not event.data.startswith("{"):
            return 0
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return 0  # the transcoder reports it
        count = 0
        for choice in chunk.get("choices") or () if isinstance(chunk, dict) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls")):
                count += 1
        return count
