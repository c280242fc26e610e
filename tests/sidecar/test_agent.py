"""The agent's answers (ACK, NACK, no rebuild) and its node, without a network."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sidelight_operator.compile import compile_snapshot
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2
from sidelight_sidecar.agent import ControlPlaneAgent
from sidelight_sidecar.agent_node import build, node_from_env, read_labels
from sidelight_sidecar.config_store import ConfigStore

SECRET_KEY = "sk-never-logged-0123456789"


def snapshot(route: str) -> snapshot_pb2.Snapshot:
    resource = {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"namespace": "shop", "name": "assistant"},
        "spec": {
            "backends": [
                {
                    "name": "main",
                    "provider": "openai",
                    "model": "gpt-4",
                    "endpoints": [{"url": "http://127.0.0.1:9/v1"}],
                    "credentials": {"secretRef": {"name": "openai", "key": "api-key"}},
                }
            ],
            "routes": [{"name": route, "routeTo": "main"}],
        },
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"namespace": "shop", "name": "openai"},
        "stringData": {"api-key": SECRET_KEY},
    }
    result = compile_snapshot([resource, secret])
    assert not result.diagnostics
    return result.snapshot


def respond(s: snapshot_pb2.Snapshot, nonce: str = "1") -> control_plane_pb2.SnapshotResponse:
    return control_plane_pb2.SnapshotResponse(snapshot=s, nonce=nonce)


@pytest.fixture
def agent(tmp_path: Path) -> ControlPlaneAgent:
    store = ConfigStore(tmp_path / "snapshot.pb")
    return ControlPlaneAgent(store, "127.0.0.1:1", control_plane_pb2.Node(pod="p", namespace="n"))


def test_a_good_snapshot_is_applied_persisted_and_acked(agent: ControlPlaneAgent) -> None:
    s = snapshot("first")
    answer = agent.answer(respond(s, "n1"))
    assert answer == control_plane_pb2.SnapshotRequest(version_info=s.version, response_nonce="n1")
    assert not answer.HasField("error_detail")
    assert agent.held_version == s.version
    assert agent.store.persist_path is not None
    restarted = ConfigStore(agent.store.persist_path)
    assert restarted.load_persisted()
    assert restarted.current is not None
    assert restarted.current.version == s.version


def test_a_bad_snapshot_is_nacked_with_the_kept_version(
    agent: ControlPlaneAgent, caplog: pytest.LogCaptureFixture
) -> None:
    good = snapshot("first")
    agent.answer(respond(good))
    bad = snapshot("second")
    bad.route_sets[0].routes[0].route_to = "nowhere"
    bad.version = "bad"
    with caplog.at_level(logging.INFO):
        answer = agent.answer(respond(bad, "n2"))
    assert answer.version_info == good.version
    assert answer.response_nonce == "n2"
    assert answer.error_detail.message == (
        "shop/assistant: route 'second' names unknown backends ['nowhere']"
    )
    assert agent.held_version == good.version
    assert "refused configuration version bad" in caplog.text
    assert SECRET_KEY not in caplog.text


def test_a_nack_before_any_snapshot_keeps_nothing(agent: ControlPlaneAgent) -> None:
    unversioned = snapshot("first")
    unversioned.version = ""
    answer = agent.answer(respond(unversioned))
    assert answer.version_info == ""
    assert answer.error_detail.message == "the snapshot has no version"
    assert agent.store.current is None


def test_the_version_already_served_is_acked_without_a_rebuild(agent: ControlPlaneAgent) -> None:
    s = snapshot("first")
    agent.answer(respond(s, "n1"))
    runtime = agent.store.current
    answer = agent.answer(respond(s, "n2"))
    assert answer == control_plane_pb2.SnapshotRequest(version_info=s.version, response_nonce="n2")
    assert agent.store.current is runtime


def test_the_node_comes_from_the_pods_environment(tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.write_text('app="chat"\napp.kubernetes.io/part-of="shop"\ntier="a\\"b"\n\nbroken\n')
    env = {
        "SIDELIGHT_POD_NAME": "chat-7d9f",
        "SIDELIGHT_POD_NAMESPACE": "shop",
        "SIDELIGHT_POD_UID": "uid-7",
        "SIDELIGHT_SERVICE_ACCOUNT": "chat",
    }
    node = node_from_env(env, labels)
    assert node == control_plane_pb2.Node(
        pod="chat-7d9f",
        namespace="shop",
        uid="uid-7",
        service_account="chat",
        build=build(),
        labels={"app": "chat", "app.kubernetes.io/part-of": "shop", "tier": 'a"b'},
    )
    assert build().startswith("sidelight/")
    assert node_from_env({}).labels == {}


def test_labels_tolerate_unquoted_and_badly_quoted_values(tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.write_text('plain=value\nodd="\\q"\n=nokey\n')
    assert read_labels(labels) == {"plain": "value", "odd": "\\q"}


def test_a_snapshot_that_crashes_the_build_is_nacked(
    agent: ControlPlaneAgent, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def crash(snapshot: snapshot_pb2.Snapshot) -> str | None:
        raise KeyError("bug")

    monkeypatch.setattr(agent.store, "apply", crash)
    answer = agent.answer(respond(snapshot("first")))
    assert answer.error_detail.message == "the sidecar failed to build it (KeyError)"
    assert "building configuration version" in caplog.text
