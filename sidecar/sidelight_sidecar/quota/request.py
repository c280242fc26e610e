"""The quota check's edges on the request path: facts in, limits and refusals out.

- `quota_facts`: what the gate needs of a request: the requested model, the
  counted input tokens, the output limit it asks for (times its choices),
  and the dearest price among the backends it may reach (a fallback may be
  dearer than the first choice).
- `limit_output`: writes the gate's output limit into the request body, in
  the field of the caller's API (`max_completion_tokens` or `max_tokens` for
  chat, `max_tokens` for messages, `max_output_tokens` for responses), so
  that the provider stops where the reservation ends.
- `refusal_response`: the 429 of a refused call, in the caller's format, type
  and code `quota_exceeded`, with `Retry-After` (and `x-should-retry: false`
  when the window ends more than a minute away, which the official SDKs
  honour instead of retrying).
- `QuotaMeter`: counts a stream's output as it comes, and ends a stream whose
  provider goes past the limit it was given (see meter.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web

from sidelight_sidecar.errors import ApiFormat, anthropic_stream_error, openai_stream_error
from sidelight_sidecar.quota.rules import NUSD_PER_TOKEN_PER_USD_PER_MILLION, QuotaFacts, Refusal
from sidelight_sidecar.runtime import Backend
from sidelight_sidecar.upstream import Operation

QUOTA_EXCEEDED = "quota_exceeded"
QUOTA_STATUS = 429
MAX_SDK_RETRY_S = 60
_OUTPUT_FIELDS = {
    Operation.CHAT: ("max_completion_tokens", "max_tokens"),
    Operation.MESSAGES: ("max_tokens",),
    Operation.RESPONSES: ("max_output_tokens",),
}


def quota_facts(
    op: Operation,
    body: Mapping[str, Any],
    model: str,
    input_tokens: int,
    candidates: Sequence[Backend],
) -> QuotaFacts:
    """The gate's view of a request that may reach `candidates`."""
    fields = _OUTPUT_FIELDS.get(op, ())
    asked = next((body[f] for f in fields if isinstance(body.get(f), int)), None)
    choices = body.get("n") if op is Operation.CHAT else None
    if isinstance(asked, int) and isinstance(choices, int) and choices > 1:
        asked *= choices
    prices = [b.price for b in candidates if b.price is not None]
    return QuotaFacts(
        model=model,
        input_tokens=input_tokens,
        max_output_tokens=asked if isinstance(asked, int) and not isinstance(asked, bool) else None,
        produces_output=op is not Operation.EMBEDDINGS,
        input_nusd_per_token=max((p.input_per_million for p in prices), default=0.0)
        * NUSD_PER_TOKEN_PER_USD_PER_MILLION,
        output_nusd_per_token=max((p.output_per_million for p in prices), default=0.0)
        * NUSD_PER_TOKEN_PER_USD_PER_MILLION,
    )


def limit_output(op: Operation, body: dict[str, Any], limit: int) -> None:
    """Set the request's output limit to `limit` tokens in total (split over its choices)."""
    fields = _OUTPUT_FIELDS.get(op)
    if not fields:
        return
    choices = body.get("n") if op is Operation.CHAT else None
    per_choice = limit // choices if isinstance(choices, int) and choices > 1 else limit
    field = next((f for f in fields if f in body), fields[0])
    body[field] = max(per_choice, 1)


def refusal_response(
    api_format: ApiFormat, refusal: Refusal, headers: Mapping[str, str]
) -> web.Response:
    """The caller's 429 for a refused call."""
    if api_format == "anthropic":
        body = {"type": "error", "error": {"type": QUOTA_EXCEEDED, "message": refusal.message}}
    else:
        body = {
            "error": {
                "message": refusal.message,
                "type": QUOTA_EXCEEDED,
                "param": None,
                "code": QUOTA_EXCEEDED,
            }
        }
    extra = {"retry-after": str(refusal.retry_after_s), "x-sidelight-quota": refusal.quota}
    if refusal.retry_after_s > MAX_SDK_RETRY_S:
        extra["x-should-retry"] = "false"
    return web.Response(
        status=QUOTA_STATUS,
        body=orjson.dumps(body),
        content_type="application/json",
        headers={**headers, **extra},
    )


def quota_stream_error(api_format: ApiFormat, message: str) -> bytes:
    """The in-band event that ends a stream cut at its quota reservation."""
    if api_format == "anthropic":
        return anthropic_stream_error(message, QUOTA_EXCEEDED)
    return openai_stream_error(message, QUOTA_EXCEEDED, QUOTA_EXCEEDED)
