"""The Leases stream's answers: only quotas of the pod's namespace and scope are lent."""

from __future__ import annotations

from sidelight_operator.controlplane import PodRef
from sidelight_operator.inject.config import IdentityLabels
from sidelight_operator.quota import Ledger, QuotaLending, in_scope
from sidelight_operator.quota.lending import answer
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2
from tests.operator.quota.test_ledger import Clock, quota

LABELS = IdentityLabels()
POD = PodRef(
    "shop",
    "chat-1",
    "uid-1",
    "default",
    {"sidelight.io/team": "payments", "app.kubernetes.io/name": "chat"},
)


def scoped(**scope: str) -> snapshot_pb2.Quota:
    q = quota()
    q.scope.MergeFrom(snapshot_pb2.QuotaScope(**scope))
    return q


def test_scope_is_the_pods_namespace_and_labels() -> None:
    assert in_scope(scoped().scope, POD, LABELS)
    assert in_scope(scoped(team="payments", application="chat").scope, POD, LABELS)
    assert not in_scope(scoped(team="search").scope, POD, LABELS)
    assert not in_scope(scoped(environment="prod").scope, POD, LABELS)  # the pod has no such label
    other = snapshot_pb2.QuotaScope(namespace="lab")
    assert not in_scope(other, POD, LABELS)
    assert in_scope(
        scoped(model="gpt-4o").scope, POD, LABELS
    )  # checked per request, by the sidecar
    custom = IdentityLabels(team="org/team")
    assert not in_scope(scoped(team="payments").scope, POD, custom)


def test_asks_outside_the_pods_quotas_are_refused_one_by_one() -> None:
    mine, theirs = scoped(team="payments"), scoped(team="search")
    theirs.source.name = "search"
    lending = QuotaLending(Ledger(clock=Clock()), lambda pod: [mine, theirs], LABELS)
    request = control_plane_pb2.LeaseRequest(
        seq=7,
        asks=[
            control_plane_pb2.LeaseAsk(quota="shop/q", lease_id="a", want_tokens=10),
            control_plane_pb2.LeaseAsk(quota="shop/search", lease_id="b", want_tokens=10),
            control_plane_pb2.LeaseAsk(quota="lab/q", lease_id="c", want_tokens=10),
        ],
    )
    response = answer(lending, POD, request)
    assert response.seq == 7
    assert [(g.quota, g.granted_tokens, g.error) for g in response.grants] == [
        ("shop/q", 10, ""),
        ("shop/search", 0, "pod shop/chat-1 is not in the scope of shop/search"),
        ("lab/q", 0, "no LLMQuota lab/q applies to pod shop/chat-1"),
    ]
    trusted = QuotaLending(lending.ledger, lambda pod: [theirs], LABELS, trust_scope=True)
    [grant] = answer(trusted, POD, request).grants[1:2]
    assert grant.granted_tokens == 10
