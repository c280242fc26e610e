"""Tracing set-up: OpenTelemetry spans exported over OTLP, off the request path.

Spans are batched by the SDK's BatchSpanProcessor on its own thread, so a slow
or absent collector never delays a request. Without an endpoint no exporter
runs, but spans are still made so that trace ids reach the response headers
and usage records. Attribute names follow the OpenTelemetry GenAI semantic
conventions (`gen_ai.*`) where one exists and `sidelight.*` otherwise.
"""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer

from sidelight_sidecar.identity import Identity

TRACER_NAME = "sidelight.sidecar"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"


def build_tracer_provider(identity: Identity, otlp_endpoint: str | None) -> TracerProvider:
    """A tracer provider for this pod; exports to `otlp_endpoint` (base URL) if given."""
    attributes = {"service.name": "sidelight-sidecar"}
    for key, value in (
        ("k8s.namespace.name", identity.namespace),
        ("k8s.pod.name", identity.pod),
        ("service.namespace", identity.team),
        ("sidelight.workload", identity.workload),
        ("deployment.environment.name", identity.environment),
    ):
        if value:
            attributes[key] = value
    provider = TracerProvider(resource=Resource.create(attributes))
    if otlp_endpoint:
        exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
        provider.add_span_processor(
            BatchSpanProcessor(exporter, max_queue_size=8192, schedule_delay_millis=500)
        )
    return provider


def tracer_of(provider: TracerProvider) -> Tracer:
    """The sidecar's tracer from `provider`."""
    return provider.get_tracer(TRACER_NAME, schema_url=SCHEMA_URL)
