"""Contract tests: CRDs, protos, the chart, the dashboard."""
