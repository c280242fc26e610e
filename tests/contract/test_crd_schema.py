"""Contract tests of the CRDs in crds/ and the examples in crds/examples/.

Every CRD is structural (a type on every schema node, sizes bounded so the
CEL rules fit the API server's cost limits), has the status subresource and
printer columns that point at fields of its schema. Every example is valid
against its CRD's schema (checked by the small validator below, which knows
exactly the keywords our CRDs use), compiles without a single diagnostic
once its Secrets exist, and builds in the sidecar. CEL rules are not
evaluated here: the compile step repeats each of them (see the golden
corpus), and the e2e rig runs them in a real API server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidelight_operator.compile import compile_snapshot, reader, routes, selection
from sidelight_operator.compile import llmroute as compile_llmroute
from sidelight_operator.standalone import env_name, load_resources, resolve_secrets
from sidelight_sidecar.balancer import EndpointRegistry
from sidelight_sidecar.runtime import build_runtime

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
EXAMPLES = CRDS / "examples"
TYPES = {"object", "array", "string", "integer", "number", "boolean"}
KEYWORDS = {
    "type", "description", "properties", "required", "additionalProperties", "items",
    "enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "format",
    "minItems", "maxItems", "minProperties", "maxProperties", "x-kubernetes-validations",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "default",
}  # fmt: skip
PRINTER_TYPES = {"integer", "number", "string", "boolean", "date"}
DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def crd_files() -> list[Path]:
    """Every CRD file."""
    return sorted(CRDS.glob("*.yaml"))


def load_crd(path: Path) -> dict[str, Any]:
    """One CRD document."""
    crd: dict[str, Any] = yaml.safe_load(path.read_text())
    return crd


def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """openAPIV3Schema by (apiVersion, kind), for every served version of every CRD."""
    found = {}
    for path in crd_files():
        spec = load_crd(path)["spec"]
        for version in spec["versions"]:
            api_version = f"{spec['group']}/{version['name']}"
            found[(api_version, spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return found


def walk(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema node under `schema` with its path (`[]` for list items, `{}` for map values)."""
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}" if path else name)
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def node(schema: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """The schema node at `path` (dotted, `[]` for list items)."""
    for part in path.split("."):
        name, items = part.removesuffix("[]"), part.endswith("[]")
        schema = schema["properties"][name]
        if items:
            schema = schema["items"]
    return schema


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize("path", crd_files(), ids=lambda p: p.name)
def test_crd_is_structural(path: Path) -> None:
    crd = load_crd(path)
    assert (crd["apiVersion"], crd["kind"]) == (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
    )
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}"
    assert sum(v["storage"] for v in spec["versions"]) == 1
    for version in spec["versions"]:
        root = version["schema"]["openAPIV3Schema"]
        assert root["properties"]["metadata"] == {"type": "object"}
        for where, schema in walk(root):
            assert schema.get("type") in TYPES, f"{where}: no type"
            assert set(schema) <= KEYWORDS, f"{where}: unknown keywords {set(schema) - KEYWORDS}"
            assert not ("properties" in schema and "additionalProperties" in schema), where
            assert schema["type"] != "array" or "items" in schema, f"{where}: array without items"
            for rule in schema.get("x-kubernetes-validations", []):
                assert rule.get("message"), f"{where}: {rule['rule']} has no message"
                assert "\n" not in rule["rule"], f"{where}: {rule['rule']} spans lines"
            if "default" in schema:
                assert validate(schema["default"], schema) == [], f"{where}: invalid default"


@pytest.mark.parametrize("path", crd_files(), ids=lambda p: p.name)
def test_spec_sizes_are_bounded_for_cel(path: Path) -> None:
    for version in load_crd(path)["spec"]["versions"]:
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        for where, schema in walk(spec, "spec"):
            if schema["type"] == "string":
                assert "maxLength" in schema or "enum" in schema, f"{where}: unbounded string"
            if schema["type"] == "array":
                assert "maxItems" in schema, f"{where}: unbounded list"
            if "additionalProperties" in schema:
                assert "maxProperties" in schema, f"{where}: unbounded map"


@pytest.mark.parametrize("path", crd_files(), ids=lambda p: p.name)
def test_status_subresource_and_conditions(path: Path) -> None:
    for version in load_crd(path)["spec"]["versions"]:
        assert version["subresources"]["status"] == {}
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        conditions = status["properties"]["conditions"]
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        fields = set(conditions["items"]["properties"])
        assert fields == {
            "type", "status", "reason", "message", "lastTransitionTime", "observedGeneration",
        }  # fmt: skip
        assert "observedGeneration" in status["properties"]


@pytest.mark.parametrize("path", crd_files(), ids=lambda p: p.name)
def test_printer_columns_point_at_schema_fields(path: Path) -> None:
    for version in load_crd(path)["spec"]["versions"]:
        root = version["schema"]["openAPIV3Schema"]
        for column in version["additionalPrinterColumns"]:
            assert column["type"] in PRINTER_TYPES, column
            json_path = column["jsonPath"]
            if json_path.startswith(".metadata."):
                continue  # ObjectMeta is not part of a CRD schema
            schema = root
            for part in re.findall(r"\.(\w+)|\[\?\(@\.(\w+)==\"[^\"]*\"\)\]", json_path):
                name, filtered = part
                if name:
                    schema = schema["properties"][name]
                else:  # a filter on a list: the filtered field must exist in its items
                    schema = schema["items"]
                    assert filtered in schema["properties"], json_path


def test_llmroute_crd_names() -> None:
    spec = load_crd(CRDS / "llmroute.yaml")["spec"]
    assert (spec["group"], spec["scope"], spec["names"]["kind"]) == (
        "sidelight.io",
        "Namespaced",
        "LLMRoute",
    )
    assert spec["names"]["shortNames"] == ["llmr"]
    [version] = spec["versions"]
    assert version["name"] == "v1alpha1"
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Accepted", "Programmed", "Synced", "Age"]


# The compile step repeats the schema's limits; these must agree.
LLMROUTE_LIMITS = [
    ("spec.backends", "maxItems", compile_llmroute.MAX_BACKENDS),
    ("spec.backends[].name", "maxLength", routes.MAX_NAME),
    ("spec.backends[].name", "pattern", f"^{routes.NAME.pattern}$"),
    ("spec.backends[].provider", "enum", list(compile_llmroute.PROVIDERS)),
    ("spec.backends[].model", "maxLength", routes.MAX_MODEL),
    ("spec.backends[].endpoints", "maxItems", compile_llmroute.MAX_ENDPOINTS),
    ("spec.backends[].endpoints[].url", "maxLength", compile_llmroute.MAX_URL),
    ("spec.backends[].endpoints[].weight", "maximum", compile_llmroute.MAX_WEIGHT),
    ("spec.backends[].apiVersion", "maxLength", compile_llmroute.MAX_API_VERSION),
    ("spec.backends[].apiVersion", "pattern", f"^{compile_llmroute.API_VERSION.pattern}$"),
    (
        "spec.backends[].credentials.secretRef.name",
        "pattern",
        f"^{compile_llmroute.SECRET_NAME.pattern}$",
    ),
    (
        "spec.backends[].credentials.secretRef.key",
        "pattern",
        f"^{compile_llmroute.SECRET_KEY.pattern}$",
    ),
    ("spec.routes", "maxItems", routes.MAX_ROUTES),
    ("spec.routes[].name", "pattern", f"^{routes.NAME.pattern}$"),
    ("spec.routes[].fallbacks", "maxItems", routes.MAX_FALLBACKS),
    ("spec.routes[].match.taskType", "maxLength", routes.MAX_MATCH_VALUE),
    ("spec.routes[].match.inputTokensLt", "maximum", routes.MAX_TOKENS),
    ("spec.routes[].match.headers", "maxItems", routes.MAX_HEADERS),
    ("spec.routes[].match.headers[].name", "pattern", f"^{routes.HEADER_NAME.pattern}$"),
    ("spec.routes[].match.headers[].regex", "maxLength", routes.MAX_HEADER_VALUE),
    ("spec.loadBalancing.strategy", "enum", list(compile_llmroute.STRATEGIES)),
    (
        "spec.loadBalancing.ejection.consecutiveFailures",
        "maximum",
        compile_llmroute.MAX_EJECTION_FAILURES,
    ),
    ("spec.retry.attempts", "maximum", compile_llmroute.MAX_ATTEMPTS),
    ("spec.podSelector.matchLabels", "maxProperties", selection.MAX_MATCH_LABELS),
    ("spec.podSelector.matchExpressions", "maxItems", selection.MAX_MATCH_EXPRESSIONS),
    ("spec.podSelector.matchExpressions[].operator", "enum", list(selection.OPERATORS)),
    ("spec.podSelector.matchExpressions[].values", "maxItems", selection.MAX_VALUES),
]


@pytest.mark.parametrize(("path", "keyword", "value"), LLMROUTE_LIMITS)
def test_llmroute_limits_match_the_compile_step(path: str, keyword: str, value: object) -> None:
    root = schemas()[("sidelight.io/v1alpha1", "LLMRoute")]
    assert node(root, path)[keyword] == value


def test_llmroute_cel_regexes_match_the_compile_step() -> None:
    spec = schemas()[("sidelight.io/v1alpha1", "LLMRoute")]["properties"]["spec"]
    rules = " ".join(
        rule["rule"] for _, s in walk(spec) for rule in s.get("x-kubernetes-validations", [])
    )
    cel = "'^{}$'"
    assert cel.format(reader.DURATION.pattern) in rules
    assert cel.format(compile_llmroute.URL.pattern.replace("\\", "\\\\")) in rules


# ---------------------------------------------------------------- examples


def validate(value: object, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Every way `value` breaks `schema` (the OpenAPI subset in KEYWORDS; CEL excluded)."""
    kind = schema["type"]
    checks = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }
    if not checks[kind]:
        return [f"{path}: must be {kind}"]
    errors = [f"{path}: {message}" for message in _scalar_errors(value, schema)]
    if isinstance(value, dict):
        errors += _object_errors(value, schema, path)
    if isinstance(value, list):
        errors += _list_errors(value, schema, path)
    return errors


def _scalar_errors(value: object, schema: Mapping[str, Any]) -> Iterator[str]:
    if "enum" in schema and value not in schema["enum"]:
        yield f"{value!r} not in {schema['enum']}"
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        yield f"{value} out of bounds"
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            yield "length out of bounds"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            yield f"does not match {schema['pattern']}"
        if schema.get("format") == "date-time" and not DATE_TIME.fullmatch(value):
            yield "not a date-time"


def _object_errors(value: dict[str, Any], schema: Mapping[str, Any], path: str) -> list[str]:
    errors = [f"{path}.{k}: required" for k in schema.get("required", []) if k not in value]
    size = len(value)
    if not schema.get("minProperties", 0) <= size <= schema.get("maxProperties", size):
        errors.append(f"{path}: number of properties out of bounds")
    properties, extra = schema.get("properties"), schema.get("additionalProperties")
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if properties is not None and key in properties:
            errors += validate(item, properties[key], where)
        elif isinstance(extra, Mapping):
            errors += validate(item, extra, where)
        elif properties is not None:
            errors.append(f"{where}: unknown field")
    return errors


def _list_errors(value: list[Any], schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
        errors.append(f"{path}: number of items out of bounds")
    if schema.get("x-kubernetes-list-type") == "set" and len(set(map(repr, value))) < len(value):
        errors.append(f"{path}: duplicate items in a set")
    for i, item in enumerate(value):
        errors += validate(item, schema["items"], f"{path}[{i}]")
    return errors


def example_sets() -> list[Path]:
    """Each top-level example file, and each example folder, is one set of resources."""
    return sorted(p for p in EXAMPLES.iterdir() if p.is_dir() or p.suffix == ".yaml")


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every document under crds/examples, with its file name."""
    docs = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((str(path.relative_to(EXAMPLES)), doc))
    return docs


def example_params() -> list[Any]:
    """example_documents() as test parameters named `file:Kind/name`."""
    return [
        pytest.param(name, doc, id=f"{name}:{doc['kind']}/{doc['metadata']['name']}")
        for name, doc in example_documents()
    ]


def with_secrets(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`resources` plus a Secret for every secretRef they make."""
    env = {
        env_name(b["credentials"]["secretRef"]["name"], b["credentials"]["secretRef"]["key"]): "k"
        for r in resources
        if r["kind"] == "LLMRoute"
        for b in r["spec"]["backends"]
        if "credentials" in b
    }
    return [*resources, *resolve_secrets(resources, env, None)]


def test_examples_exist() -> None:
    names = {p.name for p in example_sets()}
    assert {"llmroute-assistant.yaml", "llmroute-azure.yaml", "llmroute-vllm.yaml"} <= names
    assert "guardrail-customer-data.yaml" in names
    assert "standalone" in names
    assert (EXAMPLES / "standalone" / "guardrail.yaml").is_file()


@pytest.mark.parametrize(("name", "doc"), example_params())
def test_example_is_valid_against_its_crd(name: str, doc: dict[str, Any]) -> None:
    if (doc["apiVersion"], doc["kind"]) == ("v1", "Secret"):
        return
    schema = schemas().get((doc["apiVersion"], doc["kind"]))
    assert schema is not None, f"{name}: no CRD for {doc['apiVersion']} {doc['kind']}"
    assert validate(doc, schema) == []


@pytest.mark.parametrize("path", example_sets(), ids=lambda p: p.name)
def test_example_compiles_without_diagnostics(path: Path) -> None:
    resources, load_diagnostics = load_resources([path])
    assert load_diagnostics == []
    result = compile_snapshot(with_secrets(resources))
    assert result.diagnostics == []
    assert result.accepted
    assert all(result.accepted.values())
    build_runtime(result.snapshot, EndpointRegistry())  # the sidecar accepts it


def test_standalone_examples_point_at_the_fake_provider() -> None:
    resources, _ = load_resources([EXAMPLES / "standalone"])
    urls = [
        e["url"]
        for r in resources
        if r["kind"] == "LLMRoute"
        for b in r["spec"]["backends"]
        for e in b["endpoints"]
    ]
    assert urls
    assert all(u.startswith("http://127.0.0.1:18080") for u in urls)


def test_validator_rejects_what_the_schema_forbids() -> None:
    schema = schemas()[("sidelight.io/v1alpha1", "LLMRoute")]
    [(_, good)] = [d for d in example_documents() if d[0] == "llmroute-assistant.yaml"]
    bad = yaml.safe_load(yaml.safe_dump(good))  # sorts keys: errors come in key order
    bad["spec"]["backends"][0]["provider"] = "cohere"
    bad["spec"]["backends"][0]["extra"] = True
    bad["spec"]["routes"][0]["fallbacks"] = ["gpt-4", "gpt-4"]
    bad["spec"]["retry"]["attempts"] = 0
    bad["status"] = {"conditions": [{"type": "Accepted", "status": "Yes"}]}
    assert validate(bad, schema) == [
        "spec.backends[0].provider: 'cohere' not in "
        "['openai', 'azure-openai', 'anthropic', 'openai-compatible']",
        "spec.backends[0].extra: unknown field",
        "spec.retry.attempts: 0 out of bounds",
        "spec.routes[0].fallbacks: duplicate items in a set",
        "status.conditions[0].reason: required",
        "status.conditions[0].message: required",
        "status.conditions[0].lastTransitionTime: required",
        "status.conditions[0].status: 'Yes' not in ['True', 'False', 'Unknown']",
    ]
