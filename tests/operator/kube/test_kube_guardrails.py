"""Guardrails through the operator: watched, indexed, and given a status like LLMRoutes.

The kube layer is generic over `KINDS`; these tests put a Guardrail through
each part (reconciler, index, per-pod snapshots, status writer, conditions)
next to an LLMRoute, and check the status fields only a Guardrail has.
"""

from __future__ import annotations

from typing import Any

from sidelight_operator.compile.compiler import COMPILED
from sidelight_operator.controlplane import Nack
from sidelight_operator.kube.conditions import SidecarCounts, build_sidecar_counts, build_status
from sidelight_operator.kube.index import ResourceIndex
from sidelight_operator.kube.kinds import KINDS
from sidelight_operator.kube.snapshots import SnapshotSource
from tests.operator.kube.test_kube_conditions import sidecar
from tests.operator.kube.test_kube_reconcile import Recording as RecordingReconciler
from tests.operator.kube.test_kube_status import POD, SECRET, Recording, conditions, route, state

KEY = ("Guardrail", "shop", "g")


def guardrail(generation: int = 1, app: str = "web", **rule: Any) -> Any:
    """Guardrail shop/g for pods labelled app=`app`: one rule (default: block secrets)."""
    rule = rule or {"pii": {"entities": ["SECRET"]}}
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "Guardrail",
        "metadata": {"name": "g", "namespace": "shop", "generation": generation, "uid": "u"},
        "spec": {
            "podSelector": {"matchLabels": {"app": app}},
            "rules": [
                {"name": "injection", "action": "block", "promptInjection": {}},
                {"name": "r", "action": "block", **rule},
            ],
        },
    }


def test_the_operator_watches_every_kind_the_compile_step_compiles() -> None:
    assert {k.kind for k in KINDS} == set(COMPILED)
    assert ("Guardrail", "guardrails", "sidelight.io/v1alpha1") in {
        (k.kind, k.plural, k.api_version) for k in KINDS
    }


def test_guardrail_events_are_indexed_and_status_alone_is_no_change() -> None:
    reconciler = RecordingReconciler()
    reconciler.apply_resource_event(None, guardrail())
    assert reconciler.changes == 1
    assert reconciler.index.get(KEY) is not None
    reconciler.apply_resource_event("MODIFIED", {**guardrail(), "status": {"rules": 2}})
    assert reconciler.changes == 1
    reconciler.apply_resource_event("MODIFIED", guardrail(generation=2))
    assert reconciler.changes == 2
    reconciler.apply_resource_event("DELETED", guardrail(generation=2))
    assert reconciler.changes == 3
    assert reconciler.index.get(KEY) is None


def filled(*resources: Any) -> SnapshotSource:
    """A snapshot source over an index holding `resources`, the route and its Secret."""
    index = ResourceIndex([k.kind for k in KINDS])
    for resource in (route(), SECRET, *resources):
        index.put(resource)
    return SnapshotSource(index)


def test_a_pod_gets_the_guardrails_that_select_it() -> None:
    source = filled(guardrail())
    web = source.snapshot_for("shop", {"app": "web"})
    assert [g.source.name for g in web.guardrails] == ["g"]
    assert [r.source.name for r in web.route_sets] == ["r"]
    other = source.snapshot_for("shop", {"app": "batch"})
    assert not other.guardrails
    assert [r.source.name for r in other.route_sets] == ["r"]


async def test_guardrail_status_follows_acks_and_counts_its_rules() -> None:
    source = filled(guardrail())
    states = [state(source, acked=False)]
    writer = Recording(source, states)
    assert await writer.write_once()
    statuses = dict(writer.patches)
    assert conditions(statuses[KEY]) == {
        "Accepted": ("True", "Accepted"),
        "Programmed": ("False", "Pending"),
    }
    assert statuses[KEY]["rules"] == 2
    assert "rules" not in statuses[("LLMRoute", "shop", "r")]
    states[0] = state(source, acked=True)
    assert await writer.write_once()
    latest = dict(writer.patches)[KEY]
    assert conditions(latest)["Programmed"] == ("True", "Programmed")
    assert latest["sidecars"] == {"synced": 1, "stale": 0, "rejecting": 0}
    assert writer.events == []


async def test_an_invalid_guardrail_is_reported_with_an_event_and_sent_nowhere() -> None:
    source = filled(guardrail(pattern={"regexes": ["[unclosed"]}))
    assert not source.snapshot_for_pod(POD).guardrails
    writer = Recording(source, [state(source, acked=True)])
    assert await writer.write_once()
    status = dict(writer.patches)[KEY]
    assert conditions(status) == {
        "Accepted": ("False", "Invalid"),
        "Programmed": ("False", "Invalid"),
    }
    message = (
        "spec.rules[1].pattern.regexes[0]: invalid regular expression: "
        "unterminated character set at position 0"
    )
    assert status["conditions"][0]["message"] == message
    assert status["rules"] == 2
    assert writer.events == [(KEY, "Invalid", message)]
    route_status = dict(writer.patches)[("LLMRoute", "shop", "r")]
    assert conditions(route_status)["Programmed"] == ("True", "Programmed")


async def test_a_guardrail_that_a_sidecar_refuses_is_rejected() -> None:
    source = filled(guardrail())
    desired = source.snapshot_for_pod(POD)
    nack = Nack(desired.version, "guardrail shop/g rule r: no detector")
    writer = Recording(source, [state(source, False, nack)])
    assert await writer.write_once()
    status = dict(writer.patches)[KEY]
    assert conditions(status)["Programmed"] == ("False", "Rejected")
    assert status["conditions"][1]["message"] == (
        "1 of 1 sidecars rejected it: shop/web-1: guardrail shop/g rule r: no detector"
    )


def test_an_edited_guardrail_is_stale_until_acked() -> None:
    source = filled(guardrail(generation=1))
    acked = source.snapshot_for("shop", {"app": "web"})
    edited = guardrail(generation=2, denyList={"phrases": ["project falcon"]})
    source.index.put(edited)
    desired = source.snapshot_for("shop", {"app": "web"})
    views = [sidecar(desired, acked, labels={"app": "web"})]
    assert build_sidecar_counts(edited, views) == SidecarCounts(stale=1)
    views = [sidecar(desired, desired, labels={"app": "web"})]
    assert build_sidecar_counts(edited, views) == SidecarCounts(synced=1)


def test_the_rules_count_survives_a_malformed_spec() -> None:
    counts = SidecarCounts()
    for spec, rules in (({"rules": "x"}, 0), ({}, 0), ({"rules": [1, 2, 3]}, 3)):
        resource = {**guardrail(), "spec": spec}
        status = build_status(resource, [], False, counts, {}, "2026-01-01T00:00:00Z")
        assert status["rules"] == rules
