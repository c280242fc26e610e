"""Fault rules: what to break, for which requests, how many times.

A rule's JSON form (the admin API's `POST /_fake/faults` body):

```
{"match": {"path": "/v1/messages", "model": "claude-x", "endpoint_name": "east"},
 "status": 429, "body": {...}, "retry_after": "1", "times": 2,
 "latency_ms": 200, "first_byte_latency_ms": 100,
 "cut_after_chunks": 3, "malformed_chunk_at": 2, "context_length_exceeded": true}
```

Every field is optional. `match.path` is a shell-style pattern
(`/openai/deployments/*/chat/completions`); `match.model` compares with the
request's `model` (or the Azure deployment); `match.endpoint_name` with the
provider's name. A missing match field matches anything.

- `latency_ms`: wait before sending the status line and headers.
- `status` (with an optional `body`, else the provider's usual error body
  for that status, and an optional `retry_after` header): answer that error.
- `context_length_exceeded`: answer the provider's real context-overflow 400.
- `first_byte_latency_ms`: send the headers, then wait before the body.
- `cut_after_chunks`: a stream stops after N events and the connection is
  closed without the terminal event or the end of the chunked body.
- `malformed_chunk_at`: the Nth stream event (from 1) carries a non-JSON
  data line instead of its payload; the rest of the stream follows.
- `times`: the rule applies to that many requests, then is spent and removed;
  without it the rule stays until cleared.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["FaultRule", "FaultRuleError"]

_MATCH_KEYS = ("path", "model", "endpoint_name")
_INT_KEYS = (
    "status",
    "times",
    "latency_ms",
    "first_byte_latency_ms",
    "cut_after_chunks",
    "malformed_chunk_at",
)


class FaultRuleError(ValueError):
    """A fault rule's JSON form is not valid."""


@dataclass
class FaultRule:
    """One fault rule; see the module docstring for each field's effect."""

    path: str | None = None
    model: str | None = None
    endpoint_name: str | None = None
    status: int | None = None
    body: Any = None
    retry_after: str | None = None
    times: int | None = None
    latency_ms: int = 0
    first_byte_latency_ms: int = 0
    cut_after_chunks: int | None = None
    malformed_chunk_at: int | None = None
    context_length_exceeded: bool = False

    def matches(self, path: str, model: str | None, endpoint_name: str) -> bool:
        """Whether this rule applies to a request."""
        return (
            (self.path is None or fnmatch.fnmatchcase(path, self.path))
            and (self.model is None or self.model == model)
            and (self.endpoint_name is None or self.endpoint_name == endpoint_name)
        )

    @classmethod
    def from_json(cls, data: object) -> FaultRule:
        """Parse the admin API form, rejecting unknown keys and wrong types."""
        if not isinstance(data, Mapping):
            raise FaultRuleError("a fault rule is a JSON object")
        match = data.get("match", {})
        if not isinstance(match, Mapping):
            raise FaultRuleError("match must be an object")
        known = {f.name for f in fields(cls)} - set(_MATCH_KEYS)
        unknown = (set(data) - known - {"match"}) | (set(match) - set(_MATCH_KEYS))
        if unknown:
            raise FaultRuleError(f"unknown fault rule keys: {sorted(unknown)}")
        merged = {**{k: v for k, v in data.items() if k != "match"}, **match}
        values: dict[str, Any] = {k: v for k, v in merged.items() if v is not None}
        for key in _MATCH_KEYS:
            if key in values and not isinstance(values[key], str):
                raise FaultRuleError(f"match.{key} must be a string")
        for key in _INT_KEYS:
            if key in values and (type(values[key]) is not int or values[key] < 0):
                raise FaultRuleError(f"{key} must be a non-negative integer")
        if values.get("times") == 0:
            raise FaultRuleError("times must be at least 1; omit it for a rule that never ends")
        if "retry_after" in values:
            values["retry_after"] = str(values["retry_after"])
        if not isinstance(values.get("context_length_exceeded", False), bool):
            raise FaultRuleError("context_length_exceeded must be a boolean")
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The admin API form of this rule, `times` being what is left."""
        data = asdict(self)
        return {"match": {key: data.pop(key) for key in _MATCH_KEYS}, **data}
