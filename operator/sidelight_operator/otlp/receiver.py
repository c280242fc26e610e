"""The relay's receiver: OTLP/HTTP `POST /v1/traces` from sidecars, answered at once.

For each export request the receiver

1. authenticates the bearer token (`CachedAuthenticator`): 401 or 403 when
   refused, 503 with `Retry-After` when the API server cannot say;
2. accepts `application/x-protobuf` only (415 otherwise: the sidecars'
   exporter sends protobuf, and protobuf bodies can be concatenated);
3. reads at most `MAX_REQUEST_BYTES`, gzip decoded within the same bound
   (413 beyond it);
4. parses the body (400 if it is no `ExportTraceServiceRequest`) to count its
   spans and to check that every resource naming a namespace or pod
   (`k8s.namespace.name`, `k8s.pod.name`) names the token's (403): a sidecar
   sends spans for its own pod only. What is queued is the body as received
   (decompressed), never a re-encoding;
5. queues it, or, when the queue is at a bound, drops and counts it and
   still answers 200 with `partial_success.rejected_spans`, the OTLP way of
   saying "dropped, do not retry". Nothing here waits for the forward target.
"""

from __future__ import annotations

import logging
import zlib

from aiohttp import web
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from sidelight_operator.controlplane.auth import PermissionDenied, PodRef, Unauthenticated
from sidelight_operator.otlp.auth import CachedAuthenticator
from sidelight_operator.otlp.metrics import RelayMetrics
from sidelight_operator.otlp.queue import Export, ExportQueue

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 8 * 1024 * 1024
"""Per export request, after decompression; the sidecar's batches are far smaller."""
PROTOBUF = "application/x-protobuf"
RETRY_AFTER_S = 5
NAMESPACE_KEY = "k8s.namespace.name"
POD_KEY = "k8s.pod.name"

ExportRequest = trace_service_pb2.ExportTraceServiceRequest


class Refused(Exception):
    """An export request answered with an HTTP error and not queued."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def decode_body(body: bytes, encoding: str) -> bytes:
    """The body without its Content-Encoding (identity or gzip), at most MAX_REQUEST_BYTES."""
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise Refused(415, f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_REQUEST_BYTES)
    except zlib.error:
        raise Refused(400, "the body is not valid gzip") from None
    if inflater.unconsumed_tail:
        raise Refused(413, f"the decompressed body exceeds {MAX_REQUEST_BYTES} bytes")
    if not inflater.eof:
        raise Refused(400, "the gzip body is truncated")
    return data


def count_spans(request: ExportRequest) -> int:
    """How many spans an export request carries."""
    return sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)


def check_resources(request: ExportRequest, pod: PodRef) -> None:
    """Raise PermissionDenied when a resource names another namespace or pod than `pod`."""
    for resource_spans in request.resource_spans:
        for attribute in resource_spans.resource.attributes:
            proven = {NAMESPACE_KEY: pod.namespace, POD_KEY: pod.name}.get(attribute.key)
            if proven is not None and attribute.value.string_value != proven:
                raise PermissionDenied(
                    f"spans name {attribute.key} {attribute.value.string_value!r} but the "
                    f"token belongs to {pod.namespace}/{pod.name}"
                )


def peer_of(request: web.Request) -> str:
    """The client address in gRPC's peer notation (`ipv4:1.2.3.4:5`), as authenticators take it."""
    peername = request.transport.get_extra_info("peername") if request.transport else None
    if not peername:
        return "unknown"
    host, port = str(peername[0]), peername[1]
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


def bearer_of(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _status_response(status: int, message: str) -> web.Response:
    body = status_pb2.Status(message=message).SerializeToString()
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return web.Response(status=status, body=body, content_type=PROTOBUF, headers=headers)


class Receiver:
    """The OTLP/HTTP trace endpoint: authenticate, check, queue, answer."""

    def __init__(
        self, queue: ExportQueue, metrics: RelayMetrics, authenticator: CachedAuthenticator
    ) -> None:
        self.queue = queue
        self.metrics = metrics
        self.authenticator = authenticator

    async def handle(self, request: web.Request) -> web.Response:
        """POST /v1/traces."""
        try:
            spans, accepted = await self._receive(request)
        except Refused as refused:
            self.metrics.refused(refused.status)
            log.debug("export from %s refused: %s", request.remote, refused.message)
            return _status_response(refused.status, refused.message)
        answer = trace_service_pb2.ExportTraceServiceResponse()
        if not accepted:
            answer.partial_success.rejected_spans = spans
            answer.partial_success.error_message = "the operator's trace queue is full"
        return web.Response(body=answer.SerializeToString(), content_type=PROTOBUF)

    async def _receive(self, request: web.Request) -> tuple[int, bool]:
        """(spans, queued) of an export request; raise Refused."""
        pod = await self._authenticate(request)
        if request.content_type != PROTOBUF:
            raise Refused(415, f"Content-Type must be {PROTOBUF}")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Refused(413, f"the body exceeds {MAX_REQUEST_BYTES} bytes") from None
        data = decode_body(body, request.headers.get("Content-Encoding", "").strip().lower())
        try:
            message = ExportRequest.FromString(data)
        except DecodeError:
            raise Refused(400, "the body is not an OTLP ExportTraceServiceRequest") from None
        try:
            check_resources(message, pod)
        except PermissionDenied as exc:
            raise Refused(403, exc.reason) from None
        spans = count_spans(message)
        if not spans:
            return 0, True
        self.metrics.received.inc(spans)
        if self.queue.put(Export(data, spans)):
            return spans, True
        self.metrics.dropped("queue_full", spans)
        return spans, False

    async def _authenticate(self, request: web.Request) -> PodRef:
        try:
            return await self.authenticator.authenticate(bearer_of(request), peer_of(request))
        except Unauthenticated as exc:
            raise Refused(401, exc.reason) from None
        except PermissionDenied as exc:
            raise Refused(403, exc.reason) from None
        except Exception as exc:  # the API server failed: the sidecar retries later
            log.warning("could not authenticate an export request: %s", type(exc).__name__)
            raise Refused(503, "the operator cannot authenticate now") from None


def build_receiver_app(receiver: Receiver) -> web.Application:
    """The aiohttp application serving `POST /v1/traces`."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app.router.add_post("/v1/traces", receiver.handle)
    return app
