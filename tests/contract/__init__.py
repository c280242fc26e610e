"""Contract tests: CRDs, chart, protos and the boundaries between operator and sidecar."""
