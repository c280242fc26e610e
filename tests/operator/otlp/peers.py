"""The relay's peers in tests: a scriptable forward target, an authenticator, export bodies.

- `Target`: an OTLP/HTTP endpoint on loopback that answers the statuses it
  is told to (then 200), can hold every request until `release()`, and
  keeps what it received, raw and parsed.
- `TokenAuthenticator`: token -> pod, as a TokenReview would; counts reviews.
- `export_body(...)`: a serialized ExportTraceServiceRequest with N spans.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping

from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from prometheus_client import CollectorRegistry

from sidelight_operator.controlplane.auth import PodRef, Unauthenticated
from sidelight_proto.v1 import control_plane_pb2
from tests.sidecar.harness import LoopbackServer

POD = PodRef("shop", "chat-7d9f-abcde", "uid-1", "chat", {})
TOKENS = {"token-chat": POD, "token-other": PodRef("other", "spy-1", "uid-2", "spy", {})}


class Target(LoopbackServer):
    """A forward target whose answers the test scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: deque[int] = deque()
        self.retry_after: str | None = None
        self.answer = b""
        self.bodies: list[bytes] = []
        self.headers: list[Mapping[str, str]] = []
        self.arrived = 0
        self._open = asyncio.Event()
        self._open.set()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/traces", self._traces)

    def hold(self) -> None:
        """Keep every request waiting until `release`."""
        self._open.clear()

    def release(self) -> None:
        """Answer the held requests and those to come."""
        self._open.set()

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.content.read()  # the stream: no client_max_size, as a collector
        self.arrived += 1
        await self._open.wait()
        status = self.statuses.popleft() if self.statuses else 200
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        headers = {"Retry-After": self.retry_after} if self.retry_after and status != 200 else {}
        return web.Response(
            status=status, body=self.answer, content_type="application/x-protobuf", headers=headers
        )

    def requests(self) -> list[trace_service_pb2.ExportTraceServiceRequest]:
        """Every request body, parsed."""
        return [trace_service_pb2.ExportTraceServiceRequest.FromString(b) for b in self.bodies]

    def span_names(self) -> list[str]:
        """The names of every span received, in order."""
        return [
            span.name
            for request in self.requests()
            for resource_spans in request.resource_spans
            for scope in resource_spans.scope_spans
            for span in scope.spans
        ]


class TokenAuthenticator:
    """Maps known tokens to pods, as a TokenReview would; counts the reviews."""

    def __init__(self) -> None:
        self.reviews = 0
        self.failure: Exception | None = None

    async def authenticate(
        self, token: str | None, node: control_plane_pb2.Node, peer: str
    ) -> PodRef:
        self.reviews += 1
        if self.failure is not None:
            raise self.failure
        if token not in TOKENS:
            raise Unauthenticated("token rejected")
        return TOKENS[token]


def export_body(spans: int, name: str = "span", pod: PodRef = POD) -> bytes:
    """A serialized export request of `spans` spans from `pod`'s sidecar."""
    resource = resource_pb2.Resource(
        attributes=[
            _attribute("service.name", "sidelight-sidecar"),
            _attribute("k8s.namespace.name", pod.namespace),
            _attribute("k8s.pod.name", pod.name),
        ]
    )
    scope = trace_pb2.ScopeSpans(
        spans=[
            trace_pb2.Span(
                trace_id=bytes(range(16)), span_id=(i + 1).to_bytes(8, "big"), name=f"{name}-{i}"
            )
            for i in range(spans)
        ]
    )
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(resource=resource, scope_spans=[scope])]
    )
    return request.SerializeToString()


def _attribute(key: str, value: str) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A metric's value in `registry` (0 when it was never set)."""
    return registry.get_sample_value(name, labels) or 0.0
