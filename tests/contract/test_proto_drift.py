"""The committed generated protobuf code is what scripts/gen-protos produces."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "protos" / "sidelight_proto" / "v1"


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    subprocess.run([str(ROOT / "scripts" / "gen-protos"), str(tmp_path)], check=True, env=env)
    fresh = tmp_path / "sidelight_proto" / "v1"
    names = sorted(p.name for p in fresh.iterdir())
    committed = sorted(p.name for p in GENERATED.glob("*_pb2*"))
    assert names == committed, "generated files differ; run scripts/gen-protos"
    stale = [n for n in names if not filecmp.cmp(fresh / n, GENERATED / n, shallow=False)]
    assert not stale, f"stale generated code {stale}; run scripts/gen-protos"
