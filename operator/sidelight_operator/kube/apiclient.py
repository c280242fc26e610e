"""The Kubernetes API client: how it is built, and its models as plain dicts."""

from __future__ import annotations

from typing import Any

from kubernetes import client, config


def build_api_client() -> client.ApiClient:
    """An API client: in-cluster service account, else $KUBECONFIG or ~/.kube/config."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration)


def to_dict(api: client.ApiClient, model: object) -> dict[str, Any]:
    """A client model (or the dict a custom-object call returns) as the API's JSON."""
    result = api.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
    if not isinstance(result, dict):
        raise TypeError(f"expected an object, got {type(result).__name__}")
    return result
