"""The hub's state machine, driven without sockets: connect, push, ACK, NACK, debounce."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from sidelight_operator.compile import snapshot_version
from sidelight_operator.controlplane import Hub, Nack, PodRef, Session, SnapshotUnavailable
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2

POD = PodRef("team-a", "app-1", "uid-1", "app", {"app": "chat"})


def snapshot(name: str) -> snapshot_pb2.Snapshot:
    """A snapshot whose content (one route set named `name`) fixes its version."""
    s = snapshot_pb2.Snapshot()
    s.route_sets.add().source.name = name
    s.version = snapshot_version(s)
    return s


class Resources:
    """What `snapshot_for` serves, and how often it was asked."""

    def __init__(self, name: str = "v1") -> None:
        self.name = name
        self.calls = 0

    def __call__(self, pod: PodRef) -> snapshot_pb2.Snapshot:
        self.calls += 1
        return snapshot(self.name)


def hello(version: str = "") -> control_plane_pb2.SnapshotRequest:
    return control_plane_pb2.SnapshotRequest(
        node=control_plane_pb2.Node(pod="app-1", namespace="team-a", build="test/1"),
        version_info=version,
    )


def ack(response: control_plane_pb2.SnapshotResponse) -> control_plane_pb2.SnapshotRequest:
    return control_plane_pb2.SnapshotRequest(
        version_info=response.snapshot.version, response_nonce=response.nonce
    )


def nack(
    response: control_plane_pb2.SnapshotResponse, kept: str, reason: str
) -> control_plane_pb2.SnapshotRequest:
    return control_plane_pb2.SnapshotRequest(
        version_info=kept,
        response_nonce=response.nonce,
        error_detail=control_plane_pb2.ErrorDetail(message=reason),
    )


async def next_response(session: Session) -> control_plane_pb2.SnapshotResponse:
    response = await asyncio.wait_for(session.next_response(), 5)
    assert response is not None
    return response


async def settle(hub: Hub) -> None:
    """Wait until the notified changes have been pushed (polling, with a deadline)."""
    async with asyncio.timeout(5):
        while hub.pending_change:
            await asyncio.sleep(0.005)


def queued(session: Session) -> bool:
    """Whether a response is waiting to be written (without waiting for one)."""
    return session._pending is not None


async def test_connect_sends_the_pods_snapshot_and_tracks_the_ack() -> None:
    resources = Resources()
    hub = Hub(resources)
    events: list[str] = []
    hub.listeners.append(lambda: events.append("event"))
    session = hub.connect(POD, hello())
    response = await next_response(session)
    assert response.snapshot.version == snapshot("v1").version
    assert response.nonce
    [state] = hub.sidecars()
    assert state.connected
    assert state.pod == POD
    assert state.build == "test/1"
    assert state.sent_version == response.snapshot.version
    assert state.acked_version is None
    assert not state.synced
    hub.receive(session, ack(response))
    [state] = hub.sidecars()
    assert state.acked_version == response.snapshot.version
    assert state.acked_snapshot == response.snapshot
    assert state.serving_version == response.snapshot.version
    assert state.synced
    assert events == ["event", "event"]


async def test_ten_notifies_make_one_push() -> None:
    resources = Resources()
    hub = Hub(resources, debounce_s=0.05)
    session = hub.connect(POD, hello())
    hub.receive(session, ack(await next_response(session)))
    resources.name, resources.calls = "v2", 0
    for _ in range(10):
        hub.notify_changed()
    await settle(hub)
    assert resources.calls == 1
    response = await next_response(session)
    assert response.snapshot.version == snapshot("v2").version
    assert not queued(session)
    assert list(session.outstanding) == [response.nonce]


async def test_notifies_from_other_threads_are_debounced_too() -> None:
    resources = Resources()
    hub = Hub(resources, debounce_s=0.05)
    session = hub.connect(POD, hello())
    hub.receive(session, ack(await next_response(session)))
    resources.name, resources.calls = "v2", 0
    threads = [threading.Thread(target=hub.notify_changed) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hub.pending_change
    await settle(hub)
    assert resources.calls == 1
    assert (await next_response(session)).snapshot.version == snapshot("v2").version


async def test_a_stream_of_changes_is_pushed_within_the_max_delay() -> None:
    resources = Resources()
    hub = Hub(resources, debounce_s=0.05, max_delay_s=0.1)
    session = hub.connect(POD, hello())
    hub.receive(session, ack(await next_response(session)))
    resources.name = "v2"
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not queued(session):
        assert loop.time() - start < 5
        hub.notify_changed()  # a change every 10 ms: the debounce alone would never fire
        await asyncio.sleep(0.01)
    assert loop.time() - start < 1


async def test_unchanged_versions_are_not_pushed_again() -> None:
    resources = Resources()
    hub = Hub(resources, debounce_s=0.01)
    session = hub.connect(POD, hello())
    hub.receive(session, ack(await next_response(session)))
    hub.notify_changed()
    await settle(hub)
    assert resources.calls == 2
    assert not queued(session)


async def test_a_nack_keeps_the_acked_version_and_is_not_pushed_again() -> None:
    resources = Resources()
    hub = Hub(resources, debounce_s=0.01)
    session = hub.connect(POD, hello())
    first = await next_response(session)
    hub.receive(session, ack(first))
    resources.name = "bad"
    hub.notify_changed()
    await settle(hub)
    bad = await next_response(session)
    hub.receive(session, nack(bad, first.snapshot.version, "route names unknown backends"))
    [state] = hub.sidecars()
    assert state.acked_version == first.snapshot.version
    assert state.acked_snapshot == first.snapshot
    assert state.nack == Nack(bad.snapshot.version, "route names unknown backends")
    assert state.serving_version == first.snapshot.version
    assert state.rejecting
    assert not state.synced
    hub.notify_changed()  # the same bad version: not sent again
    await settle(hub)
    assert not queued(session)
    resources.name = "v3"
    hub.notify_changed()
    await settle(hub)
    fixed = await next_response(session)
    hub.receive(session, ack(fixed))
    [state] = hub.sidecars()
    assert state.acked_version == fixed.snapshot.version
    assert state.nack is None
    assert not state.rejecting


async def test_an_answer_to_a_superseded_response_still_counts() -> None:
    resources = Resources()
    hub = Hub(resources, debounce_s=0.01)
    session = hub.connect(POD, hello())
    first = await next_response(session)
    resources.name = "v2"
    hub.notify_changed()
    await settle(hub)
    second = await next_response(session)
    assert second.nonce != first.nonce
    hub.receive(session, ack(first))  # sent before v2 arrived: it served v1 then
    [state] = hub.sidecars()
    assert state.acked_version == first.snapshot.version
    assert not state.synced
    hub.receive(session, ack(first))  # a nonce answered already: ignored
    hub.receive(session, nack(second, first.snapshot.version, "no"))
    hub.receive(session, ack(second))  # its nonce was answered: ignored
    [state] = hub.sidecars()
    assert state.acked_version == first.snapshot.version
    assert state.rejecting


async def test_an_answer_skips_the_responses_sent_before_it() -> None:
    resources = Resources()
    hub = Hub(resources, debounce_s=0.01)
    session = hub.connect(POD, hello())
    first = await next_response(session)
    resources.name = "v2"
    hub.notify_changed()
    await settle(hub)
    second = await next_response(session)
    hub.receive(session, ack(second))
    hub.receive(session, ack(first))  # older than an answered one: ignored
    assert hub.sidecars()[0].acked_version == second.snapshot.version
    assert session.outstanding == {}


async def test_only_the_newest_unwritten_response_is_sent() -> None:
    resources = Resources()
    hub = Hub(resources, debounce_s=0.01)
    session = hub.connect(POD, hello())
    resources.name = "v2"
    hub.notify_changed()
    await settle(hub)
    response = await next_response(session)
    assert response.snapshot.version == snapshot("v2").version
    assert not queued(session)
    assert list(session.outstanding) == [response.nonce]


async def test_a_reconnect_replaces_the_old_session_and_a_disconnect_is_kept() -> None:
    now = [0.0]
    hub = Hub(Resources(), forget_after_s=60, clock=lambda: now[0])
    old = hub.connect(POD, hello())
    new = hub.connect(POD, hello(snapshot("v1").version))
    assert await asyncio.wait_for(old.next_response(), 5) is None
    [state] = hub.sidecars()
    assert state.connected
    assert state.serving_version == snapshot("v1").version
    hub.disconnect(old)  # the old stream's end changes nothing
    assert hub.sidecars()[0].connected
    hub.disconnect(new)
    assert await asyncio.wait_for(new.next_response(), 5) is None
    [state] = hub.sidecars()
    assert not state.connected
    now[0] = 61.0
    assert hub.sidecars() == []


async def test_pushes_skip_disconnected_sidecars_and_notify_before_any_connect_is_harmless() -> (
    None
):
    resources = Resources()
    hub = Hub(resources, debounce_s=0.01)
    hub.notify_changed()
    session = hub.connect(POD, hello())
    hub.disconnect(session)
    resources.calls = 0
    hub.notify_changed()
    await settle(hub)
    assert resources.calls == 0


async def test_a_snapshot_without_version_gets_its_content_hash() -> None:
    def unversioned(pod: PodRef) -> snapshot_pb2.Snapshot:
        s = snapshot("v1")
        s.version = ""
        return s

    session = Hub(unversioned).connect(POD, hello())
    assert (await next_response(session)).snapshot.version == snapshot("v1").version


async def test_a_failing_snapshot_for_refuses_the_connect_and_spares_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = {"team-b"}

    def snapshot_for(pod: PodRef) -> snapshot_pb2.Snapshot:
        if pod.namespace in broken:
            raise RuntimeError("index not ready")
        return snapshot(pod.namespace + str(len(broken)))

    hub = Hub(snapshot_for, debounce_s=0.01)
    with pytest.raises(SnapshotUnavailable):
        hub.connect(PodRef("team-b", "b", "uid-b", "b"), hello())
    session = hub.connect(POD, hello())
    await next_response(session)
    broken.add("team-a")
    hub.notify_changed()
    await settle(hub)
    assert not queued(session)
    assert "index not ready" in caplog.text


async def test_a_failing_listener_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub(Resources())
    seen: list[int] = []

    def broken() -> None:
        raise RuntimeError("listener bug")

    listeners: list[Callable[[], None]] = [broken, lambda: seen.append(1)]
    hub.listeners.extend(listeners)
    hub.connect(POD, hello())
    assert seen == [1]
    assert "listener bug" in caplog.text
