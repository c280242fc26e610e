"""The Sidelight sidecar: the per-pod LLM proxy."""
