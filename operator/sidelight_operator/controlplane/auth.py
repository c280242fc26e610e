"""Who is on the other end of a stream: the authenticated pod.

The servicer reads the bearer token from the stream's metadata and hands it,
with the first message's `Node` and the peer address, to an `Authenticator`.
What the authenticator returns, a `PodRef`, is the only identity the stream
ever acts for: the snapshot a sidecar receives is computed for that pod and
for nothing the sidecar claims beyond it.

In a cluster the authenticator checks a projected service-account token
with a TokenReview (`sidelight_operator.kube`). `LoopbackAuthenticator` is
for standalone mode only: it checks no token and trusts the node's claims,
and accepts loopback peers only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol
from urllib.parse import unquote

from sidelight_proto.v1 import control_plane_pb2


class Unauthenticated(Exception):
    """The caller could not be identified (no token, a bad token); UNAUTHENTICATED."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermissionDenied(Exception):
    """The caller is known but may not open this stream; PERMISSION_DENIED."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PodRef:
    """The pod a stream is bound to, as the authenticator established it."""

    namespace: str
    name: str
    uid: str
    service_account: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))

    @property
    def key(self) -> str:
        """What identifies this pod among the connected sidecars: its uid, else ns/name."""
        return self.uid or f"{self.namespace}/{self.name}"


class Authenticator(Protocol):
    """Turns a stream's token, first `Node` and peer into the pod it speaks for."""

    async def authenticate(
        self, token: str | None, node: control_plane_pb2.Node, peer: str
    ) -> PodRef:
        """The authenticated pod; raise Unauthenticated or PermissionDenied."""
        ...


class LoopbackAuthenticator:
    """Standalone mode only: no token check, the node's claims trusted, loopback peers only.

    Anyone who can reach the port can claim any pod, which is acceptable only
    because the port is on 127.0.0.1 and the one sidecar is in the same
    process. Never use it for a port other machines can reach.
    """

    async def authenticate(
        self, token: str | None, node: control_plane_pb2.Node, peer: str
    ) -> PodRef:
        """The pod the node claims to be, if the peer is on loopback."""
        if not is_loopback_peer(peer):
            raise PermissionDenied(f"standalone control plane serves loopback only, not {peer}")
        if not node.namespace or not node.pod:
            raise Unauthenticated("the first message must name the node's namespace and pod")
        return PodRef(
            namespace=node.namespace,
            name=node.pod,
            uid=node.uid,
            service_account=node.service_account,
            labels=dict(node.labels),
        )


def is_loopback_peer(peer: str) -> bool:
    """True for gRPC peer strings on loopback (`ipv4:127.0.0.1:N`, `ipv6:[::1]:N`, `unix:`)."""
    scheme, _, rest = unquote(peer).partition(":")
    if scheme in ("unix", "unix-abstract"):
        return True
    if scheme not in ("ipv4", "ipv6"):
        return False
    host = rest.rpartition(":")[0].strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The token of an `authorization: Bearer <token>` metadata entry, if there is one."""
    for key, value in metadata:
        if key.lower() != "authorization" or not isinstance(value, str):
            continue
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None
