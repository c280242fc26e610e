"""Where the e2e binaries live: pinned versions, the cache, the build script."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

E2E_DIR = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = E2E_DIR / "build-binaries"
VERSIONS_FILE = E2E_DIR / "tools" / "versions.env"

COMPONENT_VERSION_KEYS = {
    "etcd": "ETCD_VERSION",
    "kube-apiserver": "KUBERNETES_VERSION",
    "kube-controller-manager": "KUBERNETES_VERSION",
    "kubectl": "KUBERNETES_VERSION",
    "helm": "HELM_VERSION",
}
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm")


class MissingBinaryError(RuntimeError):
    """A binary is not in the cache and could not be built."""


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """Parse the KEY=VALUE lines of versions.env (comments and blanks skipped)."""
    versions: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not KEY=VALUE: {raw!r}")
        versions[key.strip()] = value.strip().strip("\"'")
    return versions


def cache_root() -> Path:
    """The cache folder, resolved exactly as e2e/build-binaries resolves it."""
    explicit = os.environ.get("SIDELIGHT_E2E_BIN_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "sidelight" / "bin"


def binary_path(component: str, versions: dict[str, str] | None = None) -> Path:
    """The cached path of one component's binary (which may not exist yet)."""
    pinned = versions if versions is not None else read_versions()
    version = pinned[COMPONENT_VERSION_KEYS[component]]
    return cache_root() / f"{component}-{version}" / component


def build_command(components: Iterable[str]) -> list[str]:
    """The command that builds the given components."""
    return [str(BUILD_SCRIPT), *components]


def ensure_binaries(
    components: Iterable[str] = CONTROL_PLANE, *, build: bool = True
) -> dict[str, Path]:
    """Return the cached binaries, building the missing ones if `build`.

    The build output goes to this process's stderr, so a first run shows its
    progress. Raises MissingBinaryError with the command to run otherwise.
    """
    wanted = list(components)
    paths = {name: binary_path(name) for name in wanted}
    missing = [name for name, path in paths.items() if not os.access(path, os.X_OK)]
    if not missing:
        return paths
    command = " ".join(["e2e/build-binaries", *missing])
    if not build:
        raise MissingBinaryError(
            f"e2e binaries missing from {cache_root()}: {', '.join(missing)}; "
            f"build them with `{command}` (a cold kubernetes build takes long: "
            "see e2e/README.md)"
        )
    print(
        f"sidelight e2e: building missing binaries ({', '.join(missing)}) with `{command}`; "
        "only the first run pays this (see e2e/README.md)",
        file=sys.stderr,
        flush=True,
    )
    result = subprocess.run(build_command(missing), stdout=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise MissingBinaryError(
            f"`{command}` failed with exit code {result.returncode}; run it by hand to see why"
        )
    still = [name for name, path in paths.items() if not os.access(path, os.X_OK)]
    if still:
        raise MissingBinaryError(f"`{command}` did not produce: {', '.join(still)}")
    return paths
