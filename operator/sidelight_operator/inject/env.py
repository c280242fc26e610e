"""The variables that point an application container's SDKs at the sidecar.

For each provider, a base URL and a placeholder key:

    OPENAI_BASE_URL=http://127.0.0.1:PORT/v1      OPENAI_API_KEY=sidelight-placeholder
    ANTHROPIC_BASE_URL=http://127.0.0.1:PORT      ANTHROPIC_API_KEY=sidelight-placeholder

The user's environment always wins (docs/injection.md, "Environment"):

1. A name the container sets in `env` (a `value` or a `valueFrom`) is left
   as it is.
2. An `envFrom` source that defines the name counts the same. Kubernetes
   gives `env` precedence over `envFrom`, so a value added to `env` would
   silently win over the user's: the caller tells which keys each source
   holds (`EnvSources`); a source it could not read, or one that does not
   exist yet and is not optional, may hold anything, and the name is left
   alone with a warning.
3. The base URL and the key of a provider go together: where the user set
   (or may have set) the base URL, the container talks to that provider
   its own way and gets neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

PLACEHOLDER_KEY = "sidelight-placeholder"

EnvSourceRef = tuple[str, str]
"""("configmap" or "secret", name) of an envFrom source, in the pod's namespace."""
EnvSources = Mapping[EnvSourceRef, frozenset[str] | None]
"""The keys each source holds; None: it does not exist; absent: not known."""
State = Literal["unset", "user", "unknown"]


@dataclass(frozen=True)
class Provider:
    """The variables of one provider's official SDK."""

    base_url_var: str
    key_var: str
    path: str

    def base_url(self, port: int) -> str:
        """The sidecar's URL for this provider's API."""
        return f"http://127.0.0.1:{port}{self.path}"


PROVIDERS = (
    Provider("OPENAI_BASE_URL", "OPENAI_API_KEY", "/v1"),
    Provider("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", ""),
)
NAMES = tuple(name for p in PROVIDERS for name in (p.base_url_var, p.key_var))


def _source(entry: Mapping[str, Any]) -> tuple[EnvSourceRef, bool] | None:
    for field_name, kind in (("configMapRef", "configmap"), ("secretRef", "secret")):
        ref = entry.get(field_name)
        if ref:
            return (kind, str(ref.get("name") or "")), bool(ref.get("optional"))
    return None


def env_from_refs(containers: list[Mapping[str, Any]]) -> set[EnvSourceRef]:
    """The envFrom sources that could define one of our names (prefix permitting)."""
    refs = set()
    for container in containers:
        for entry in container.get("envFrom") or []:
            prefix = entry.get("prefix") or ""
            source = _source(entry)
            if source is not None and any(name.startswith(prefix) for name in NAMES):
                refs.add(source[0])
    return refs


def _state(container: Mapping[str, Any], name: str, sources: EnvSources) -> tuple[State, str]:
    """Who sets `name` in `container`, and through what."""
    if any(var.get("name") == name for var in container.get("env") or []):
        return "user", "env"
    state: State = "unset"
    through = ""
    for entry in container.get("envFrom") or []:
        prefix = entry.get("prefix") or ""
        source = _source(entry)
        if source is None or not name.startswith(prefix):
            continue
        (kind, source_name), optional = source
        what = f"{kind} {source_name}"
        if source[0] not in sources:
            state, through = "unknown", f"{what} (not readable)"
            continue
        keys = sources[source[0]]
        if keys is None:
            if not optional:
                state, through = "unknown", f"{what} (does not exist yet)"
            continue
        if name[len(prefix) :] in keys:
            return "user", what
    return state, through


@dataclass(frozen=True)
class EnvDecision:
    """What one container gets, and why not the rest."""

    additions: list[dict[str, str]]
    warnings: list[str]


def build_app_env(container: Mapping[str, Any], port: int, sources: EnvSources) -> EnvDecision:
    """The env entries to append to `container`, following the rules above."""
    additions: list[dict[str, str]] = []
    warnings: list[str] = []
    name = container.get("name")
    for provider in PROVIDERS:
        base, through = _state(container, provider.base_url_var, sources)
        if base == "unknown":
            warnings.append(
                f"container {name}: {provider.base_url_var} may come from {through}; "
                f"left alone, so its {provider.key_var} is too: set {provider.base_url_var} "
                "in env to choose"
            )
        if base != "unset":
            continue
        additions.append({"name": provider.base_url_var, "value": provider.base_url(port)})
        key, through = _state(container, provider.key_var, sources)
        if key == "unset":
            additions.append({"name": provider.key_var, "value": PLACEHOLDER_KEY})
        elif key == "unknown":
            warnings.append(
                f"container {name}: {provider.key_var} may come from {through}; "
                "no placeholder added"
            )
    return EnvDecision(additions, warnings)
