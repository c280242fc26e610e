"""The trace relay: sidecars' OTLP spans in, the configured OTLP endpoint out.

- `TraceRelay(options, authenticator, registry)` (service.py): the whole
  relay of one operator process; `TracingOptions` and its flags in options.py.
- `Receiver` (receiver.py): OTLP/HTTP `POST /v1/traces`, authenticated with
  the sidecar's projected token (`CachedAuthenticator`, auth.py), answered
  without waiting for the target.
- `ExportQueue` (queue.py): bounded in bytes and in export requests.
- `Forwarder` (forwarder.py): the received bytes, concatenated, to the
  target, with retries and backoff.
- `RelayMetrics` (metrics.py): received, forwarded and dropped spans.

Nothing is imported here: the `sidelight` parser imports options.py in
every image, the sidecar's included, and should not pay for the rest.

See docs/tracing.md.
"""
