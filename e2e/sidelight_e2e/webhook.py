"""An admission webhook server on 127.0.0.1 with TLS from the harness CA.

`AdmissionServer(ca, review)` serves POSTed AdmissionReviews in a thread and
answers with what `review(request)` returns (an AdmissionReview `response`
without `uid`, which is filled in). Register it with `url` and `ca_bundle`.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from sidelight_e2e.certs import CertificateAuthority

Review = Callable[[dict[str, Any]], dict[str, Any]]


def json_patch_response(patch: list[dict[str, Any]]) -> dict[str, Any]:
    """An allowing AdmissionReview response that applies a JSONPatch."""
    encoded = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"allowed": True, "patchType": "JSONPatch", "patch": encoded}


class AdmissionServer:
    """A threaded HTTPS server answering AdmissionReview v1 requests."""

    def __init__(self, ca: CertificateAuthority, review: Review) -> None:
        self.requests: list[dict[str, Any]] = []
        self._review = review
        self._ca = ca
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def ca_bundle(self) -> str:
        """The CA bundle (base64 PEM) for the webhook's clientConfig."""
        return base64.b64encode(self._ca.cert_pem).decode()

    @property
    def url(self) -> str:
        """https://127.0.0.1:<port> (add the path the webhook configuration uses)."""
        if self._server is None:
            raise RuntimeError("the webhook server is not running")
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> AdmissionServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                review = json.loads(self.rfile.read(length))
                request = review.get("request") or {}
                server.requests.append(request)
                response = {"uid": request.get("uid"), **server._review(request)}
                body = json.dumps(
                    {
                        "apiVersion": "admission.k8s.io/v1",
                        "kind": "AdmissionReview",
                        "response": response,
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        pair = self._ca.issue_serving(["127.0.0.1", "localhost"])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = pair.write(Path(tmp) / "tls.crt", Path(tmp) / "tls.key")
            context.load_cert_chain(str(cert), str(key))
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        self._server = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="admission", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
