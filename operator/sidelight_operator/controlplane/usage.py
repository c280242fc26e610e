"""ReportUsage: the records a sidecar reports, stamped with its pod's identity, stored.

A stream's first `UsageReport` carries the sidecar's `Node`; the servicer
authenticates it exactly as it does StreamSnapshots (bearer token, first
message's node, peer) and binds the stream to the `PodRef` it gets. Every
report is then answered by one `UsageAck`, in order, with the ids of its
records, sent only after `UsageIngest.ingest` returned: an id that was
already stored is acknowledged too (the sidecar re-sends after a reconnect,
and the store drops what it has seen). Delivery is at-least-once, counting is
exactly-once.

What a record says about who made the call is not trusted
(`build_identity`): namespace and pod come from the `PodRef`; team,
application and environment from the pod's labels named by the chart's
`sidecar.identityLabels` (the labels the injector reads); the workload is
kept only when it is consistent with the pod's name (`consistent_workload`),
else it is the pod's name. With `trust_records` (standalone mode on
loopback, where the one sidecar runs in the operator's process) the
record's identity is kept as it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sidelight_operator.controlplane.auth import PodRef
from sidelight_operator.inject.config import IdentityLabels
from sidelight_proto.v1 import control_plane_pb2, usage_pb2

log = logging.getLogger(__name__)

GENERATED_PREFIX_LENGTH = 58
"""Kubernetes truncates a generateName to 58 characters before adding 5 random ones."""


class UsageIngest(Protocol):
    """Where the records go: the operator's usage store."""

    def ingest(self, records: Sequence[usage_pb2.UsageRecord]) -> int:
        """Store the records whose ids are new; how many were. Thread-safe."""
        ...


@dataclass(frozen=True)
class UsageReporting:
    """What ReportUsage needs: the store, and which pod labels name the identity."""

    ingest: UsageIngest
    identity_labels: IdentityLabels = field(default_factory=IdentityLabels)
    trust_records: bool = False
    """Keep the records' own identity: standalone mode on loopback only."""


def consistent_workload(pod: str, workload: str) -> bool:
    """Whether a pod of this name can belong to `workload` (its name or a generated one)."""
    if not workload:
        return False
    return pod == workload or pod.startswith(f"{workload}-"[:GENERATED_PREFIX_LENGTH])


def build_identity(
    pod: PodRef, claimed: usage_pb2.Identity, labels: IdentityLabels
) -> usage_pb2.Identity:
    """The identity of a record from `pod`: the pod's, whatever the record claims."""
    return usage_pb2.Identity(
        namespace=pod.namespace,
        pod=pod.name,
        workload=claimed.workload if consistent_workload(pod.name, claimed.workload) else pod.name,
        team=pod.labels.get(labels.team, ""),
        application=pod.labels.get(labels.application, ""),
        environment=pod.labels.get(labels.environment, ""),
    )


async def serve_reports(
    reporting: UsageReporting,
    pod: PodRef,
    first: control_plane_pb2.UsageReport,
    reports: AsyncIterator[control_plane_pb2.UsageReport],
) -> AsyncGenerator[control_plane_pb2.UsageAck, None]:
    """Store each report's records (identity from `pod`) and acknowledge them, in order."""
    stamps = _Stamps(pod, reporting.identity_labels)
    received = len(first.records)
    try:
        yield await _store(reporting, stamps, first)
        async for report in reports:
            received += len(report.records)
            yield await _store(reporting, stamps, report)
    finally:
        log.debug("usage stream of %s/%s ended after %d records", pod.namespace, pod.name, received)


class _Stamps:
    """A stream's identities, built once per workload claimed (a pod claims one)."""

    LIMIT = 8

    def __init__(self, pod: PodRef, labels: IdentityLabels) -> None:
        self.pod = pod
        self.labels = labels
        self._built: dict[str, usage_pb2.Identity] = {}

    def __call__(self, claimed: usage_pb2.Identity) -> usage_pb2.Identity:
        identity = self._built.get(claimed.workload)
        if identity is None:
            identity = build_identity(self.pod, claimed, self.labels)
            if len(self._built) < self.LIMIT:
                self._built[claimed.workload] = identity
        return identity


async def _store(
    reporting: UsageReporting, stamps: _Stamps, report: control_plane_pb2.UsageReport
) -> control_plane_pb2.UsageAck:
    records = report.records
    if not reporting.trust_records:
        for record in records:
            record.identity.CopyFrom(stamps(record.identity))
    if records:
        await asyncio.to_thread(reporting.ingest.ingest, records)
    return control_plane_pb2.UsageAck(ids=[record.id for record in records])
