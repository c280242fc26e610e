"""Entry point of the `sidelight` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Run the `sidelight` command line."""
    parser = argparse.ArgumentParser(prog="sidelight")
    parser.parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
