"""Who sends spans: the pod behind a bearer token, reviewed once and then remembered.

A sidecar sends its projected service-account token (audience `sidelight`)
with every export request, as it does on the ControlPlane streams. The relay
hands it to the operator's `Authenticator` (a TokenReview and a read of the
pod, in a cluster) with an empty `Node` (an export claims nothing), and keeps
the answer: a pod for `ttl_s`, a refusal for `refusal_ttl_s`, so a sidecar
exporting twice a second costs the API server one review per token lifetime
rather than one per export. Entries are keyed by the token's SHA-256; the
token itself is neither kept nor logged.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from sidelight_operator.controlplane.auth import (
    Authenticator,
    PermissionDenied,
    PodRef,
    Unauthenticated,
)
from sidelight_proto.v1 import control_plane_pb2

DEFAULT_TTL_S = 300.0
DEFAULT_REFUSAL_TTL_S = 30.0
DEFAULT_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    expires: float
    pod: PodRef | None
    refusal: Unauthenticated | PermissionDenied | None


class CachedAuthenticator:
    """An `Authenticator` whose answers are remembered per token for a while."""

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        refusal_ttl_s: float = DEFAULT_REFUSAL_TTL_S,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.authenticator = authenticator
        self.ttl_s = ttl_s
        self.refusal_ttl_s = refusal_ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[bytes, _Entry] = {}

    async def authenticate(self, token: str | None, peer: str) -> PodRef:
        """The pod `token` proves; raise Unauthenticated or PermissionDenied."""
        if not token:
            raise Unauthenticated("no bearer token: send the projected service-account token")
        key = hashlib.sha256(token.encode()).digest()
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or entry.expires <= now:
            try:
                pod = await self.authenticator.authenticate(token, control_plane_pb2.Node(), peer)
            except (Unauthenticated, PermissionDenied) as refusal:
                entry = _Entry(now + self.refusal_ttl_s, None, refusal)
            else:
                entry = _Entry(now + self.ttl_s, pod, None)
            self._remember(key, entry)
        if entry.pod is None:
            assert entry.refusal is not None
            raise type(entry.refusal)(entry.refusal.reason)
        return entry.pod

    def _remember(self, key: bytes, entry: _Entry) -> None:
        self._entries.pop(key, None)
        self._entries[key] = entry
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]
