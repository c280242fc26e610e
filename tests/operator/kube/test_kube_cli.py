"""The `sidelight operator` command line: its options and their defaults."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from sidelight_operator.kube.cli import add_operator_command, run_operator_command


def parse(*argv: str) -> argparse.Namespace:
    """Parse `sidelight operator ARGV` with a parser like the CLI's."""
    parser = argparse.ArgumentParser(prog="sidelight")
    add_operator_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["operator", *argv])


def test_defaults() -> None:
    args = parse("--tls-cert", "c.pem", "--tls-key", "k.pem")
    assert (args.tls_cert, args.tls_key) == (Path("c.pem"), Path("k.pem"))
    assert args.grpc_listen == "0.0.0.0:8443"
    assert args.health_listen == ("0.0.0.0", 8081)
    assert (args.namespaces, args.audience, args.verbose) == ([], "sidelight", False)
    assert args.run is run_operator_command


def test_options() -> None:
    args = parse(
        "--tls-cert", "c", "--tls-key", "k", "--grpc-listen", "127.0.0.1:9443",
        "--health-listen", ":9081", "--namespace", "a", "--namespace", "b", "--audience", "x",
    )  # fmt: skip
    assert args.grpc_listen == "127.0.0.1:9443"
    assert args.health_listen == ("0.0.0.0", 9081)
    assert (args.namespaces, args.audience) == (["a", "b"], "x")


def test_tls_is_required_and_addresses_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse()
    assert "--tls-cert" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("--tls-cert", "c", "--tls-key", "k", "--health-listen", "8081")
    assert "expected HOST:PORT, got '8081'" in capsys.readouterr().err


def test_adding_the_command_loads_neither_kopf_nor_the_client() -> None:
    # `sidelight --help` must work without the `operator` extra, and start fast.
    probe = (
        "import sys, sidelight_operator.kube.cli;"
        "print(sorted(m for m in ('kopf', 'kubernetes') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
