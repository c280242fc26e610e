"""Sidecar authentication in a cluster: a projected token, a TokenReview, the pod.

The sidecar sends its projected service-account token (audience
`sidelight`) as a bearer token. `TokenReviewAuthenticator`:

1. asks the API server to review it with `spec.audiences: [sidelight]`, so a
   token minted for another audience (the API server's own included) fails;
2. takes the namespace and service account from the username
   `system:serviceaccount:<ns>:<sa>`, and the pod name and uid from the
   token's `authentication.kubernetes.io/pod-name` / `pod-uid` extras (a
   projected token is bound to its pod; a token that is not is refused);
3. refuses (PERMISSION_DENIED) a `Node` that claims another namespace, pod
   or uid than the token proves;
4. reads the pod from the API and compares its uid (a deleted and recreated
   pod of the same name is another pod), and takes its labels.

The stream is then bound to that pod: its snapshot is computed from the
pod's namespace and labels, never from what the node claims.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sidelight_operator.controlplane.auth import PermissionDenied, PodRef, Unauthenticated
from sidelight_operator.kube.apiclient import to_dict
from sidelight_operator.kube.index import PodInfo
from sidelight_proto.v1 import control_plane_pb2

AUDIENCE = "sidelight"
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
API_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TokenIdentity:
    """What a reviewed token proves."""

    namespace: str
    service_account: str
    pod: str
    uid: str


def build_token_identity(status: Mapping[str, Any], audience: str) -> TokenIdentity:
    """The identity in a TokenReview's status; raise Unauthenticated if it proves none."""
    if not status.get("authenticated"):
        raise Unauthenticated(f"token rejected: {status.get('error') or 'not authenticated'}")
    if audience not in (status.get("audiences") or []):
        raise Unauthenticated(f"token is not for audience {audience!r}")
    user = status.get("user") or {}
    username = str(user.get("username") or "")
    namespace, _, account = username.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")
    if not username.startswith(SERVICE_ACCOUNT_PREFIX) or not namespace or not account:
        raise Unauthenticated(f"{username!r} is not a service account")
    extra = user.get("extra") or {}
    pod, uid = _single(extra, POD_NAME_EXTRA), _single(extra, POD_UID_EXTRA)
    if not pod or not uid:
        raise Unauthenticated("token is not bound to a pod (use a projected service-account token)")
    return TokenIdentity(namespace, account, pod, uid)


def check_node_claims(identity: TokenIdentity, node: control_plane_pb2.Node) -> None:
    """Raise PermissionDenied when the node claims to be another pod than the token's."""
    claims = (
        ("namespace", node.namespace, identity.namespace),
        ("pod", node.pod, identity.pod),
        ("uid", node.uid, identity.uid),
        ("service account", node.service_account, identity.service_account),
    )
    for what, claimed, proven in claims:
        if claimed and claimed != proven:
            raise PermissionDenied(
                f"node claims {what} {claimed!r} but its token belongs to "
                f"{identity.namespace}/{identity.pod}"
            )


def build_pod_ref(identity: TokenIdentity, pod: Mapping[str, Any]) -> PodRef:
    """The PodRef of the token's pod, as the API server holds it."""
    meta = pod.get("metadata") or {}
    if meta.get("uid") != identity.uid:
        raise Unauthenticated(
            f"pod {identity.namespace}/{identity.pod} is not the one the token was issued for"
        )
    return PodRef(
        namespace=identity.namespace,
        name=identity.pod,
        uid=identity.uid,
        service_account=identity.service_account,
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
    )


class TokenReviewAuthenticator:
    """Authenticates sidecars with TokenReview and binds each stream to its pod."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        audience: str = AUDIENCE,
        on_pod: Callable[[PodInfo], object] | None = None,
    ) -> None:
        self.api = api
        self.audience = audience
        self.on_pod = on_pod
        self._authentication = client.AuthenticationV1Api(api)
        self._core = client.CoreV1Api(api)

    async def authenticate(
        self, token: str | None, node: control_plane_pb2.Node, peer: str
    ) -> PodRef:
        """The pod whose token this is; raise Unauthenticated or PermissionDenied."""
        if not token:
            raise Unauthenticated("no bearer token: send the projected service-account token")
        status = await asyncio.to_thread(self.apply_token_review, token)
        identity = build_token_identity(status, self.audience)
        check_node_claims(identity, node)
        pod = await asyncio.to_thread(self.apply_read_pod, identity)
        ref = build_pod_ref(identity, pod)
        if self.on_pod is not None:
            self.on_pod(PodInfo(ref.namespace, ref.name, ref.uid, dict(ref.labels)))
        return ref

    def apply_token_review(self, token: str) -> dict[str, Any]:
        """POST a TokenReview for `token` with our audience; its status."""
        review = client.V1TokenReview(
            spec=client.V1TokenReviewSpec(token=token, audiences=[self.audience])
        )
        result = self._authentication.create_token_review(review, _request_timeout=API_TIMEOUT_S)
        status: dict[str, Any] = to_dict(self.api, result).get("status") or {}
        return status

    def apply_read_pod(self, identity: TokenIdentity) -> dict[str, Any]:
        """GET the token's pod; Unauthenticated if it is gone."""
        try:
            pod = self._core.read_namespaced_pod(
                identity.pod, identity.namespace, _request_timeout=API_TIMEOUT_S
            )
        except ApiException as error:
            if error.status == 404:
                raise Unauthenticated(
                    f"pod {identity.namespace}/{identity.pod} does not exist"
                ) from None
            raise
        return to_dict(self.api, pod)


def _single(extra: Mapping[str, Any], name: str) -> str:
    values = extra.get(name)
    if isinstance(values, list) and len(values) == 1 and isinstance(values[0], str):
        return values[0]
    return ""
