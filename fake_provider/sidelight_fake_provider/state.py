"""The fake provider's mutable state: its name, expected keys, fault rules and records.

One `FakeState` per provider. Its methods take a lock, so tests may call them
from another thread than the one serving requests (`FakeProviderThread`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sidelight_fake_provider.faults import FaultRule

__all__ = ["CREDENTIAL_HEADERS", "DEFAULT_MODELS", "FakeState", "RecordedRequest"]

CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-key")
"""The headers that carry a provider key, lower-case."""

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "claude-3-5-haiku-latest")
"""The models `GET /v1/models` lists unless the state is given others."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request the provider received (admin requests are not recorded)."""

    endpoint_name: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Header names are lower-case; a repeated header keeps its last value."""
    body: Any
    """The parsed JSON body, or None when the body was empty or not JSON."""
    time: float
    """Seconds since the epoch when the request arrived."""

    @property
    def credentials(self) -> dict[str, str]:
        """The credential headers received, by lower-case name."""
        return {k: v for k, v in self.headers.items() if k in CREDENTIAL_HEADERS}

    def to_json(self) -> dict[str, Any]:
        """The admin API form of this record."""
        return {
            "endpoint_name": self.endpoint_name,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "time": self.time,
        }


@dataclass
class FakeState:
    """What one fake provider knows; `build_app` serves it.

    `api_keys` maps a family (`"openai"`, `"azure"`, `"anthropic"`) to the key
    it expects; a family without an entry accepts any credential or none.
    """

    name: str = "fake"
    api_keys: Mapping[str, str] = field(default_factory=dict)
    models: tuple[str, ...] = DEFAULT_MODELS
    _faults: list[FaultRule] = field(default_factory=list, repr=False)
    _requests: list[RecordedRequest] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the records, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def faults(self) -> list[FaultRule]:
        """A copy of the fault rules still in force, in matching order."""
        with self._lock:
            return list(self._faults)

    def record(self, request: RecordedRequest) -> None:
        """Keep a received request."""
        with self._lock:
            self._requests.append(request)

    def clear_requests(self) -> None:
        """Forget every record."""
        with self._lock:
            self._requests.clear()

    def add_fault(self, rule: FaultRule) -> None:
        """Append a rule; rules are tried in the order they were added."""
        with self._lock:
            self._faults.append(rule)

    def clear_faults(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._faults.clear()

    def take_fault(self, path: str, model: str | None) -> FaultRule | None:
        """The first rule matching a request, counting one use of it."""
        with self._lock:
            for index, rule in enumerate(self._faults):
                if not rule.matches(path, model, self.name):
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        del self._faults[index]
                return rule
        return None
