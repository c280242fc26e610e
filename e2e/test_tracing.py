"""A trace through an injected pod on the local control plane: app -> sidecar -> relay -> backend.

The chart is installed with `tracing.endpoint` at an OTLP/HTTP backend the
test runs (standing in for Tempo or Jaeger); the operator runs its trace
relay, and the webhook points every sidecar at it (`otlpViaOperator`). The
fake kubelet starts the injected sidecar exactly as the pod spec says (its
token, the control plane's CA, `SIDELIGHT_OTLP_TOKEN_FILE`,
`OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE`), then the app container: the
official `openai` SDK inside a span of the app's own OpenTelemetry SDK,
which exports that span to the backend itself. The backend must end up with
one trace whose links and `gen_ai.*` attributes are intact; the relay's
counters on the operator's /metrics show the sidecar's spans forwarded.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from test_injection_rig import (
    SidelightInstall,
    answers_ok,
    apply,
    containers,
    deployment,
    install_sidelight,
    pod_of,
)

from sidelight_e2e.cluster import Cluster
from sidelight_e2e.kubelet import FakeKubelet
from sidelight_e2e.processes import free_port, poll
from sidelight_fake_provider.server import FakeProviderThread

OPENAI_KEY = "sk-openai-only-the-sidecar-knows"
# The app: its own tracer exporting to the backend, the caller's span around an
# openai SDK call configured by the injected environment alone.
APP = """
import json, openai
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint="BACKEND/v1/traces")))
with provider.get_tracer("checkout").start_as_current_span("summarize") as span:
    headers = {}
    TraceContextTextMapPropagator().inject(headers)
    with openai.OpenAI(max_retries=0) as sdk:
        completion = sdk.chat.completions.create(
            model="gpt-4", messages=[{"role": "user", "content": "Summarize: sky is blue."}],
            max_tokens=16, extra_headers=headers, timeout=20)
context = span.get_span_context()
provider.shutdown()
print("CALLER " + json.dumps({
    "trace": format(context.trace_id, "032x"), "span": format(context.span_id, "016x"),
    "input": completion.usage.prompt_tokens, "output": completion.usage.completion_tokens,
}), flush=True)
"""


class OtlpBackend(ThreadingHTTPServer):
    """An OTLP/HTTP trace backend on loopback, in a thread; keeps every request body."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _OtlpHandler)
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def spans(self) -> list[tuple[dict[str, str], trace_pb2.Span]]:
        """(resource attributes, span) of every span received."""
        with self.lock:
            bodies = list(self.bodies)
        found = []
        for body in bodies:
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                resource = {
                    kv.key: kv.value.string_value for kv in resource_spans.resource.attributes
                }
                for scope in resource_spans.scope_spans:
                    found += [(resource, span) for span in scope.spans]
        return found


class _OtlpHandler(BaseHTTPRequestHandler):
    server: OtlpBackend

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def backend() -> Iterator[OtlpBackend]:
    server = OtlpBackend()
    thread = threading.Thread(target=server.serve_forever, name="otlp-backend", daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def sidelight(
    cluster: Cluster,
    kube_client: client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
    backend: OtlpBackend,
) -> Iterator[SidelightInstall]:
    """The chart with tracing through the operator's relay to `backend`."""
    if cluster.kind == "kind":
        pytest.skip("a kind API server cannot call a webhook on the test's 127.0.0.1")
    relay = free_port()
    values = {
        "tracing.endpoint": backend.url,
        "ports.otlp": str(relay),
        "tracing.relayAddress": f"127.0.0.1:{relay}",
    }
    workdir = tmp_path_factory.mktemp("sidelight")
    with install_sidelight(cluster, kube_client, workdir, values) as install:
        yield install


def route(openai_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"name": "assistant"},
        "spec": {
            "backends": [
                {
                    "name": "gpt-4",
                    "provider": "openai",
                    "model": "gpt-4",
                    "endpoints": [{"url": f"{openai_url}/v1"}],
                    "credentials": {"secretRef": {"name": "openai", "key": "api-key"}},
                }
            ],
            "routes": [{"name": "default", "routeTo": "gpt-4"}],
        },
    }


def attributes(span: trace_pb2.Span) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        values[kv.key] = getattr(kv.value, kind) if kind else None
    return values


def metric(port: int, name: str) -> float:
    """The sum of a metric's samples, all labels, on the operator's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        lines = answer.read().decode().splitlines()
    return sum(
        float(line.split()[-1]) for line in lines if line.startswith((f"{name} ", f"{name}{{"))
    )


def test_a_request_of_an_injected_pod_is_one_trace_at_the_backend(
    sidelight: SidelightInstall, fake_kubelet: FakeKubelet, backend: OtlpBackend
) -> None:
    with FakeProviderThread("openai", api_keys={"openai": OPENAI_KEY}) as openai:
        namespace = sidelight.create_namespace(opt_in="enabled")
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "openai"},
            "stringData": {"api-key": OPENAI_KEY},
        }
        app = APP.replace("BACKEND", backend.url)
        apply(
            sidelight.cluster,
            namespace,
            secret,
            route(openai.url),
            deployment("checkout", {"app": "checkout"}, ["python", "-c", app]),
        )
        pod = pod_of(sidelight.api, namespace, "app=checkout")
        sidecar = containers(pod)["sidelight"]
        assert (
            f"--otlp-endpoint=https://127.0.0.1:{sidelight.extra_values['ports.otlp']}"
            in (sidecar["args"])
        )
        proxy = fake_kubelet.run(pod, "sidelight")
        poll(
            lambda: answers_ok(f"http://127.0.0.1:{sidelight.sidecar_port}/readyz"),
            timeout=30,
            what="the sidecar's first snapshot (/readyz)",
            alive=proxy.process.check_alive,
        )
        caller_process = fake_kubelet.run(pod, "app")
        assert caller_process.wait(timeout=60) == 0, caller_process.output()
    caller = json.loads(caller_process.output().split("CALLER ", 1)[1])
    assert proxy.env["SIDELIGHT_OTLP_TOKEN_FILE"] == str(
        proxy.host_path("/var/run/sidelight/identity/token")
    )

    def whole_trace() -> list[tuple[dict[str, str], trace_pb2.Span]] | None:
        spans = [(r, s) for r, s in backend.spans() if s.trace_id.hex() == caller["trace"]]
        return spans if len(spans) >= 4 else None

    trace = poll(whole_trace, timeout=30, what="the trace at the backend")
    spans = {span.name: (resource, span) for resource, span in trace}
    assert sorted(spans) == [
        "POST /v1/chat/completions",
        "chat gpt-4",
        "sidelight.route",
        "summarize",
    ]
    root_resource, root = spans["summarize"]
    assert root_resource["service.name"] == "checkout"
    assert (root.span_id.hex(), root.parent_span_id) == (caller["span"], b"")
    server_resource, server = spans["POST /v1/chat/completions"]
    assert server.parent_span_id == root.span_id
    assert server_resource["k8s.namespace.name"] == namespace
    assert server_resource["k8s.pod.name"] == pod["metadata"]["name"]
    assert spans["sidelight.route"][1].parent_span_id == server.span_id
    call = spans["chat gpt-4"][1]
    assert call.parent_span_id == server.span_id
    gen_ai = attributes(call)
    assert gen_ai["gen_ai.request.model"] == "gpt-4"
    assert gen_ai["gen_ai.provider.name"] == "openai"
    assert gen_ai["gen_ai.usage.input_tokens"] == caller["input"]
    assert gen_ai["gen_ai.usage.output_tokens"] == caller["output"]
    forwarded = poll(
        lambda: metric(sidelight.http_port, "sidelight_otlp_spans_forwarded_total") or None,
        timeout=10,
        what="the relay's forwarded counter",
    )
    assert forwarded >= 3
    assert metric(sidelight.http_port, "sidelight_otlp_requests_refused_total") == 0
