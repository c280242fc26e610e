"""Who a stream speaks for: peers, bearer tokens, the loopback authenticator."""

from __future__ import annotations

import pytest

from sidelight_operator.controlplane import (
    LoopbackAuthenticator,
    PermissionDenied,
    PodRef,
    Unauthenticated,
    bearer_token,
    is_loopback_peer,
)
from sidelight_proto.v1 import control_plane_pb2

NODE = control_plane_pb2.Node(
    pod="app-1", namespace="team-a", uid="uid-1", service_account="app", labels={"app": "chat"}
)


@pytest.mark.parametrize(
    ("peer", "loopback"),
    [
        ("ipv4:127.0.0.1:50000", True),
        ("ipv4:127.8.9.10:1", True),
        ("ipv6:[::1]:50000", True),
        ("ipv6:%5B::1%5D:50000", True),
        ("ipv6:[::ffff:127.0.0.1]:50000", True),
        ("unix:/tmp/sidelight.sock", True),
        ("ipv4:10.0.0.7:50000", False),
        ("ipv6:[fe80::1]:50000", False),
        ("ipv6:[::ffff:10.0.0.7]:50000", False),
        ("dns:localhost:1", False),
        ("ipv4:not-an-ip:1", False),
        ("", False),
    ],
)
def test_loopback_peers(peer: str, loopback: bool) -> None:
    assert is_loopback_peer(peer) is loopback


@pytest.mark.parametrize(
    ("metadata", "token"),
    [
        ([("authorization", "Bearer abc.def")], "abc.def"),
        ([("authorization", "bearer  abc ")], "abc"),
        ([("user-agent", "grpc"), ("authorization", "Bearer t")], "t"),
        ([("authorization", "Basic dXNlcg==")], None),
        ([("authorization", "Bearer ")], None),
        ([("authorization-bin", b"Bearer t")], None),
        ([], None),
    ],
)
def test_bearer_token(metadata: list[tuple[str, str | bytes]], token: str | None) -> None:
    assert bearer_token(metadata) == token


async def test_loopback_authenticator_trusts_the_node_on_loopback_only() -> None:
    auth = LoopbackAuthenticator()
    pod = await auth.authenticate(None, NODE, "ipv4:127.0.0.1:4000")
    assert pod == PodRef("team-a", "app-1", "uid-1", "app", {"app": "chat"})
    assert pod.key == "uid-1"
    with pytest.raises(PermissionDenied, match="loopback only"):
        await auth.authenticate(None, NODE, "ipv4:192.168.1.2:4000")
    with pytest.raises(Unauthenticated, match="namespace and pod"):
        await auth.authenticate(None, control_plane_pb2.Node(pod="x"), "ipv4:127.0.0.1:1")


def test_a_pod_ref_is_immutable_and_keyed_by_uid_or_name() -> None:
    labels = {"app": "chat"}
    pod = PodRef("team-a", "app-1", "", "app", labels)
    labels["app"] = "changed"
    assert pod.labels == {"app": "chat"}
    assert pod.key == "team-a/app-1"
    assert hash(pod) == hash(PodRef("team-a", "app-1", "", "app", {"other": "x"}))
    with pytest.raises(TypeError):
        pod.labels["app"] = "x"  # type: ignore[index]
