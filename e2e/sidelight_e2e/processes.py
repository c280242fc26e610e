"""Local processes with a log file each, free loopback ports, polling with deadlines."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class ProcessDiedError(RuntimeError):
    """A managed process exited while something waited on it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def poll(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    alive: Callable[[], None] | None = None,
) -> T:
    """Call `check` until it returns something other than None, or time out.

    `alive` is called on each round and may raise (a process died) to stop
    waiting early. On time-out the last exception raised by `check`, if any,
    is chained to the TimeoutError.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        if alive is not None:
            alive()
        try:
            result = check()
        except Exception as error:  # kept and chained on time-out
            last_error = error
        else:
            if result is not None:
                return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}") from last_error
        time.sleep(interval)


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a text file ('' if it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


@dataclass
class ManagedProcess:
    """One local process in its own session, output to `log_path`."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start the process; stdout and stderr both go to the log file."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The process id (the process must have been started)."""
        if self.process is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.process.pid

    def returncode(self) -> int | None:
        """The exit code, or None while it runs (or before it starts)."""
        return None if self.process is None else self.process.poll()

    def check_alive(self) -> None:
        """Raise ProcessDiedError, with the log tail, if the process exited."""
        code = self.returncode()
        if code is not None:
            raise ProcessDiedError(
                f"{self.name} exited with code {code}; last lines of {self.log_path}:\n"
                + tail(self.log_path)
            )

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit and return its exit code."""
        if self.process is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it after `timeout` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        kill_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)

    def tail(self, lines: int = 40) -> str:
        """The last lines of the log."""
        return tail(self.log_path, lines)


def kill_group(pid: int, sig: signal.Signals) -> None:
    """Signal a process group led by `pid` (no error if it is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_detached(pid: int, expected_exe: str, timeout: float = 10.0) -> bool:
    """Stop a process started by an earlier `e2e/cluster up`, by its pid.

    Only if /proc says it still runs `expected_exe` (a pid may be reused).
    Returns whether it was running.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    if not cmdline or cmdline[0].decode(errors="replace") != expected_exe:
        return False
    kill_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return True
        time.sleep(0.1)
    kill_group(pid, signal.SIGKILL)
    return True


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"
