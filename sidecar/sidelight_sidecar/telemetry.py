"""Tracing set-up: OpenTelemetry spans exported over OTLP, off the request path.

Spans are batched by the SDK's BatchSpanProcessor on its own thread, so a slow
or absent collector never delays a request. Without an endpoint no exporter
runs, but spans are still made so that trace ids reach the response headers
and usage records. Attribute names follow the OpenTelemetry GenAI semantic
conventions (`gen_ai.*`) where one exists and `sidelight.*` otherwise.

When the spans go to the operator's trace relay (docs/tracing.md), the
injected environment says how to prove the pod: `SIDELIGHT_OTLP_TOKEN_FILE`
names the projected service-account token, read again for every export (the
kubelet rotates it) and sent as a bearer token, and the standard
`OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE` names the CA the operator's
certificate chains to (the exporter reads that one itself). A token file is
never set for an endpoint outside the cluster: the token proves the pod.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer

from sidelight_sidecar.identity import Identity

TRACER_NAME = "sidelight.sidecar"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"
TOKEN_FILE_ENV = "SIDELIGHT_OTLP_TOKEN_FILE"


class TokenFileAuth(requests.auth.AuthBase):
    """`Authorization: Bearer <token>` from a file read at each request (it rotates)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        try:
            token = self.path.read_text().strip()
        except OSError:  # not projected yet: the relay refuses, the exporter drops the batch
            return request
        request.headers["Authorization"] = f"Bearer {token}"
        return request


def build_exporter_session(environ: Mapping[str, str]) -> requests.Session | None:
    """A session that proves the pod with its token, if `environ` names a token file."""
    token_file = environ.get(TOKEN_FILE_ENV)
    if not token_file:
        return None
    session = requests.Session()
    session.auth = TokenFileAuth(Path(token_file))
    # The relay is in the cluster and its CA is given: no REQUESTS_CA_BUNDLE, proxy or
    # .netrc from the environment may replace them.
    session.trust_env = False
    return session


def build_tracer_provider(
    identity: Identity, otlp_endpoint: str | None, environ: Mapping[str, str] = os.environ
) -> TracerProvider:
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
        exporter = OTLPSpanExporter(
            endpoint=otlp_endpoint.rstrip("/") + "/v1/traces",
            session=build_exporter_session(environ),
        )
        provider.add_span_processor(
            BatchSpanProcessor(exporter, max_queue_size=8192, schedule_delay_millis=500)
        )
    return provider


def tracer_of(provider: TracerProvider) -> Tracer:
    """The sidecar's tracer from `provider`."""
    return provider.get_tracer(TRACER_NAME, schema_url=SCHEMA_URL)
