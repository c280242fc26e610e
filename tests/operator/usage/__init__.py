"""Usage store, metrics and API tests."""
