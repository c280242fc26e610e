"""The mutating admission webhook: AdmissionReview v1 in, a JSON Patch out.

`PodInjector.review` answers one AdmissionRequest: it finds the pod's
Namespace (index, else a GET), reads which keys the pod's envFrom sources
hold, runs the pure `inject_pod` and returns its patch. `build_webhook_app`
serves it at `POST /mutate-pods`.

Failure policy: with `failurePolicy: Ignore` (the default) an error of the
webhook's own (the API server unreachable, a bug) admits the pod without a
sidecar and says so in a warning, as the API server itself would on a
timeout. With `Fail`, the same error denies the pod: no pod of an opted-in
namespace runs without its sidecar, at the price of pod creation depending
on the operator.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from sidelight_operator.inject.config import InjectionConfig
from sidelight_operator.inject.env import EnvSourceRef, env_from_refs
from sidelight_operator.inject.namespaces import NamespaceIndex, NamespaceReader
from sidelight_operator.inject.pod import inject_pod, skip_reason

log = logging.getLogger(__name__)

PATH = "/mutate-pods"
ADMISSION_VERSION = "admission.k8s.io/v1"
LOOKUP_TIMEOUT_S = 3.0
"""What the reads of one review may take, well inside the webhook's timeoutSeconds."""

EnvSourceReader = Callable[[str, EnvSourceRef], Awaitable[frozenset[str] | None]]
"""The keys of a ConfigMap or Secret in a namespace; None if it does not exist."""


class PodInjector:
    """Answers AdmissionRequests for pods."""

    def __init__(
        self,
        config: InjectionConfig,
        namespaces: NamespaceIndex,
        read_namespace: NamespaceReader,
        read_env_source: EnvSourceReader,
    ) -> None:
        self.config = config
        self.namespaces = namespaces
        self._read_namespace = read_namespace
        self._read_env_source = read_env_source

    async def review(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The AdmissionResponse (without its uid) for one request; never raises."""
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT_S):
                return await self._review(request)
        except Exception as error:
            name = _pod_name(request)
            log.exception("injection of pod %s failed", name)
            message = f"sidelight: pod {name} not injected: {type(error).__name__}: {error}"
            if self.config.fail_closed:
                return {"allowed": False, "status": {"code": 500, "message": message}}
            return {"allowed": True, "warnings": [message[:250]]}

    async def _review(self, request: Mapping[str, Any]) -> dict[str, Any]:
        kind = request.get("kind") or {}
        if kind.get("kind") != "Pod" or request.get("operation") != "CREATE":
            return {"allowed": True}
        pod = request.get("object") or {}
        name = str(request.get("namespace") or (pod.get("metadata") or {}).get("namespace"))
        namespace = await self.namespaces.resolve(name, self._read_namespace)
        namespace = namespace or {"metadata": {"name": name}}
        reason = skip_reason(pod, namespace, self.config)
        if reason is not None:
            log.debug("pod %s: not injected: %s", _pod_name(request), reason)
            return {"allowed": True}
        spec = pod.get("spec") or {}
        refs = sorted(env_from_refs([*spec.get("initContainers", []), *spec.get("containers", [])]))
        keys = await asyncio.gather(
            *(self._read_env_source(name, ref) for ref in refs), return_exceptions=True
        )
        # A source that could not be read stays unknown: the names it may hold are left alone.
        sources = {
            ref: k for ref, k in zip(refs, keys, strict=True) if not isinstance(k, BaseException)
        }
        result = inject_pod(pod, namespace, self.config, env_sources=sources)
        response: dict[str, Any] = {"allowed": True}
        if result.patch:
            encoded = base64.b64encode(json.dumps(result.patch).encode()).decode()
            response.update(patchType="JSONPatch", patch=encoded)
        if result.warnings:
            response["warnings"] = [f"sidelight: {w}"[:250] for w in result.warnings]
        return response


def _pod_name(request: Mapping[str, Any]) -> str:
    meta = (request.get("object") or {}).get("metadata") or {}
    name = meta.get("name") or f"{meta.get('generateName') or ''}*"
    return f"{request.get('namespace')}/{name}"


def build_webhook_app(injector: PodInjector) -> web.Application:
    """The aiohttp application: `POST /mutate-pods` (AdmissionReview v1)."""

    async def mutate(request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            review = json.loads(await request.read())
            admission = review["request"]
            uid = admission["uid"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "expected an AdmissionReview"}, status=400)
        if review.get("apiVersion") != ADMISSION_VERSION:
            return web.json_response({"error": f"expected {ADMISSION_VERSION}"}, status=400)
        response = {"uid": uid, **await injector.review(admission)}
        log.debug("reviewed %s in %.1f ms", uid, (time.perf_counter() - started) * 1000)
        return web.json_response(
            {"apiVersion": ADMISSION_VERSION, "kind": "AdmissionReview", "response": response}
        )

    app = web.Application()
    app.router.add_post(PATH, mutate)
    return app
