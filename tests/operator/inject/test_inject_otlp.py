"""The injection document's trace settings: `otlpEndpoint` and `otlpViaOperator`.

What a sidecar gets for them is in the golden corpus (otlp-via-operator,
otlp-direct, custom-config); these are the document's checks.
"""

from __future__ import annotations

import pytest

from sidelight_operator.inject.config import ConfigError, build_injection_config

BASE = {"image": "i:1", "controlPlane": "cp:1"}
RELAY = "https://sidelight-operator.sidelight-system.svc:4318"


def test_via_operator_is_off_unless_said() -> None:
    config = build_injection_config({**BASE, "otlpEndpoint": RELAY}, server_version=(1, 30))
    assert config.otlp_endpoint == RELAY
    assert not config.otlp_via_operator
    document = {**BASE, "otlpEndpoint": RELAY, "otlpViaOperator": True}
    assert build_injection_config(document, server_version=(1, 30)).otlp_via_operator


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({**BASE, "otlpViaOperator": True}, "otlpViaOperator needs otlpEndpoint"),
        (
            {**BASE, "otlpEndpoint": RELAY, "otlpViaOperator": "yes"},
            "otlpViaOperator must be true or false",
        ),
    ],
)
def test_via_operator_is_checked(document: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_injection_config(document, server_version=(1, 30))
