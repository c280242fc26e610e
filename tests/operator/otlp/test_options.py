"""The relay's flags and its forward headers from the environment."""

from __future__ import annotations

import argparse

import pytest

from sidelight_cli.main import build_parser
from sidelight_operator.otlp.options import (
    HEADERS_ENV,
    TracingOptions,
    add_tracing_arguments,
    build_tracing_options,
    parse_headers,
)


def parse(*argv: str, environ: dict[str, str] | None = None) -> TracingOptions:
    parser = argparse.ArgumentParser()
    add_tracing_arguments(parser)
    return build_tracing_options(parser.parse_args(list(argv)), environ)


def test_without_a_forward_endpoint_there_is_no_relay() -> None:
    options = parse()
    assert not options.enabled
    assert (options.host, options.port) == ("0.0.0.0", 4318)


def test_options_and_headers_from_the_environment() -> None:
    options = parse(
        "--otlp-forward-endpoint", "http://datadog-agent.monitoring:4318",
        "--otlp-listen", "127.0.0.1:14318",
        "--otlp-queue-bytes", "1000", "--otlp-queue-batches", "10",
        environ={HEADERS_ENV: "DD-API-KEY=abc%3D%3D, x-scope-orgid = tenant-1"},
    )  # fmt: skip
    assert options == TracingOptions(
        "http://datadog-agent.monitoring:4318",
        "127.0.0.1",
        14318,
        {"DD-API-KEY": "abc==", "x-scope-orgid": "tenant-1"},
        1000,
        10,
    )
    assert options.enabled
    assert "abc" not in repr(options)


@pytest.mark.parametrize(
    "argv", [("--otlp-listen", "4318"), ("--otlp-queue-bytes", "0"), ("--otlp-queue-batches", "x")]
)
def test_bad_options(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit):
        parse(*argv)


@pytest.mark.parametrize("text", ["sk-live-secret", "bad name=sk-live-secret", "k=sk-live\nsecret"])
def test_bad_headers_are_refused_without_quoting_their_value(text: str) -> None:
    with pytest.raises(SystemExit) as refused:
        parse("--otlp-forward-endpoint", "http://x:4318", environ={HEADERS_ENV: text})
    assert "secret" not in str(refused.value)
    assert HEADERS_ENV in str(refused.value)


def test_empty_entries_are_ignored() -> None:
    assert parse_headers("") == {}
    assert parse_headers("a=1,,b=") == {"a": "1", "b": ""}


def test_the_operator_command_takes_the_relay_flags() -> None:
    argv = ["operator", "--tls-cert=c.pem", "--tls-key=k.pem", "--otlp-forward-endpoint=http://t"]
    args = build_parser().parse_args(argv)
    assert build_tracing_options(args).forward_endpoint == "http://t"
