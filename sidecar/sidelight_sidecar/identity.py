"""Who the sidecar speaks for: the pod's identity, from its environment.

The injected pod spec sets these variables through the downward API; a
caller's request headers never change them, so usage cannot be forged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """The pod a sidecar serves."""

    namespace: str = ""
    pod: str = ""
    workload: str = ""
    team: str = ""
    application: str = ""
    environment: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Identity:
        """Read SIDELIGHT_POD_NAMESPACE, _POD_NAME, _WORKLOAD, _TEAM, _APPLICATION, _ENVIRONMENT."""
        env = os.environ if env is None else env
        return cls(
            namespace=env.get("SIDELIGHT_POD_NAMESPACE", ""),
            pod=env.get("SIDELIGHT_POD_NAME", ""),
            workload=env.get("SIDELIGHT_WORKLOAD", ""),
            team=env.get("SIDELIGHT_TEAM", ""),
            application=env.get("SIDELIGHT_APPLICATION", ""),
            environment=env.get("SIDELIGHT_ENVIRONMENT", ""),
        )
