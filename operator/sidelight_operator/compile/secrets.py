"""Secret values by namespace, name and key, from v1 Secret objects.

`data` values are base64 as the API returns them; `stringData` values are
plain text and win over `data` for the same key, as they do when the API
server stores a Secret. Values never appear in a message or a repr.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any

_INVALID = object()  # a `data` value that is not base64


class SecretError(LookupError):
    """A secretRef that cannot be resolved; the message names no value."""


class SecretIndex:
    """The keys of every Secret given to the compile step."""

    def __init__(self, secrets: Iterable[Mapping[str, Any]]) -> None:
        self._keys: dict[tuple[str, str], dict[str, bytes | object]] = {}
        for secret in secrets:
            meta = secret.get("metadata")
            if not isinstance(meta, Mapping):
                continue
            keys = self._keys.setdefault((str(meta.get("namespace")), str(meta.get("name"))), {})
            data = secret.get("data")
            for key, value in (data if isinstance(data, Mapping) else {}).items():
                keys[str(key)] = _decode(value)
            string_data = secret.get("stringData")
            for key, value in (string_data if isinstance(string_data, Mapping) else {}).items():
                keys[str(key)] = value.encode() if isinstance(value, str) else _INVALID

    def __repr__(self) -> str:
        return f"SecretIndex({len(self._keys)} secrets)"

    def value(self, namespace: str, name: str, key: str) -> bytes:
        """The value of `key` in Secret `namespace/name`, or raise SecretError."""
        keys = self._keys.get((namespace, name))
        if keys is None:
            raise SecretError(f"Secret {namespace}/{name} not found")
        if key not in keys:
            raise SecretError(f"Secret {namespace}/{name} has no key {key!r}")
        value = keys[key]
        if not isinstance(value, bytes):
            raise SecretError(f"Secret {namespace}/{name} key {key!r} is not valid base64 text")
        if not value:
            raise SecretError(f"Secret {namespace}/{name} key {key!r} is empty")
        return value


def _decode(value: object) -> bytes | object:
    if not isinstance(value, str):
        return _INVALID
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        return _INVALID
