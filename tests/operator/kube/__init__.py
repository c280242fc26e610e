"""Unit tests of the operator's Kubernetes layer."""
