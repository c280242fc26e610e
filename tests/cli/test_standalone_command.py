"""`sidelight run` as a person runs it: a process, its output, its signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sidelight_fake_provider.server import FakeProviderThread

SIDELIGHT = Path(sys.executable).parent / "sidelight"
EXAMPLES = Path(__file__).resolve().parents[2] / "crds" / "examples" / "standalone"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_says_loopback_has_no_tls_and_no_token() -> None:
    result = subprocess.run(
        [str(SIDELIGHT), "run", "--help"], capture_output=True, text=True, check=True
    )
    text = " ".join(result.stdout.split())
    assert "no TLS" in text
    assert "checks no token" in text
    assert "loopback peers only" in text


def test_run_serves_the_examples_through_the_control_plane(tmp_path: Path) -> None:
    with FakeProviderThread("fake") as fake:
        routes = tmp_path / "routes"
        routes.mkdir()
        for source in EXAMPLES.glob("*.yaml"):
            text = source.read_text().replace("http://127.0.0.1:18080", fake.url)
            (routes / source.name).write_text(text)
        port = free_port()
        log = tmp_path / "run.log"
        env = {**os.environ, "NO_PROXY": "127.0.0.1"}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    str(SIDELIGHT),
                    "run",
                    "-f",
                    str(routes),
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--usage-log",
                    str(tmp_path / "usage.jsonl"),
                    "--usage-listen",
                    f"127.0.0.1:{free_port()}",
                    "--usage-store",
                    str(tmp_path / "usage.db"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            deadline = time.monotonic() + 30
            while "sidelight listening on" not in log.read_text():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                assert r.status == 200
            output = log.read_text()
            assert "serving version" in output
            assert output.index("serving version") < output.index("sidelight listening on")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail("sidelight run did not stop on SIGTERM")
        assert code == 0, log.read_text()
