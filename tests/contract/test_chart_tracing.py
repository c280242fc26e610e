"""The chart's `tracing` values: the operator's relay flags, its port, what sidecars are told.

Rendered with the cached helm (see test_chart.py); the command lines and the
injection document are read back with the parsers that will read them.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from sidelight_cli.main import build_parser
from sidelight_operator.inject import build_injection_config
from sidelight_operator.otlp.options import HEADERS_ENV, build_tracing_options
from tests.contract.test_chart import (
    CHART,
    one,
    render,
    run_helm,
)
from tests.contract.test_chart import (
    test_rendered_objects_fit_the_api_models as fits_the_api_models,
)

TEMPO = "http://tempo.observability:4318"
RELAY = "https://sidelight-operator.sidelight-system.svc:4318"


def operator_of(*options: str) -> dict[str, Any]:
    deployment = one(render(*options), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container_dict: dict[str, Any] = container
    return container_dict


def document_of(*options: str) -> dict[str, Any]:
    config_map = one(render(*options), "ConfigMap", "sidelight-injection")
    document: dict[str, Any] = yaml.safe_load(config_map["data"]["config.yaml"])
    return document


def service_ports(*options: str) -> dict[str, int]:
    return {p["name"]: p["port"] for p in one(render(*options), "Service")["spec"]["ports"]}


def test_by_default_no_span_leaves_the_pods() -> None:
    assert not any(a.startswith("--otlp") for a in operator_of()["args"])
    assert "otlp" not in service_ports()
    document = document_of()
    assert "otlpEndpoint" not in document
    assert "otlpViaOperator" not in document


def test_an_endpoint_runs_the_relay_and_points_the_sidecars_at_it() -> None:
    options = ("--set", f"tracing.endpoint={TEMPO}", "--set", "tracing.queue.maxBytes=67108864")
    operator = operator_of(*options)
    args = build_parser().parse_args(["operator", *operator["args"]])
    tracing = build_tracing_options(args)
    assert tracing.forward_endpoint == TEMPO
    assert (tracing.host, tracing.port) == ("0.0.0.0", 4318)
    assert (tracing.queue_bytes, tracing.queue_batches) == (67108864, 4096)
    assert {"name": "otlp", "containerPort": 4318} in operator["ports"]
    assert "env" not in operator
    assert service_ports(*options)["otlp"] == 4318
    config = build_injection_config(document_of(*options), server_version=(1, 30))
    assert config.otlp_endpoint == RELAY
    assert config.otlp_via_operator


def test_forward_headers_come_from_a_secret() -> None:
    operator = operator_of(
        "--set", f"tracing.endpoint={TEMPO}", "--set", "tracing.headersSecret.name=dd-api-key"
    )  # fmt: skip
    assert operator["env"] == [
        {
            "name": HEADERS_ENV,
            "valueFrom": {"secretKeyRef": {"name": "dd-api-key", "key": "headers"}},
        }
    ]


def test_the_relay_address_can_be_overridden() -> None:
    options = ("--set", f"tracing.endpoint={TEMPO}", "--set", "tracing.relayAddress=127.0.0.1:9")
    assert document_of(*options)["otlpEndpoint"] == "https://127.0.0.1:9"


@pytest.mark.parametrize(
    ("options", "endpoint", "relay"),
    [
        (("--set", f"tracing.endpoint={TEMPO}", "--set", "tracing.direct=true"), TEMPO, False),
        (
            ("--set", f"tracing.endpoint={TEMPO}", "--set", "sidecar.otlpEndpoint=http://c:4318"),
            "http://c:4318",
            True,
        ),
        (("--set", "sidecar.otlpEndpoint=http://c:4318"), "http://c:4318", False),
    ],
)
def test_direct_export_gives_the_sidecars_the_endpoint_and_no_token(
    options: tuple[str, ...], endpoint: str, relay: bool
) -> None:
    config = build_injection_config(document_of(*options), server_version=(1, 30))
    assert config.otlp_endpoint == endpoint
    assert not config.otlp_via_operator
    args = operator_of(*options)["args"]
    assert any(a.startswith("--otlp-forward-endpoint=") for a in args) is relay


def test_with_the_relay_the_chart_lints_and_fits_the_api_models() -> None:
    options = ["--set", f"tracing.endpoint={TEMPO}", "--set", "tracing.headersSecret.name=k"]
    result = run_helm("lint", "--strict", str(CHART), *options)
    assert result.returncode == 0, result.stdout + result.stderr
    fits_the_api_models(options)
