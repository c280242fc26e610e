"""load_resources: YAML files and directories in, plain resource dicts out."""

from __future__ import annotations

from pathlib import Path

from sidelight_operator.standalone import load_resources

ROUTE = "apiVersion: sidelight.io/v1alpha1\nkind: LLMRoute\nmetadata: {{name: {name}}}\n"


def test_multi_document_file_skips_empty_documents(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTE.format(name="a") + "---\n---\n# nothing\n---\n" + ROUTE.format(name="b"))
    resources, diagnostics = load_resources([path])
    assert [r["metadata"]["name"] for r in resources] == ["a", "b"]
    assert diagnostics == []


def test_directory_reads_yaml_files_sorted_not_recursively(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text(ROUTE.format(name="b"))
    (tmp_path / "a.yaml").write_text(ROUTE.format(name="a"))
    (tmp_path / "notes.txt").write_text("not: yaml: at all:")
    (tmp_path / ".hidden.yaml").write_text(ROUTE.format(name="hidden"))
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "c.yaml").write_text(ROUTE.format(name="c"))
    resources, diagnostics = load_resources([tmp_path])
    assert [r["metadata"]["name"] for r in resources] == ["a", "b"]
    assert diagnostics == []


def test_a_file_named_explicitly_is_read_whatever_its_extension(tmp_path: Path) -> None:
    path = tmp_path / "routes.txt"
    path.write_text(ROUTE.format(name="a"))
    resources, _ = load_resources([path])
    assert [r["metadata"]["name"] for r in resources] == ["a"]


def test_missing_namespace_defaults_to_default(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(ROUTE.format(name="a") + "---\n" + ROUTE.format(name="b, namespace: shop"))
    resources, _ = load_resources([path])
    assert [r["metadata"]["namespace"] for r in resources] == ["default", "shop"]


def test_list_contributes_its_items(tmp_path: Path) -> None:
    path = tmp_path / "dump.yaml"
    path.write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: sidelight.io/v1alpha1, kind: LLMRoute, metadata: {name: a}}\n"
        "- {apiVersion: v1, kind: Secret, metadata: {name: s, namespace: x}}\n"
    )
    resources, diagnostics = load_resources([path])
    assert [(r["kind"], r["metadata"]["namespace"]) for r in resources] == [
        ("LLMRoute", "default"),
        ("Secret", "x"),
    ]
    assert diagnostics == []


def test_syntax_error_names_file_and_line_and_keeps_earlier_documents(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(ROUTE.format(name="a") + "---\nkind: LLMRoute\nmetadata: {name: [b\n")
    resources, [diagnostic] = load_resources([path])
    assert [r["metadata"]["name"] for r in resources] == ["a"]
    assert (diagnostic.kind, diagnostic.name, diagnostic.severity) == ("File", str(path), "error")
    assert diagnostic.message.startswith("YAML syntax error at line 7, column 1:")


def test_documents_that_are_not_objects(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text("- a\n- b\n---\nmetadata: {name: x}\n---\n" + ROUTE.format(name="ok"))
    resources, diagnostics = load_resources([path])
    assert [r["metadata"]["name"] for r in resources] == ["ok"]
    assert [d.message for d in diagnostics] == [
        "document 1 is not a Kubernetes object (apiVersion, kind)",
        "document 2 is not a Kubernetes object (apiVersion, kind)",
    ]


def test_missing_and_unreadable_paths(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00kind")
    resources, diagnostics = load_resources([missing, binary])
    assert resources == []
    assert [(d.name, d.message.split(":")[0]) for d in diagnostics] == [
        (str(missing), "no such file or directory"),
        (str(binary), "cannot read"),
    ]


def test_dates_stay_strings_as_for_kubectl(tmp_path: Path) -> None:
    path = tmp_path / "azure.yaml"
    path.write_text(
        ROUTE.format(name="a")
        + "spec: {backends: [{apiVersion: 2024-06-01}]}\n"
        + "status: {at: 2024-06-01T10:00:00Z}\n"
    )
    [resource], _ = load_resources([path])
    assert resource["spec"]["backends"][0]["apiVersion"] == "2024-06-01"
    assert resource["status"]["at"] == "2024-06-01T10:00:00Z"
