"""Tests of the operator's trace relay."""
