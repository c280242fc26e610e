"""A fake kubelet: runs one container of a pod as a local process.

There is no kubelet in the local control plane. `FakeKubelet.run` reads the
pod spec (as the API server holds it, after admission and injection) and
starts the named container's command with the environment and the volumes
that the spec gives it: volumes are written into a temp dir, and every
occurrence of a mount path in the command, args and env values is rewritten
to its place there. Code that opens a fixed path it was not given (such as
the in-cluster client's /var/run/secrets/kubernetes.io/serviceaccount) does
not see the mount.
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sidelight_e2e import podspec
from sidelight_e2e.objects import to_dict
from sidelight_e2e.processes import ManagedProcess, poll, tail


class ApiObjectSource:
    """Secrets, ConfigMaps and tokens read from the API server."""

    def __init__(self, api: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api)

    def _read(self, kind: str, namespace: str, name: str) -> Any:
        try:
            if kind == "secret":
                return self._core.read_namespaced_secret(name, namespace)
            return self._core.read_namespaced_config_map(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        """The Secret's data, base64-decoded."""
        secret = self._read("secret", namespace, name)
        if secret is None:
            return None
        return {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}

    def config_map(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        """The ConfigMap's data (UTF-8) and binaryData (base64-decoded)."""
        config_map = self._read("configmap", namespace, name)
        if config_map is None:
            return None
        data = {key: value.encode() for key, value in (config_map.data or {}).items()}
        for key, value in (config_map.binary_data or {}).items():
            data[key] = base64.b64decode(value)
        return data

    def service_account_token(self, pod: podspec.Pod, audience: str | None, expiration: int) -> str:
        """A TokenRequest for the pod's service account, bound to the pod if it has a uid."""
        meta = pod.get("metadata") or {}
        bound = None
        if meta.get("uid"):
            bound = client.V1BoundObjectReference(
                api_version="v1", kind="Pod", name=meta["name"], uid=meta["uid"]
            )
        spec = client.V1TokenRequestSpec(
            audiences=[audience] if audience else [],
            expiration_seconds=expiration,
            bound_object_ref=bound,
        )
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        result = self._core.create_namespaced_service_account_token(
            account,
            meta.get("namespace") or "default",
            client.AuthenticationV1TokenRequest(spec=spec),
        )
        if result.status is None or not result.status.token:
            raise RuntimeError(f"TokenRequest for {account} returned no token")
        return str(result.status.token)


@dataclass
class RunningContainer:
    """A container the fake kubelet started."""

    pod: str
    name: str
    argv: list[str]
    env: dict[str, str]
    mounts: dict[str, Path]
    rootdir: Path
    process: ManagedProcess

    def host_path(self, container_path: str) -> Path:
        """Where a path the container sees lives on this machine."""
        return Path(
            podspec.rewrite_paths(container_path, {k: str(v) for k, v in self.mounts.items()})
        )

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.process.log_path.read_text(errors="replace")

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit; return its exit code."""
        return self.process.wait(timeout)

    def wait_for_output(self, text: str, timeout: float = 30.0) -> str:
        """Wait until `text` appears in the output; fail early if the process exits."""

        def seen() -> str | None:
            output = self.output()
            if text in output:
                return output
            self.process.check_alive()
            return None

        return poll(seen, timeout=timeout, what=f"{text!r} in the output of {self.name}")

    def stop(self) -> str:
        """Stop the process and return its output."""
        self.process.stop()
        return self.output()


@dataclass
class FakeKubelet:
    """Runs pod containers as local processes; `stop_all()` ends them and cleans up."""

    api: client.ApiClient | None
    """The admin client; None only when every run() gets its own `source`."""
    api_url: str | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fake-kubelet-")))
    keep_files: bool = False
    containers: list[RunningContainer] = field(default_factory=list)

    def service_env(self) -> dict[str, str]:
        """The variables a kubelet adds for the `kubernetes` Service."""
        if self.api_url is None:
            return {}
        url = urlsplit(self.api_url)
        port = str(url.port or 443)
        return {
            "KUBERNETES_SERVICE_HOST": url.hostname or "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
        }

    def run(
        self,
        pod: Any,
        container: str,
        *,
        extra_env: Mapping[str, str] | None = None,
        source: podspec.ObjectSource | None = None,
    ) -> RunningContainer:
        """Start `container` (or init container) of `pod` (dict or client object)."""
        spec = to_dict(self.api, pod)
        meta = spec.get("metadata") or {}
        found = podspec.find_container(spec, container)
        if source is not None:
            objects = source
        elif self.api is not None:
            objects = ApiObjectSource(self.api)
        else:
            raise ValueError("a FakeKubelet without an ApiClient needs a `source`")
        service = self.service_env()
        env = podspec.resolve_env(spec, found, objects, base=service)
        rootdir = Path(
            tempfile.mkdtemp(prefix=f"{meta.get('name', 'pod')}-{container}-", dir=self.workdir)
        )
        mount_map = self._materialise(spec, podspec.mounts(found, env), objects, rootdir)
        as_text = {path: str(host) for path, host in mount_map.items()}
        env = {key: podspec.rewrite_paths(value, as_text) for key, value in env.items()}
        argv = [podspec.rewrite_paths(part, as_text) for part in podspec.container_argv(found, env)]
        argv[0] = resolve_executable(argv[0])
        home = rootdir / "home"
        home.mkdir()
        process_env = {
            "PATH": search_path(),
            "HOME": str(home),
            "HOSTNAME": str(meta.get("name", "")),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            **service,
            **env,
            **(extra_env or {}),
        }
        working_dir = found.get("workingDir")
        cwd = Path(podspec.rewrite_paths(working_dir, as_text)) if working_dir else rootdir
        process = ManagedProcess(
            name=f"{meta.get('name', 'pod')}/{container}",
            argv=argv,
            log_path=rootdir / "output.log",
            env=process_env,
            cwd=cwd if cwd.is_dir() else rootdir,
        )
        running = RunningContainer(
            pod=f"{meta.get('namespace')}/{meta.get('name')}",
            name=container,
            argv=argv,
            env=process_env,
            mounts=mount_map,
            rootdir=rootdir,
            process=process,
        )
        self.containers.append(running)
        process.start()
        return running

    def _materialise(
        self,
        pod: podspec.Pod,
        container_mounts: list[podspec.Mount],
        objects: podspec.ObjectSource,
        rootdir: Path,
    ) -> dict[str, Path]:
        volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
        written: dict[str, Path] = {}
        mount_map: dict[str, Path] = {}
        for mount in container_mounts:
            if mount.volume not in volumes:
                raise podspec.UnsupportedPodSpecError(
                    f"volumeMount {mount.mount_path} names no volume {mount.volume!r}"
                )
            if mount.volume not in written:
                written[mount.volume] = write_volume(
                    rootdir / "volumes" / mount.volume,
                    podspec.volume_files(pod, volumes[mount.volume], objects),
                )
            host = (
                written[mount.volume] / mount.sub_path if mount.sub_path else written[mount.volume]
            )
            mount_map[mount.mount_path] = host
        return mount_map

    def log_tails(self, lines: int = 30) -> str:
        """The last lines of each container's output, for a failure report."""
        return "\n".join(
            f"----- fake kubelet {c.pod} {c.name} (exit {c.process.returncode()}) -----\n"
            + tail(c.process.log_path, lines)
            for c in self.containers
        )

    def stop_all(self) -> None:
        """Stop every container and delete the files (unless keep_files)."""
        for running in self.containers:
            running.process.stop()
        if not self.keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)


def write_volume(directory: Path, files: dict[str, podspec.File] | None) -> Path:
    """Write a volume's files below `directory` (an emptyDir stays empty)."""
    directory.mkdir(parents=True, exist_ok=True)
    for relative, file in (files or {}).items():
        target = directory / relative
        if directory.resolve() not in target.resolve().parents:
            raise podspec.UnsupportedPodSpecError(f"volume path {relative!r} leaves the volume")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.data)
        target.chmod(file.mode)
    return directory


def search_path() -> str:
    """PATH for the containers: this interpreter's (venv) bin dir first."""
    venv_bin = str(Path(sys.executable).parent)
    return os.pathsep.join([venv_bin, os.environ.get("PATH", os.defpath)])


def resolve_executable(command: str) -> str:
    """An absolute path for the container's command (console scripts included)."""
    if os.sep in command:
        if os.access(command, os.X_OK):
            return command
        raise FileNotFoundError(f"container command {command!r} is not an executable file here")
    found = shutil.which(command, path=search_path())
    if found is None:
        raise FileNotFoundError(
            f"container command {command!r} is not on PATH or in {Path(sys.executable).parent}"
        )
    return found
