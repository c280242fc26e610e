"""Detectors for guardrails: the contract, the built-in ones, and the registry."""

import hashlib
from functools import cache
from importlib import resources

from sidelight_sidecar.guardrails.detectors.base import (
    Detector,
    DetectorFactory,
    DetectorRegistry,
    Finding,
    UnknownEntityError,
    resolve_overlaps,
)
from sidelight_sidecar.guardrails.detectors.custom import (
    DENY_LIST_ENTITY,
    DenyListDetector,
    PatternDetector,
)
from sidelight_sidecar.guardrails.detectors.injection import INJECTION_ENTITY, InjectionDetector
from sidelight_sidecar.guardrails.detectors.pii import PII_ENTITIES, PiiDetector
from sidelight_sidecar.guardrails.detectors.secrets import SECRET_ENTITIES, SecretDetector


def default_registry() -> DetectorRegistry:
    """The built-in PII and SECRET detectors, by entity."""
    registry = DetectorRegistry()
    registry.register(PII_ENTITIES, PiiDetector)
    registry.register(SECRET_ENTITIES, SecretDetector)
    return registry


@cache
def detector_set_version() -> str:
    """A hash of the built-in detectors' code: it changes whenever any of them does.

    Redaction receipts carry it, so a receipt says which detectors checked the body.
    """
    digest = hashlib.sha256()
    package = resources.files(__name__)
    for name in sorted(p.name for p in package.iterdir() if p.name.endswith(".py")):
        digest.update(name.encode())
        digest.update(package.joinpath(name).read_bytes())
    return digest.hexdigest()[:12]


__all__ = [
    "DENY_LIST_ENTITY",
    "INJECTION_ENTITY",
    "PII_ENTITIES",
    "SECRET_ENTITIES",
    "DenyListDetector",
    "Detector",
    "DetectorFactory",
    "DetectorRegistry",
    "Finding",
    "InjectionDetector",
    "PatternDetector",
    "PiiDetector",
    "SecretDetector",
    "UnknownEntityError",
    "default_registry",
    "detector_set_version",
    "resolve_overlaps",
]
