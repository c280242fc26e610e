"""Operator unit tests."""
