"""The `sidelight` command line."""
