"""Leases: the asks of one authenticated sidecar stream, answered from the ledger.

The ControlPlane servicer authenticates a Leases stream as it does
StreamSnapshots (bearer token, first request's Node, peer) and hands the
`PodRef` it gets to `serve_leases`, which answers every request with one
response, in order. An ask is granted only for a quota that applies to that
pod: a quota of the pod's snapshot (its namespace's LLMQuotas), whose scope's
team, application and environment are the pod's labels (the labels the
chart's `sidecar.identityLabels` names). What the sidecar claims about
itself plays no part, except with `trust_scope` (standalone mode on
loopback, where the one sidecar runs in the operator's process and gets
every quota of the files).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sidelight_operator.inject.config import IdentityLabels
from sidelight_operator.quota.ledger import Ledger, quota_key
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2

if TYPE_CHECKING:  # the control plane imports this module to serve the stream
    from sidelight_operator.controlplane.auth import PodRef

log = logging.getLogger(__name__)

QuotasFor = Callable[["PodRef"], Sequence[snapshot_pb2.Quota]]


@dataclass(frozen=True)
class QuotaLending:
    """What the Leases stream needs: the ledger, and which quotas a pod may draw on."""

    ledger: Ledger
    quotas_for: QuotasFor
    """The compiled quotas of the pod's snapshot."""
    identity_labels: IdentityLabels = field(default_factory=IdentityLabels)
    trust_scope: bool = False
    """Standalone mode on loopback only: every quota applies to the one sidecar."""


def in_scope(scope: snapshot_pb2.QuotaScope, pod: PodRef, labels: IdentityLabels) -> bool:
    """Whether a pod is in a quota's scope (the model is checked per request, by the sidecar)."""
    if scope.namespace != pod.namespace:
        return False
    wanted = (
        (labels.team, scope.team),
        (labels.application, scope.application),
        (labels.environment, scope.environment),
    )
    return all(not value or pod.labels.get(label) == value for label, value in wanted)


def answer(
    lending: QuotaLending, pod: PodRef, request: control_plane_pb2.LeaseRequest
) -> control_plane_pb2.LeaseResponse:
    """One grant per ask of `request`, for `pod`."""
    response = control_plane_pb2.LeaseResponse(seq=request.seq)
    if not request.asks:
        return response
    quotas = {quota_key(q): q for q in lending.quotas_for(pod)}
    for ask in request.asks:
        quota = quotas.get(ask.quota)
        if quota is None:
            grant = control_plane_pb2.LeaseGrant(
                quota=ask.quota,
                lease_id=ask.lease_id,
                error=f"no LLMQuota {ask.quota} applies to pod {pod.namespace}/{pod.name}",
            )
        elif not lending.trust_scope and not in_scope(quota.scope, pod, lending.identity_labels):
            grant = control_plane_pb2.LeaseGrant(
                quota=ask.quota,
                lease_id=ask.lease_id,
                error=f"pod {pod.namespace}/{pod.name} is not in the scope of {ask.quota}",
            )
        else:
            grant = lending.ledger.exchange(pod.key, quota, ask)
        response.grants.append(grant)
    return response


async def serve_leases(
    lending: QuotaLending,
    pod: PodRef,
    first: control_plane_pb2.LeaseRequest,
    requests: AsyncIterator[control_plane_pb2.LeaseRequest],
) -> AsyncGenerator[control_plane_pb2.LeaseResponse, None]:
    """Answer the stream's requests in order, the first one included."""
    answered = 1
    try:
        yield answer(lending, pod, first)
        async for request in requests:
            answered += 1
            yield answer(lending, pod, request)
    finally:
        log.debug(
            "lease stream of %s/%s ended after %d requests", pod.namespace, pod.name, answered
        )
