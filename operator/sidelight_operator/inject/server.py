"""The webhook as the operator serves it: TLS, the namespace watch, API reads.

The operator's command adds the options with `add_webhook_arguments`
(options.py) and, when `--webhook-listen` is given, runs a `WebhookServer`
next to its ControlPlane, with the same serving certificate:

    webhook = WebhookServer(api, build_webhook_options(args))
    await webhook.start()     # reads the config and the API server's version
    ...
    await webhook.stop()

The chart renders `--injection-config` as a ConfigMap (see its values.yaml).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import yaml
from aiohttp import web
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sidelight_operator.inject.config import (
    InjectionConfig,
    build_injection_config,
    parse_server_version,
)
from sidelight_operator.inject.env import EnvSourceRef
from sidelight_operator.inject.namespaces import NamespaceIndex, NamespaceWatch
from sidelight_operator.inject.options import WebhookOptions
from sidelight_operator.inject.webhook import LOOKUP_TIMEOUT_S, PodInjector, build_webhook_app

API_TIMEOUT_S = LOOKUP_TIMEOUT_S


def apply_read_config(api: client.ApiClient, options: WebhookOptions) -> InjectionConfig:
    """The injection config from its files, for the API server's version."""
    code = client.VersionApi(api).get_code(_request_timeout=API_TIMEOUT_S)
    document = yaml.safe_load(options.config_path.read_text()) or {}
    ca_bundle = options.ca_path.read_text() if options.ca_path is not None else None
    return build_injection_config(
        document, server_version=parse_server_version(code.major, code.minor), ca_bundle=ca_bundle
    )


class KubeReads:
    """The webhook's reads of the API: a Namespace, the keys of an envFrom source."""

    def __init__(self, api: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api)

    async def namespace(self, name: str) -> dict[str, Any] | None:
        """GET the Namespace; None if it does not exist."""
        return await asyncio.to_thread(self._get_namespace, name)

    def _get_namespace(self, name: str) -> dict[str, Any] | None:
        try:
            found = self._core.read_namespace(name, _request_timeout=API_TIMEOUT_S)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        meta = found.metadata or client.V1ObjectMeta()
        return {"metadata": {"name": name, "labels": meta.labels, "annotations": meta.annotations}}

    async def env_source_keys(self, namespace: str, ref: EnvSourceRef) -> frozenset[str] | None:
        """The keys of a ConfigMap or Secret (never its values); None if it does not exist."""
        return await asyncio.to_thread(self._get_keys, namespace, ref)

    def _get_keys(self, namespace: str, ref: EnvSourceRef) -> frozenset[str] | None:
        kind, name = ref
        try:
            if kind == "secret":
                secret = self._core.read_namespaced_secret(
                    name, namespace, _request_timeout=API_TIMEOUT_S
                )
                return frozenset(secret.data or {})
            config_map = self._core.read_namespaced_config_map(
                name, namespace, _request_timeout=API_TIMEOUT_S
            )
            return frozenset(config_map.data or {}) | frozenset(config_map.binary_data or {})
        except ApiException as error:
            if error.status == 404:
                return None
            raise


class WebhookServer:
    """The injection webhook over HTTPS, with its namespace watch."""

    def __init__(self, api: client.ApiClient, options: WebhookOptions) -> None:
        self.api = api
        self.options = options
        self.namespaces = NamespaceIndex()
        self._watch = NamespaceWatch(api, self.namespaces)
        self._runner: web.AppRunner | None = None

    @property
    def ready(self) -> bool:
        """Serving, and the namespaces listed once."""
        return self._runner is not None and self.namespaces.synced.is_set()

    async def start(self) -> None:
        """Read the configuration, start the watch, listen."""
        config = await asyncio.to_thread(apply_read_config, self.api, self.options)
        reads = KubeReads(self.api)
        injector = PodInjector(config, self.namespaces, reads.namespace, reads.env_source_keys)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.options.tls_cert, self.options.tls_key)
        self._watch.start()
        runner = web.AppRunner(build_webhook_app(injector), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.options.host, self.options.port, ssl_context=tls)
        await site.start()
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening and watching."""
        self._watch.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
