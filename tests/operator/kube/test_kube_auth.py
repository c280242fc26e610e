"""TokenReview authentication: what a review proves, node claims, the pod's uid."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from sidelight_operator.controlplane import PermissionDenied, PodRef, Unauthenticated
from sidelight_operator.kube.auth import (
    TokenIdentity,
    TokenReviewAuthenticator,
    build_pod_ref,
    build_token_identity,
    check_node_claims,
)
from sidelight_operator.kube.index import PodInfo
from sidelight_proto.v1 import control_plane_pb2

IDENTITY = TokenIdentity("shop", "web", "web-1", "uid-1")


def review(**changes: Any) -> dict[str, Any]:
    """A TokenReview status for a projected token of pod shop/web-1."""
    status: dict[str, Any] = {
        "authenticated": True,
        "audiences": ["sidelight"],
        "user": {
            "username": "system:serviceaccount:shop:web",
            "extra": {
                "authentication.kubernetes.io/pod-name": ["web-1"],
                "authentication.kubernetes.io/pod-uid": ["uid-1"],
            },
        },
    }
    status.update(changes)
    return status


def pod(uid: str = "uid-1") -> dict[str, Any]:
    """Pod shop/web-1 as the API returns it."""
    return {"metadata": {"name": "web-1", "namespace": "shop", "uid": uid, "labels": {"a": "b"}}}


def test_a_projected_token_proves_its_pod() -> None:
    assert build_token_identity(review(), "sidelight") == IDENTITY


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (review(authenticated=False, error="token expired"), "token rejected: token expired"),
        (review(authenticated=False), "token rejected: not authenticated"),
        (review(audiences=["https://kubernetes.default.svc"]), "not for audience 'sidelight'"),
        (review(user={"username": "alice", "extra": {}}), "'alice' is not a service account"),
        (
            review(user={"username": "system:serviceaccount:shop"}),
            "'system:serviceaccount:shop' is not a service account",
        ),
        (
            review(user={"username": "system:serviceaccount:shop:web", "extra": {}}),
            "not bound to a pod",
        ),
    ],
)
def test_tokens_that_prove_no_pod_are_refused(status: dict[str, Any], message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        build_token_identity(status, "sidelight")


def test_node_claims_must_match_the_token() -> None:
    check_node_claims(IDENTITY, control_plane_pb2.Node())  # claims nothing: fine
    check_node_claims(IDENTITY, control_plane_pb2.Node(namespace="shop", pod="web-1", uid="uid-1"))
    for claim in (
        control_plane_pb2.Node(namespace="bank"),
        control_plane_pb2.Node(pod="web-2"),
        control_plane_pb2.Node(uid="u"),
        control_plane_pb2.Node(service_account="x"),
    ):
        with pytest.raises(PermissionDenied, match="its token belongs to shop/web-1"):
            check_node_claims(IDENTITY, claim)


def test_the_pod_must_be_the_one_the_token_was_issued_for() -> None:
    ref = build_pod_ref(IDENTITY, pod())
    assert ref == PodRef("shop", "web-1", "uid-1", "web", {"a": "b"})
    assert dict(ref.labels) == {"a": "b"}
    with pytest.raises(Unauthenticated, match="not the one the token was issued for"):
        build_pod_ref(IDENTITY, pod(uid="uid-2"))


class FakeApiAuthenticator(TokenReviewAuthenticator):
    """The authenticator with its two API calls answered from memory."""

    def __init__(self, status: dict[str, Any], found: dict[str, Any]) -> None:
        self.seen: list[PodInfo] = []
        super().__init__(client.ApiClient(client.Configuration()), on_pod=self.seen.append)
        self.status = status
        self.found = found
        self.tokens: list[str] = []

    def apply_token_review(self, token: str) -> dict[str, Any]:
        self.tokens.append(token)
        return self.status

    def apply_read_pod(self, identity: TokenIdentity) -> dict[str, Any]:
        return self.found


async def test_authenticate_binds_the_stream_to_the_pod() -> None:
    authenticator = FakeApiAuthenticator(review(), pod())
    node = control_plane_pb2.Node(namespace="shop", pod="web-1", labels={"forged": "yes"})
    ref = await authenticator.authenticate("tok", node, "ipv4:10.0.0.1:5000")
    assert ref == PodRef("shop", "web-1", "uid-1", "web", {"a": "b"})  # labels from the API
    assert authenticator.tokens == ["tok"]
    assert authenticator.seen == [PodInfo("shop", "web-1", "uid-1", {"a": "b"})]


async def test_authenticate_refuses_without_a_token_and_across_namespaces() -> None:
    authenticator = FakeApiAuthenticator(review(), pod())
    with pytest.raises(Unauthenticated, match="no bearer token"):
        await authenticator.authenticate(None, control_plane_pb2.Node(), "peer")
    with pytest.raises(PermissionDenied, match="claims namespace 'bank'"):
        await authenticator.authenticate("tok", control_plane_pb2.Node(namespace="bank"), "peer")
    assert authenticator.seen == []
