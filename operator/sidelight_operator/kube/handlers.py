"""The kopf handlers: thin, each a docstring and a call into the `Reconciler`.

All are `@kopf.on.event` handlers: they observe and never patch the object,
so kopf adds no finalizer and no annotation, and the operator can be
stopped, killed or restarted without leaving marks on user objects. They
are registered on a registry of their own (`build_registry`), not kopf's
global one, so that nothing is registered at import time.

Secrets and Pods are watched cluster-wide (or in the operator's
namespaces): kopf cannot narrow a watch by a label selector on the server,
and the Secrets an LLMRoute references carry no label of ours. The `when`
filters keep all but the referenced Secrets and the sidecar pods out of the
index before any handler runs; Secret data is never logged.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from sidelight_operator.kube.kinds import CrdKind
from sidelight_operator.kube.reconcile import Reconciler


def build_registry(reconciler: Reconciler, kinds: tuple[CrdKind, ...]) -> kopf.OperatorRegistry:
    """A kopf registry with the operator's handlers, bound to `reconciler`."""
    registry = kopf.OperatorRegistry()
    # A plain registry has no login handler: log in as the `kubernetes` client does
    # (in-cluster service account, else $KUBECONFIG), like the API client of apiclient.py.
    kopf.on.login(registry=registry)(kopf.login_via_client)

    for crd in kinds:

        @kopf.on.event(crd.group, crd.version, crd.plural, id=f"on_{crd.plural}", registry=registry)
        def on_resource(type: str | None, body: kopf.Body, **_: Any) -> None:
            """An indexed custom resource changed: re-index it."""
            reconciler.apply_resource_event(type, body)

    @kopf.on.event(
        "", "v1", "secrets", registry=registry, when=lambda body, **_: reconciler.wants_secret(body)
    )
    def on_secret(type: str | None, body: kopf.Body, **_: Any) -> None:
        """A Secret that a resource references changed: re-index it."""
        reconciler.apply_secret_event(type, body)

    @kopf.on.event(
        "", "v1", "pods", registry=registry, when=lambda body, **_: reconciler.wants_pod(body)
    )
    def on_pod(type: str | None, body: kopf.Body, **_: Any) -> None:
        """A sidecar's pod changed: keep its labels, which select its resources."""
        reconciler.apply_pod_event(type, body)

    return registry


def build_settings() -> kopf.OperatorSettings:
    """kopf settings for an observe-only operator that writes status itself."""
    settings = kopf.OperatorSettings()
    # kopf would post its handler logs as Events on every Secret and Pod it sees.
    settings.posting.enabled = False
    settings.peering.standalone = True
    return settings


def quiet_kopf_logs(level: int) -> None:
    """kopf logs at `level` but never at DEBUG, and per-object lines only from WARNING.

    At DEBUG kopf prints whole object bodies, Secrets included: never allow
    it. Its per-object INFO lines would be one per Secret and Pod event. And
    it runs in a thread of its own on purpose (`operator.py`), so its warning
    that it cannot take the process's signals in a thread is dropped.
    """
    logging.getLogger("kopf").setLevel(max(level, logging.INFO))
    logging.getLogger("kopf.objects").setLevel(max(level, logging.WARNING))
    logging.getLogger("kopf._core.reactor.running").addFilter(_drop_thread_signal_warning)


def _drop_thread_signal_warning(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("OS signals are ignored")
