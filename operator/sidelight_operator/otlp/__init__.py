"""The trace relay: sidecars' OTLP spans in, the configured OTLP endpoint out.

- `TraceRelay(options, authenticator, registry, tls)` (service.py): the whole
  relay of one operator process; `TracingOptions` and its flags in options.py.
- `Receiver` (receiver.py): OTLP/HTTP `POST /v1/traces`, authenticated with
  the sidecar's projected token (`CachedAuthenticator`, auth.py), answered
  without waiting for the target.
- `ExportQueue` (queue.py): bounded in bytes and in export requests.
- `Forwarder` (forwarder.py): the received bytes, concatenated, to the
  target, with retries and backoff.
- `RelayMetrics` (metrics.py): received, forwarded and dropped spans.

See docs/tracing.md.
"""

from sidelight_operator.otlp.options import TracingOptions
from sidelight_operator.otlp.service import TraceRelay

__all__ = ["TraceRelay", "TracingOptions"]
