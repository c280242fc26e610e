"""Status of a resource in the Kubernetes way, built from compile and sidecar facts.

Pure: the status writer hands in the resource, its diagnostics, the
connected sidecars and the time, and gets the `status` to write back.

- `Accepted`: True when compile found no error; otherwise False, reason
  `Invalid`, and a message naming each offending field.
- `Programmed`: True once every connected sidecar the resource applies to
  serves it as it is now. "As it is now" is the part of the sidecar's
  desired snapshot that came from the resource (its `source` carries the
  generation), compared with the same part of the snapshot it last ACKed;
  so a rotated Secret key counts too. False with reason `Invalid` (not
  accepted), `NoSidecars`, `Rejected` (a sidecar NACKed its desired
  snapshot; the message quotes the NACK) or `Pending`.
- `sidecars`: how many of those sidecars are synced, stale or rejecting.
- `rules` (Guardrail only): how many rules its spec holds, for the printer
  column.
- An LLMQuota's usage fields and its SoftLimitReached and HardLimitReached
  conditions come from the quota ledger (`quota.status`) as `extra`.

`lastTransitionTime` changes only when a condition's status does, so an
unchanged resource gets an identical status and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sidelight_operator.compile import Diagnostic, ResourceKey, select_for_pod
from sidelight_operator.kube.index import key_of
from sidelight_proto.v1 import snapshot_pb2

ACCEPTED = "Accepted"
PROGRAMMED = "Programmed"
MAX_MESSAGE = 8192
Part = snapshot_pb2.RouteSet | snapshot_pb2.Guardrail | snapshot_pb2.Quota


@dataclass(frozen=True)
class SidecarView:
    """A connected sidecar, as the status computation sees it."""

    namespace: str
    pod: str
    labels: Mapping[str, str]
    desired: snapshot_pb2.Snapshot
    """What the operator wants it to serve now."""
    acked: snapshot_pb2.Snapshot | None = None
    """The snapshot it last ACKed, if any."""
    rejected_version: str = ""
    """The version it last NACKed ("" if none)."""
    rejected_reason: str = ""


@dataclass(frozen=True)
class SidecarCounts:
    """The sidecars a resource applies to, by the state of their configuration."""

    synced: int = 0
    stale: int = 0
    rejecting: int = 0
    rejection: str = ""
    """The first rejecting sidecar and its NACK reason."""

    @property
    def applicable(self) -> int:
        """How many connected sidecars the resource applies to."""
        return self.synced + self.stale + self.rejecting


@dataclass(frozen=True)
class Condition:
    """One condition before it gets its transition time."""

    type: str
    status: str
    reason: str
    message: str


def part_of(snapshot: snapshot_pb2.Snapshot, key: ResourceKey) -> Part | None:
    """The piece of `snapshot` compiled from resource `key`, if it holds one."""
    parts: Iterable[Part] = (*snapshot.route_sets, *snapshot.guardrails, *snapshot.quotas)
    for part in parts:
        source = part.source
        if (source.kind, source.namespace, source.name) == key:
            return part
    return None


def build_sidecar_counts(
    resource: Mapping[str, Any], sidecars: Iterable[SidecarView]
) -> SidecarCounts:
    """Count the sidecars `resource` applies to as synced, stale or rejecting."""
    key = key_of(resource)
    synced = stale = rejecting = 0
    rejection = ""
    for sidecar in sidecars:
        if not select_for_pod([resource], sidecar.namespace, sidecar.labels):
            continue
        wanted = part_of(sidecar.desired, key)
        served = part_of(sidecar.acked, key) if sidecar.acked is not None else None
        acked_version = sidecar.acked.version if sidecar.acked is not None else ""
        if wanted is not None and served == wanted:
            synced += 1
        elif (
            sidecar.rejected_version == sidecar.desired.version
            and acked_version != sidecar.desired.version
        ):
            rejecting += 1
            rejection = rejection or (
                f"{sidecar.namespace}/{sidecar.pod}: {sidecar.rejected_reason}"
            )
        else:
            stale += 1
    return SidecarCounts(synced, stale, rejecting, rejection)


def build_accepted(diagnostics: Sequence[Diagnostic], accepted: bool) -> Condition:
    """The Accepted condition from the resource's diagnostics."""
    errors = [d for d in diagnostics if d.severity == "error"]
    warnings = [d for d in diagnostics if d.severity == "warning"]
    if accepted:
        message = "compiled without errors"
        if warnings:
            message = "compiled with warnings: " + _describe(warnings)
        return Condition(ACCEPTED, "True", "Accepted", _clip(message))
    return Condition(ACCEPTED, "False", "Invalid", _clip(_describe(errors or warnings)))


def build_programmed(accepted: bool, counts: SidecarCounts, generation: int) -> Condition:
    """The Programmed condition from acceptance and the sidecar counts."""
    total = counts.applicable
    if not accepted:
        return Condition(PROGRAMMED, "False", "Invalid", "not accepted, so not sent to any sidecar")
    if total == 0:
        return Condition(
            PROGRAMMED, "False", "NoSidecars", "no connected sidecar selects this resource"
        )
    if counts.rejecting:
        message = f"{counts.rejecting} of {total} sidecars rejected it: {counts.rejection}"
        return Condition(PROGRAMMED, "False", "Rejected", _clip(message))
    if counts.synced < total:
        message = f"{counts.synced} of {total} sidecars serve generation {generation}"
        return Condition(PROGRAMMED, "False", "Pending", message)
    return Condition(
        PROGRAMMED,
        "True",
        "Programmed",
        f"{total} of {total} sidecars serve generation {generation}",
    )


def build_status(
    resource: Mapping[str, Any],
    diagnostics: Sequence[Diagnostic],
    accepted: bool,
    counts: SidecarCounts,
    previous: Mapping[str, Any],
    now: str,
    extra: tuple[Mapping[str, Any], Sequence[Condition]] = ({}, ()),
) -> dict[str, Any]:
    """The status of `resource`, keeping transition times from `previous`.

    `extra` is a kind's own status fields and conditions (an LLMQuota's usage).
    """
    generation = int((resource.get("metadata") or {}).get("generation") or 0)
    fields, extra_conditions = extra
    conditions = [
        build_accepted(diagnostics, accepted),
        build_programmed(accepted, counts, generation),
        *extra_conditions,
    ]
    before = {c.get("type"): c for c in previous.get("conditions") or [] if isinstance(c, Mapping)}
    written = []
    for condition in conditions:
        old = before.get(condition.type) or {}
        changed = old.get("status") != condition.status or not old.get("lastTransitionTime")
        written.append(
            {
                "type": condition.type,
                "status": condition.status,
                "reason": condition.reason,
                "message": condition.message,
                "lastTransitionTime": now if changed else old["lastTransitionTime"],
                "observedGeneration": generation,
            }
        )
    return {
        "observedGeneration": generation,
        "conditions": written,
        "sidecars": {
            "synced": counts.synced,
            "stale": counts.stale,
            "rejecting": counts.rejecting,
        },
        **build_spec_summary(resource),
        **fields,
    }


def build_spec_summary(resource: Mapping[str, Any]) -> dict[str, Any]:
    """Status fields that summarise the spec for printer columns: a Guardrail's `rules`."""
    if resource.get("kind") != "Guardrail":
        return {}
    rules = (resource.get("spec") or {}).get("rules")
    return {"rules": len(rules) if isinstance(rules, list) else 0}


def build_rejection_event(
    previous: Mapping[str, Any], status: Mapping[str, Any]
) -> tuple[str, str] | None:
    """(reason, message) of the Warning Event to emit, when Accepted became False (anew)."""
    new = _condition(status, ACCEPTED)
    if new is None or new.get("status") != "False":
        return None
    old = _condition(previous, ACCEPTED)
    if old is not None and (old.get("status"), old.get("message")) == ("False", new["message"]):
        return None
    return str(new["reason"]), str(new["message"])


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def _describe(diagnostics: Sequence[Diagnostic]) -> str:
    return "; ".join(f"{d.field}: {d.message}" if d.field else d.message for d in diagnostics)


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"
