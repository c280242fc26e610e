"""The LLMQuota CRD: its names, printer columns, and the limits the compile step repeats."""

from __future__ import annotations

import pytest

from sidelight_operator.compile import llmquota, routes
from tests.contract.test_crd_schema import CRDS, load_crd, node, schemas


def test_llmquota_crd_names_and_columns() -> None:
    spec = load_crd(CRDS / "llmquota.yaml")["spec"]
    assert (spec["group"], spec["scope"], spec["names"]["kind"]) == (
        "sidelight.io",
        "Namespaced",
        "LLMQuota",
    )
    assert spec["names"]["shortNames"] == ["llmq"]
    [version] = spec["versions"]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Used", "Percent", "Soft", "Hard", "Resets", "Accepted", "Age"]


LIMITS = [
    ("spec.scope.team", "maxLength", llmquota.MAX_LABEL_VALUE),
    ("spec.scope.model", "maxLength", routes.MAX_MODEL),
    ("spec.window.calendar", "enum", list(llmquota.CALENDARS)),
    ("spec.window.timeZone", "maxLength", llmquota.MAX_TIME_ZONE),
    ("spec.window.timeZone", "pattern", f"^{llmquota.TIME_ZONE.pattern}$"),
    ("spec.window.rolling", "pattern", f"^{llmquota.ROLLING.pattern}$"),
    ("spec.limits.tokens", "maximum", llmquota.MAX_TOKENS),
    ("spec.limits.costUSD", "minimum", llmquota.MIN_COST_USD),
    ("spec.limits.costUSD", "maximum", llmquota.MAX_COST_USD),
    ("spec.softThresholdPercent", "default", llmquota.DEFAULT_SOFT_PERCENT),
    ("spec.notify.format", "enum", list(llmquota.FORMATS)),
    ("spec.notify.format", "default", llmquota.DEFAULT_FORMAT),
    ("spec.hardAction.downgradeTo", "maxLength", routes.MAX_NAME),
    ("spec.hardAction.downgradeTo", "pattern", f"^{routes.NAME.pattern}$"),
]


@pytest.mark.parametrize(("path", "keyword", "value"), LIMITS)
def test_llmquota_limits_match_the_compile_step(path: str, keyword: str, value: object) -> None:
    root = schemas()[("sidelight.io/v1alpha1", "LLMQuota")]
    assert node(root, path)[keyword] == value


def test_rolling_durations_parse_to_seconds() -> None:
    assert [llmquota.parse_rolling_s(t) for t in ("90s", "15m", "24h", "7d", "0s", "1w")] == [
        90,
        900,
        86400,
        604800,
        None,
        None,
    ]
