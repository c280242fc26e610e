"""`e2e/cluster up|down|env|status`: the local control plane by hand.

`up` starts it detached and keeps its files in .sidelight/e2e-cluster (or
$SIDELIGHT_E2E_STATE_DIR); `eval "$(e2e/cluster env)"` points kubectl at it;
`down` stops the processes by their recorded pids and deletes the files.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from sidelight_e2e.binaries import CONTROL_PLANE, E2E_DIR, MissingBinaryError, ensure_binaries
from sidelight_e2e.controlplane import LocalControlPlane
from sidelight_e2e.processes import stop_detached


def state_dir() -> Path:
    """Where a detached control plane keeps its files."""
    explicit = os.environ.get("SIDELIGHT_E2E_STATE_DIR")
    return Path(explicit) if explicit else E2E_DIR.parent / ".sidelight" / "e2e-cluster"


def _state() -> dict[str, Any] | None:
    path = state_dir() / "state.json"
    if not path.exists():
        return None
    state: dict[str, Any] = json.loads(path.read_text())
    return state


def _alive(state: dict[str, Any]) -> list[str]:
    alive = []
    for process in state["processes"]:
        try:
            cmdline = Path(f"/proc/{process['pid']}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if cmdline and cmdline[0].decode(errors="replace") == process["exe"]:
            alive.append(process["name"])
    return alive


def _print_env(state: dict[str, Any]) -> None:
    print(f"export KUBECONFIG={shlex.quote(state['kubeconfig'])}")
    print(f"export SIDELIGHT_E2E_API_URL={shlex.quote(state['api_url'])}")
    bin_dirs = os.pathsep.join(state.get("bin_dirs", []))
    if bin_dirs:
        print(f'export PATH={shlex.quote(bin_dirs)}:"$PATH"')


def up() -> int:
    """Start the control plane in the background (if it is not up)."""
    state = _state()
    if state is not None:
        if _alive(state):
            print(
                f"already up ({', '.join(_alive(state))}); {state['kubeconfig']}", file=sys.stderr
            )
            _print_env(state)
            return 0
        down()
    try:
        binaries = ensure_binaries(CONTROL_PLANE)
    except MissingBinaryError as error:
        print(error, file=sys.stderr)
        return 1
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    plane = LocalControlPlane(binaries, workdir=directory, keep_workdir=False)
    plane.start()
    state = plane.state()
    state["bin_dirs"] = sorted({str(binaries[name].parent) for name in ("kubectl", "helm")})
    (directory / "state.json").write_text(json.dumps(state, indent=2))
    print(f"control plane up; logs in {directory / 'logs'}", file=sys.stderr)
    _print_env(state)
    return 0


def down() -> int:
    """Stop a detached control plane and delete its files."""
    state = _state()
    if state is None:
        print("no control plane recorded", file=sys.stderr)
        return 0
    for process in reversed(state["processes"]):
        if stop_detached(process["pid"], process["exe"]):
            print(f"stopped {process['name']} (pid {process['pid']})", file=sys.stderr)
    shutil.rmtree(state["workdir"], ignore_errors=True)
    return 0


def env() -> int:
    """Print export lines for a running control plane."""
    state = _state()
    if state is None or not _alive(state):
        print("no control plane is up: run e2e/cluster up", file=sys.stderr)
        return 1
    _print_env(state)
    return 0


def status() -> int:
    """Say which components run."""
    state = _state()
    if state is None:
        print("down")
        return 1
    alive = set(_alive(state))
    for process in state["processes"]:
        running = "running" if process["name"] in alive else "stopped"
        print(f"{process['name']}: {running} (pid {process['pid']}, log {process['log']})")
    return 0 if alive else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of e2e/cluster."""
    parser = argparse.ArgumentParser(prog="e2e/cluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "env", "status"])
    args = parser.parse_args(argv)
    commands = {"up": up, "down": down, "env": env, "status": status}
    return commands[args.command]()


if __name__ == "__main__":
    sys.exit(main())
