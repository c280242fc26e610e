"""One LLMQuota's spec to one `snapshot_pb2.Quota`: scope, window, limits, actions.

Every check of the CRD schema and its CEL rules is repeated here (the
standalone file source has no API server to run them), and so is the check
no schema can make: a calendar window's time zone must exist in the IANA
database (`zoneinfo`, static data shipped with Python or `tzdata`). Defaults
are written out: soft threshold 80%, time zone UTC, hard action block,
notification format json. The scope's namespace is the quota's own.

The webhook Secret is not resolved here: only the operator reads the URL,
when it notifies, so no sidecar ever receives it.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

from sidelight_operator.compile.llmroute import SECRET_KEY, SECRET_NAME
from sidelight_operator.compile.reader import Reader, child
from sidelight_operator.compile.routes import MAX_MODEL, MAX_NAME, NAME, NAME_MESSAGE
from sidelight_proto.v1 import snapshot_pb2

SPEC_FIELDS = ("scope", "window", "limits", "softThresholdPercent", "notify", "hardAction")
SCOPE_FIELDS = ("team", "application", "environment", "model")
WINDOW_FIELDS = ("calendar", "timeZone", "rolling")
LIMIT_FIELDS = ("tokens", "costUSD")
NOTIFY_FIELDS = ("webhookSecretRef", "format")
ACTION_FIELDS = ("block", "downgradeTo")

CALENDARS = ("day", "month")
FORMATS = {"json": snapshot_pb2.NOTIFY_FORMAT_JSON, "slack": snapshot_pb2.NOTIFY_FORMAT_SLACK}
DEFAULT_SOFT_PERCENT = 80
DEFAULT_TIME_ZONE = "UTC"
DEFAULT_FORMAT = "json"

MAX_LABEL_VALUE = 63
MAX_TIME_ZONE = 64
MAX_TOKENS = 10**15
MIN_COST_USD = 0.000001
MAX_COST_USD = 1e9
MAX_SECRET = 253

TIME_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")
ROLLING = re.compile(r"[1-9][0-9]{0,3}(s|m|h|d)")
ROLLING_MESSAGE = "must be a duration such as 90s, 15m, 24h or 7d"
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rolling_s(text: str) -> int | None:
    """Seconds of a rolling window such as `90s`, `15m`, `24h` or `7d`; None if malformed."""
    m = ROLLING.fullmatch(text)
    return int(text[:-1]) * _UNIT_S[m.group(1)] if m else None


def build_quota(
    source: snapshot_pb2.ResourceRef, spec: object, reader: Reader
) -> snapshot_pb2.Quota:
    """The Quota of one resource; problems go to `reader`, values to the result."""
    quota = snapshot_pb2.Quota(source=source)
    quota.scope.namespace = source.namespace
    s = reader.obj(spec, "spec", SPEC_FIELDS, required=("window", "limits"))
    if s is None:
        return quota
    if "scope" in s:
        _scope(reader, s["scope"], quota.scope)
    if "window" in s:
        _window(reader, s["window"], quota.window)
    if "limits" in s:
        _limits(reader, s["limits"], quota)
    soft = reader.integer(s, "softThresholdPercent", "spec", minimum=1, maximum=100)
    quota.soft_threshold_percent = float(DEFAULT_SOFT_PERCENT if soft is None else soft)
    if "notify" in s:
        _notify(reader, s["notify"], quota.notify)
    _hard_action(reader, s.get("hardAction"), quota)
    return quota


def _scope(reader: Reader, value: object, scope: snapshot_pb2.QuotaScope) -> None:
    path = "spec.scope"
    s = reader.obj(value, path, SCOPE_FIELDS)
    if s is None:
        return
    scope.team = reader.string(s, "team", path, max_length=MAX_LABEL_VALUE) or ""
    scope.application = reader.string(s, "application", path, max_length=MAX_LABEL_VALUE) or ""
    scope.environment = reader.string(s, "environment", path, max_length=MAX_LABEL_VALUE) or ""
    scope.model = reader.string(s, "model", path, max_length=MAX_MODEL) or ""


def _window(reader: Reader, value: object, window: snapshot_pb2.QuotaWindow) -> None:
    path = "spec.window"
    w = reader.obj(value, path, WINDOW_FIELDS)
    if w is None:
        return
    if ("calendar" in w) == ("rolling" in w):
        reader.problems.error(path, "set exactly one of calendar or rolling")
    if "timeZone" in w and "calendar" not in w:
        reader.problems.error(child(path, "timeZone"), "applies to calendar windows only")
    calendar = reader.string(w, "calendar", path, max_length=8, enum=CALENDARS)
    if calendar is not None:
        window.calendar = calendar
        window.time_zone = _time_zone(reader, w, path) or DEFAULT_TIME_ZONE
    rolling = reader.string(
        w, "rolling", path, max_length=5, pattern=ROLLING, pattern_message=ROLLING_MESSAGE
    )
    if rolling is not None:
        window.rolling_seconds = parse_rolling_s(rolling) or 0


def _time_zone(reader: Reader, w: Mapping[str, Any], path: str) -> str | None:
    name = reader.string(
        w,
        "timeZone",
        path,
        max_length=MAX_TIME_ZONE,
        pattern=TIME_ZONE,
        pattern_message="must be an IANA time zone name such as UTC or Europe/Paris",
    )
    if name is None:
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        reader.problems.error(child(path, "timeZone"), f"unknown time zone {name!r}")
        return None
    return name


def _limits(reader: Reader, value: object, quota: snapshot_pb2.Quota) -> None:
    path = "spec.limits"
    lim = reader.obj(value, path, LIMIT_FIELDS)
    if lim is None:
        return
    if "tokens" not in lim and "costUSD" not in lim:
        reader.problems.error(path, "set tokens, costUSD or both")
    tokens = reader.integer(lim, "tokens", path, minimum=1, maximum=MAX_TOKENS)
    if tokens is not None:
        quota.limit_tokens = tokens
    cost = reader.number(lim, "costUSD", path)
    if cost is not None and not (MIN_COST_USD <= cost <= MAX_COST_USD and math.isfinite(cost)):
        reader.problems.error(child(path, "costUSD"), "must be from 0.000001 to 1000000000")
    elif cost is not None:
        quota.limit_cost_usd = cost


def _notify(reader: Reader, value: object, notify: snapshot_pb2.QuotaNotify) -> None:
    path = "spec.notify"
    n = reader.obj(value, path, NOTIFY_FIELDS, required=("webhookSecretRef",))
    if n is None:
        return
    fmt = reader.string(n, "format", path, max_length=8, enum=FORMATS) or DEFAULT_FORMAT
    notify.format = FORMATS[fmt]
    where = child(path, "webhookSecretRef")
    if "webhookSecretRef" not in n:
        return
    ref = reader.obj(n["webhookSecretRef"], where, ("name", "key"), required=("name", "key"))
    if ref is None:
        return
    notify.webhook_secret_ref.name = (
        reader.string(
            ref,
            "name",
            where,
            max_length=MAX_SECRET,
            pattern=SECRET_NAME,
            pattern_message="must be a Secret name (lower-case DNS subdomain)",
        )
        or ""
    )
    notify.webhook_secret_ref.key = (
        reader.string(
            ref,
            "key",
            where,
            max_length=MAX_SECRET,
            pattern=SECRET_KEY,
            pattern_message="must be letters, digits, '-', '_' or '.'",
        )
        or ""
    )


def _hard_action(reader: Reader, value: object, quota: snapshot_pb2.Quota) -> None:
    path = "spec.hardAction"
    if value is None:
        quota.block = True
        return
    a = reader.obj(value, path, ACTION_FIELDS)
    if a is None:
        return
    if ("block" in a) == ("downgradeTo" in a):
        reader.problems.error(path, "set exactly one of block or downgradeTo")
    if "block" in a:
        block = reader.obj(a["block"], child(path, "block"), ())
        if block is not None:
            quota.block = True
    target = reader.string(
        a, "downgradeTo", path, max_length=MAX_NAME, pattern=NAME, pattern_message=NAME_MESSAGE
    )
    if target is not None:
        quota.downgrade_to = target
