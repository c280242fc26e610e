"""Sidecar injection: a pure pod-to-pod function and the webhook that serves it.

- `inject_pod` (`pod.py`): pod, Namespace and `InjectionConfig` in, the
  injected pod and its JSON Patch out (or why it was skipped). Shared by
  the webhook and `sidelight inject`; tested on the golden corpus in
  tests/operator/inject/golden.
- `sidecar.py` (the container and volumes), `env.py` (the SDK variables and
  the rule that the user's values win), `patch.py` (the JSON Patch).
- `PodInjector` and `build_webhook_app` (`webhook.py`): AdmissionReview v1.
- `NamespaceIndex` and `NamespaceWatch` (`namespaces.py`): which
  namespaces opt in.
- `WebhookServer` (`server.py`): the webhook as the operator runs it.

See docs/injection.md.
"""

from sidelight_operator.inject.config import IdentityLabels, InjectionConfig, build_injection_config
from sidelight_operator.inject.pod import (
    InjectionResult,
    inject_pod,
    namespace_opted_in,
    skip_reason,
)

__all__ = [
    "IdentityLabels",
    "InjectionConfig",
    "InjectionResult",
    "build_injection_config",
    "inject_pod",
    "namespace_opted_in",
    "skip_reason",
]
