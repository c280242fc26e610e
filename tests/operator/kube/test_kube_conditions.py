"""The pure status: Accepted, Programmed, sidecar counts, transition times, Events."""

from __future__ import annotations

import base64
from typing import Any

from sidelight_operator.compile import Diagnostic, compile_snapshot
from sidelight_operator.kube.conditions import (
    SidecarCounts,
    SidecarView,
    build_accepted,
    build_programmed,
    build_rejection_event,
    build_sidecar_counts,
    build_status,
)
from sidelight_proto.v1 import snapshot_pb2

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:05:00Z"


def route(generation: int = 1, app: str | None = None, model: str = "gpt-4") -> Any:
    """LLMRoute shop/r, for pods labelled app=`app` (all without)."""
    spec: dict[str, Any] = {
        "backends": [
            {
                "name": "b",
                "provider": "openai",
                "model": model,
                "endpoints": [{"url": "https://api.openai.com/v1"}],
                "credentials": {"secretRef": {"name": "openai", "key": "api-key"}},
            }
        ],
        "routes": [{"routeTo": "b"}],
    }
    if app is not None:
        spec["podSelector"] = {"matchLabels": {"app": app}}
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"name": "r", "namespace": "shop", "generation": generation},
        "spec": spec,
    }


SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "openai", "namespace": "shop"},
    "data": {"api-key": base64.b64encode(b"sk-1").decode()},
}


def snapshot(*resources: Any) -> snapshot_pb2.Snapshot:
    """The compiled snapshot of `resources` and the Secret."""
    return compile_snapshot([*resources, SECRET]).snapshot


def sidecar(
    desired: snapshot_pb2.Snapshot,
    acked: snapshot_pb2.Snapshot | None = None,
    labels: dict[str, str] | None = None,
    ns: str = "shop",
    nacked: str = "",
) -> SidecarView:
    """A connected sidecar of pod `ns`/p."""
    return SidecarView(
        namespace=ns,
        pod="p",
        labels=labels or {},
        desired=desired,
        acked=acked,
        rejected_version=nacked,
        rejected_reason="bad regex" if nacked else "",
    )


def test_counts_synced_stale_and_rejecting() -> None:
    current, old = snapshot(route(2)), snapshot(route(1))
    counts = build_sidecar_counts(
        route(2),
        [
            sidecar(current, acked=current),
            sidecar(current, acked=old),
            sidecar(current),
            sidecar(current, acked=old, nacked=current.version),
            sidecar(current, acked=current, ns="other"),  # not selected: other namespace
        ],
    )
    assert counts == SidecarCounts(synced=1, stale=2, rejecting=1, rejection="shop/p: bad regex")
    assert counts.applicable == 4


def test_a_rotated_secret_is_not_synced_until_acked() -> None:
    before = snapshot(route())
    rotated = {**SECRET, "data": {"api-key": base64.b64encode(b"sk-2").decode()}}
    after = compile_snapshot([route(), rotated]).snapshot
    counts = build_sidecar_counts(route(), [sidecar(after, acked=before)])
    assert (counts.synced, counts.stale) == (0, 1)


def test_pod_selector_decides_which_sidecars_count() -> None:
    web = route(app="web")
    desired = snapshot(web)
    counts = build_sidecar_counts(
        web,
        [sidecar(desired, desired, {"app": "web"}), sidecar(snapshot(), None, {"app": "api"})],
    )
    assert counts == SidecarCounts(synced=1)


def test_an_old_nack_does_not_count_once_the_desired_version_moved_on() -> None:
    current = snapshot(route(3))
    counts = build_sidecar_counts(route(3), [sidecar(current, nacked="0123456789abcdef")])
    assert counts == SidecarCounts(stale=1)


def test_accepted() -> None:
    warning = Diagnostic("LLMRoute", "shop", "r", "spec.x", "ignored", "warning")
    error = Diagnostic("LLMRoute", "shop", "r", "spec.backends[0].credentials", "no key 'k'")
    assert build_accepted([], True).message == "compiled without errors"
    assert build_accepted([warning], True).message == "compiled with warnings: spec.x: ignored"
    rejected = build_accepted([warning, error], False)
    assert (rejected.status, rejected.reason) == ("False", "Invalid")
    assert rejected.message == "spec.backends[0].credentials: no key 'k'"
    long = Diagnostic("LLMRoute", "shop", "r", "spec", "x" * 10_000)
    assert len(build_accepted([long], False).message) == 8192


def test_programmed_reasons() -> None:
    def reason(accepted: bool, counts: SidecarCounts) -> tuple[str, str, str]:
        c = build_programmed(accepted, counts, 4)
        return c.status, c.reason, c.message

    assert reason(False, SidecarCounts(synced=1)) == (
        "False",
        "Invalid",
        "not accepted, so not sent to any sidecar",
    )
    assert reason(True, SidecarCounts())[1] == "NoSidecars"
    assert reason(True, SidecarCounts(synced=1, stale=1, rejecting=1, rejection="shop/p: x")) == (
        "False",
        "Rejected",
        "1 of 3 sidecars rejected it: shop/p: x",
    )
    assert reason(True, SidecarCounts(synced=1, stale=1)) == (
        "False",
        "Pending",
        "1 of 2 sidecars serve generation 4",
    )
    assert reason(True, SidecarCounts(synced=2)) == (
        "True",
        "Programmed",
        "2 of 2 sidecars serve generation 4",
    )


def test_status_shape_and_transition_times() -> None:
    first = build_status(route(1), [], True, SidecarCounts(stale=1), {}, T0)
    assert first == {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Accepted",
                "status": "True",
                "reason": "Accepted",
                "message": "compiled without errors",
                "lastTransitionTime": T0,
                "observedGeneration": 1,
            },
            {
                "type": "Programmed",
                "status": "False",
                "reason": "Pending",
                "message": "0 of 1 sidecars serve generation 1",
                "lastTransitionTime": T0,
                "observedGeneration": 1,
            },
        ],
        "sidecars": {"synced": 0, "stale": 1, "rejecting": 0},
    }
    # Same facts later: an identical status, so nothing is written.
    assert build_status(route(1), [], True, SidecarCounts(stale=1), first, T1) == first
    # Programmed flips, Accepted keeps its time although its generation moved.
    second = build_status(route(2), [], True, SidecarCounts(synced=1), first, T1)
    accepted, programmed = second["conditions"]
    assert (accepted["lastTransitionTime"], accepted["observedGeneration"]) == (T0, 2)
    assert (programmed["status"], programmed["lastTransitionTime"]) == ("True", T1)
    assert second["sidecars"] == {"synced": 1, "stale": 0, "rejecting": 0}


def test_rejection_events_only_when_the_rejection_is_new() -> None:
    error = Diagnostic("LLMRoute", "shop", "r", "spec.routes[0].routeTo", "no backend 'x'")
    good = build_status(route(), [], True, SidecarCounts(), {}, T0)
    bad = build_status(route(2), [error], False, SidecarCounts(), good, T1)
    assert build_rejection_event(good, bad) == ("Invalid", "spec.routes[0].routeTo: no backend 'x'")
    assert build_rejection_event({}, bad) is not None
    assert build_rejection_event(bad, bad) is None
    other = Diagnostic("LLMRoute", "shop", "r", "spec.backends", "empty")
    worse = build_status(route(3), [other], False, SidecarCounts(), bad, T1)
    assert build_rejection_event(bad, worse) == ("Invalid", "spec.backends: empty")
    assert build_rejection_event(bad, good) is None
