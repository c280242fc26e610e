"""Tests of the sidelight command line."""
