"""Typed reads of untrusted plain data, recording problems instead of raising.

The compile step gets resources as plain dicts, from the API server (already
checked against the CRD schema) or from YAML files (checked by nothing). Every
read here applies the same rule as the CRD schema: types, required fields,
unknown fields, enums, bounds, lengths and patterns. A `null` value counts as
absent, as it does for the API server. A failed read records a problem at the
field's path and returns None, so one pass reports every problem at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from typing import Any

from sidelight_operator.compile.diagnostics import Problems

DURATION = re.compile(r"[1-9][0-9]{0,5}(ms|s|m|h)")
MAX_DURATION_MS = 24 * 3600 * 1000
DURATION_MESSAGE = "must be a duration from 1ms to 24h, such as 500ms, 30s, 5m or 1h"
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def child(path: str, key: str) -> str:
    """The path of field `key` of the object at `path`."""
    return f"{path}.{key}" if path else key


def parse_duration_ms(text: str) -> int | None:
    """Milliseconds of a duration such as `500ms`, `30s`, `5m` or `1h`; None if malformed."""
    m = DURATION.fullmatch(text)
    return int(text.removesuffix(m.group(1))) * _UNIT_MS[m.group(1)] if m else None


class Reader:
    """Reads fields of one resource and records what is wrong with them."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems

    def obj(
        self,
        value: object,
        path: str,
        fields: Collection[str],
        required: Collection[str] = (),
    ) -> dict[str, Any] | None:
        """An object with only `fields` (nulls dropped) and all of `required`."""
        if not isinstance(value, Mapping):
            self.problems.error(path, "must be an object")
            return None
        result: dict[str, Any] = {}
        for key, item in value.items():
            if key not in fields:
                self.problems.error(child(path, str(key)), "unknown field")
            elif item is not None:
                result[key] = item
        for key in required:
            if key not in result:
                self.problems.error(child(path, key), "is required")
        return result

    def string(
        self,
        m: Mapping[str, Any],
        key: str,
        path: str,
        *,
        max_length: int,
        enum: Collection[str] = (),
        pattern: re.Pattern[str] | None = None,
        pattern_message: str = "",
    ) -> str | None:
        """A non-empty string field, or None when absent or invalid."""
        value = m.get(key)
        where = child(path, key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problems.error(where, "must be a string")
        elif not value:
            self.problems.error(where, "must not be empty")
        elif len(value) > max_length:
            self.problems.error(where, f"must be at most {max_length} characters")
        elif enum and value not in enum:
            self.problems.error(where, f"must be one of: {', '.join(enum)}")
        elif pattern is not None and not pattern.fullmatch(value):
            self.problems.error(where, pattern_message or f"must match {pattern.pattern}")
        else:
            return value
        return None

    def integer(
        self,
        m: Mapping[str, Any],
        key: str,
        path: str,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        minimum_message: str = "",
    ) -> int | None:
        """An integer field within bounds, or None when absent or invalid."""
        value = m.get(key)
        where = child(path, key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.error(where, "must be an integer")
        elif minimum is not None and value < minimum:
            self.problems.error(where, minimum_message or f"must be at least {minimum}")
        elif maximum is not None and value > maximum:
            self.problems.error(where, f"must be at most {maximum}")
        else:
            return value
        return None

    def number(self, m: Mapping[str, Any], key: str, path: str) -> float | None:
        """A number field that is zero or more, or None when absent or invalid."""
        value = m.get(key)
        where = child(path, key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.error(where, "must be a number")
        elif not (value >= 0 and math.isfinite(value)):  # also rejects NaN
            self.problems.error(where, "must be a finite number of at least 0")
        else:
            return float(value)
        return None

    def boolean(self, m: Mapping[str, Any], key: str, path: str) -> bool | None:
        """A boolean field, or None when absent or invalid."""
        value = m.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.problems.error(child(path, key), "must be true or false")
        return None

    def array(
        self, m: Mapping[str, Any], key: str, path: str, *, max_items: int, min_items: int = 0
    ) -> list[Any]:
        """A list field within size bounds; empty when absent or invalid."""
        value = m.get(key)
        where = child(path, key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problems.error(where, "must be a list")
        elif len(value) < min_items:
            self.problems.error(where, f"must have at least {min_items} item(s)")
        elif len(value) > max_items:
            self.problems.error(where, f"must have at most {max_items} items")
        else:
            return value
        return []

    def duration_ms(self, m: Mapping[str, Any], key: str, path: str) -> int | None:
        """A duration field in milliseconds, or None when absent or invalid."""
        value = m.get(key)
        where = child(path, key)
        if value is None:
            return None
        ms = parse_duration_ms(value) if isinstance(value, str) else None
        if ms is None or ms > MAX_DURATION_MS:
            self.problems.error(where, DURATION_MESSAGE)
            return None
        return ms
