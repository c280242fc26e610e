"""Standalone mode's file source: the I/O edge in front of the pure compile step.

`load_resources(paths)` reads resources from YAML files and directories;
`resolve_secrets(resources, env, secrets_dir)` builds the Secrets that the
LLMRoutes name from the environment or a directory. Their output goes to
`sidelight_operator.compile.compile_snapshot` like the API server's would.
"""

from sidelight_operator.standalone.files import load_resources
from sidelight_operator.standalone.secrets import env_name, resolve_secrets

__all__ = ["env_name", "load_resources", "resolve_secrets"]
