"""The injection's parts: the namespace index, the configuration, the JSON Patch, the workload."""

from __future__ import annotations

from typing import Any

import pytest

from sidelight_operator.inject import build_injection_config, namespace_opted_in
from sidelight_operator.inject.config import ConfigError, parse_server_version
from sidelight_operator.inject.namespaces import NamespaceIndex
from sidelight_operator.inject.patch import build_json_patch
from sidelight_operator.inject.sidecar import build_workload


def namespace(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, **meta}}


def test_the_index_keeps_name_labels_and_annotations_only() -> None:
    index = NamespaceIndex()
    assert not index.synced.is_set()
    index.replace([namespace("a", labels={"x": "1"}, uid="u", resourceVersion="9")])
    assert index.synced.is_set()
    assert index.get("a") == {"metadata": {"name": "a", "labels": {"x": "1"}}}
    index.put(namespace("b", annotations={"sidelight.io/inject": "enabled"}))
    index.delete("a")
    assert index.get("a") is None
    assert index.get("b") == {
        "metadata": {"name": "b", "annotations": {"sidelight.io/inject": "enabled"}}
    }


async def test_resolve_reads_a_miss_and_a_watch_event_wins_over_the_read() -> None:
    index = NamespaceIndex()
    reads: list[str] = []

    async def read(name: str) -> dict[str, Any] | None:
        reads.append(name)
        # While the GET is on its way, the watch delivers a newer state.
        index.put(namespace(name, annotations={"sidelight.io/inject": "enabled"}))
        return namespace(name)

    found = await index.resolve("late", read)
    assert found is not None
    assert namespace_opted_in(found)
    assert await index.resolve("late", read) == found
    assert reads == ["late"]

    async def gone(name: str) -> dict[str, Any] | None:
        return None

    assert await index.resolve("missing", gone) is None
    assert index.get("missing") is None


@pytest.mark.parametrize(
    ("meta", "opted_in"),
    [
        ({"annotations": {"sidelight.io/inject": "enabled"}}, True),
        ({"labels": {"sidelight.io/inject": "enabled"}}, True),
        ({"annotations": {"sidelight.io/inject": " Enabled "}}, True),
        (
            {
                "annotations": {"sidelight.io/inject": "disabled"},
                "labels": {"sidelight.io/inject": "enabled"},
            },
            False,
        ),
        ({"annotations": {"sidelight.io/inject": "true"}}, False),
        ({}, False),
    ],
)
def test_namespace_opt_in(meta: dict[str, Any], opted_in: bool) -> None:
    assert namespace_opted_in(namespace("n", **meta)) is opted_in


def test_the_config_document_is_checked() -> None:
    base = {"image": "i:1", "controlPlane": "cp:1"}
    config = build_injection_config(
        {**base, "excludedNamespaces": ["ops"]}, server_version=(1, 28), ca_bundle="PEM"
    )
    assert not config.native_sidecar
    assert config.excluded_namespaces == {"kube-system", "kube-public", "kube-node-lease", "ops"}
    assert config.ca_bundle == "PEM"
    assert not config.fail_closed
    failures: dict[str, dict[str, Any]] = {
        "unknown injection settings: colour": {**base, "colour": "blue"},
        "injection setting 'image' is required": {"controlPlane": "cp:1"},
        "failurePolicy must be Ignore or Fail, not 'Never'": {**base, "failurePolicy": "Never"},
        "port 0 is not a TCP port": {**base, "port": 0},
        "unknown identityLabels: owner": {**base, "identityLabels": {"owner": "x"}},
    }
    for message, document in failures.items():
        with pytest.raises(ConfigError, match=message):
            build_injection_config(document, server_version=(1, 30))


def test_server_versions() -> None:
    assert parse_server_version("1", "29+") == (1, 29)
    assert parse_server_version("1", "37") == (1, 37)
    with pytest.raises(ConfigError):
        parse_server_version("", "x")


def test_json_patch_operations() -> None:
    before = {"a/b": 1, "t~": [1, 2], "gone": True, "list": [1, 2], "n": 1, "d": {"x": 1}}
    after = {"a/b": 2, "t~": [0, 1, 2], "list": [1, 2, 3], "n": True, "d": {"x": 1, "y": [9]}}
    assert build_json_patch(before, after) == [
        {"op": "remove", "path": "/gone"},
        {"op": "replace", "path": "/a~1b", "value": 2},
        {"op": "add", "path": "/t~0/0", "value": 0},
        {"op": "add", "path": "/list/-", "value": 3},
        {"op": "replace", "path": "/n", "value": True},
        {"op": "add", "path": "/d/y", "value": [9]},
    ]
    assert build_json_patch([1, 2, 3], [3, 2]) == [{"op": "replace", "path": "", "value": [3, 2]}]
    assert build_json_patch({"a": [1]}, {"a": [1]}) == []


@pytest.mark.parametrize(
    ("meta", "workload"),
    [
        (
            {
                "labels": {"pod-template-hash": "7d4b9c8f6d"},
                "ownerReferences": [
                    {"kind": "ReplicaSet", "name": "web-7d4b9c8f6d", "controller": True}
                ],
            },
            "web",
        ),
        ({"ownerReferences": [{"kind": "ReplicaSet", "name": "api-v2-5f6c7d8b9"}]}, "api-v2"),
        ({"ownerReferences": [{"kind": "ReplicaSet", "name": "plain"}]}, "plain"),
        (
            {"ownerReferences": [{"kind": "Job", "name": "nightly-28391234", "controller": True}]},
            "nightly-28391234",
        ),
        (
            {
                "ownerReferences": [
                    {"kind": "Node", "name": "n1"},
                    {"kind": "DaemonSet", "name": "agent", "controller": True},
                ]
            },
            "agent",
        ),
        ({"name": "bare"}, "bare"),
        ({"generateName": "batch-"}, "batch"),
    ],
)
def test_workload_names(meta: dict[str, Any], workload: str) -> None:
    assert build_workload({"metadata": meta}) == workload
