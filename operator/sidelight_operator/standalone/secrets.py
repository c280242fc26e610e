"""Secrets for standalone mode, from the environment or a directory.

With no API server there are no Secret objects to read, so for every
`credentials.secretRef {name, key}` of every LLMRoute the file source builds
a synthetic v1 Secret from, in this order:

1. the environment variable `SIDELIGHT_SECRET_<NAME>_<KEY>`: the Secret name
   and key upper-cased, every character that is not a letter or digit
   replaced by `_` (`secretRef {name: openai, key: api-key}` reads
   `SIDELIGHT_SECRET_OPENAI_API_KEY`); an empty variable counts as unset;
2. the file `<secrets_dir>/<name>/<key>`, with trailing newlines stripped
   (so `echo "$KEY" > secrets/openai/api-key` works);
3. nothing: the key stays missing, and the compile step reports it on the
   backend's `credentials.secretRef`.

The namespace plays no part: a Secret name means the same in every
namespace. A Secret object among the loaded files is used as it is, and no
synthetic Secret is built for its name. Refs whose name or key is not a valid
Secret name or key are skipped, so they cannot name a path outside
`secrets_dir`; compile reports them. See docs/standalone-secrets.md.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sidelight_operator.compile.llmroute import SECRET_KEY, SECRET_NAME

ENV_PREFIX = "SIDELIGHT_SECRET_"
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def env_name(name: str, key: str) -> str:
    """The environment variable that holds key `key` of Secret `name`."""
    return ENV_PREFIX + _NOT_ALNUM.sub("_", f"{name}_{key}".upper())


def resolve_secrets(
    resources: Sequence[Mapping[str, Any]], env: Mapping[str, str], secrets_dir: Path | None
) -> list[dict[str, Any]]:
    """Synthetic v1 Secrets for the secretRefs of `resources` that can be resolved."""
    present = {
        (_meta(r, "namespace"), _meta(r, "name"))
        for r in resources
        if r.get("apiVersion") == "v1" and r.get("kind") == "Secret"
    }
    found: dict[tuple[str, str], dict[str, str]] = {}
    for namespace, name, key in _refs(resources):
        if (namespace, name) in present:
            continue
        value = _lookup(name, key, env, secrets_dir)
        if value is not None:
            found.setdefault((namespace, name), {})[key] = base64.b64encode(value).decode()
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"namespace": namespace, "name": name},
            "data": data,
        }
        for (namespace, name), data in sorted(found.items())
    ]


def _lookup(name: str, key: str, env: Mapping[str, str], secrets_dir: Path | None) -> bytes | None:
    value = env.get(env_name(name, key))
    if value:
        return value.encode()
    if secrets_dir is None:
        return None
    try:
        return (secrets_dir / name / key).read_bytes().rstrip(b"\r\n")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _refs(resources: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, str, str]]:
    for resource in resources:
        if resource.get("kind") != "LLMRoute":
            continue
        namespace = _meta(resource, "namespace")
        spec = resource.get("spec")
        backends = spec.get("backends") if isinstance(spec, Mapping) else None
        for backend in backends if isinstance(backends, list) else []:
            credentials = backend.get("credentials") if isinstance(backend, Mapping) else None
            ref = credentials.get("secretRef") if isinstance(credentials, Mapping) else None
            name = ref.get("name") if isinstance(ref, Mapping) else None
            key = ref.get("key") if isinstance(ref, Mapping) else None
            if (
                isinstance(name, str)
                and isinstance(key, str)
                and SECRET_NAME.fullmatch(name)
                and SECRET_KEY.fullmatch(key)
                and key not in (".", "..")
            ):
                yield namespace, name, key


def _meta(resource: Mapping[str, Any], field: str) -> str:
    meta = resource.get("metadata")
    value = meta.get(field) if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) else ""
