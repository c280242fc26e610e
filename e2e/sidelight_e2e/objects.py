"""Between manifest dicts and the typed kubernetes client models.

Tests write objects as the API serves them (camelCase dicts, like YAML) and
read results the same way; the client's methods want and return models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from kubernetes import client

M = TypeVar("M")


def to_model(api: client.ApiClient, model_type: type[M], manifest: Mapping[str, Any]) -> M:
    """A client model (V1Pod, ...) from a manifest dict."""
    model = api.deserialize(json.dumps(manifest), model_type.__name__, "application/json")
    if not isinstance(model, model_type):
        raise TypeError(f"expected {model_type.__name__}, got {type(model).__name__}")
    return model


def to_dict(api: client.ApiClient | None, model: Any) -> dict[str, Any]:
    """A manifest dict (camelCase, no nulls) from a client model or a dict."""
    if isinstance(model, Mapping):
        return dict(model)
    converter = api if api is not None else client.ApiClient()
    # The client's own model-to-dict conversion (untyped in the client).
    result: dict[str, Any] = converter.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
    return result
