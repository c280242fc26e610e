"""The Sidelight operator: compile, reconcile, control plane, webhook."""
