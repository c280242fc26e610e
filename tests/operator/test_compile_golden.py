"""Golden files for the compile step (STYLE principle 6).

Every case is a folder under golden/compile/ with `input.yaml` (resources,
several documents) and `expected.json` (the Snapshot as protobuf JSON with
sorted keys, the diagnostics and the acceptance of each resource). Any other
file, or a folder without its input, fails the run. Regenerate with
`UPDATE_GOLDEN=1 pytest tests/operator/test_compile_golden.py` and review
the diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format

from sidelight_operator.compile import CompileResult, compile_snapshot

GOLDEN = Path(__file__).parent / "golden" / "compile"
CASE_FILES = {"input.yaml", "expected.json"}
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def render(result: CompileResult) -> str:
    """The golden JSON of a compile result."""
    document: dict[str, Any] = {
        "snapshot": json.loads(json_format.MessageToJson(result.snapshot, sort_keys=True)),
        "diagnostics": [dataclasses.asdict(d) for d in result.diagnostics],
        "accepted": [
            {"kind": kind, "namespace": namespace, "name": name, "accepted": ok}
            for (kind, namespace, name), ok in result.accepted.items()
        ],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def cases() -> list[str]:
    """The golden case folders."""
    return sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def test_corpus_has_no_orphans() -> None:
    """Every entry is a case folder holding exactly input.yaml and expected.json."""
    stray = [p.name for p in GOLDEN.iterdir() if not p.is_dir()]
    assert not stray, f"files outside a case folder: {stray}"
    for case in cases():
        present = {p.name for p in (GOLDEN / case).iterdir()}
        assert present <= CASE_FILES, f"{case}: unexpected files {sorted(present - CASE_FILES)}"
        assert "input.yaml" in present, f"{case}: expected.json without input.yaml"
        assert UPDATE or "expected.json" in present, f"{case}: no expected.json (UPDATE_GOLDEN=1)"


@pytest.mark.parametrize("case", cases())
def test_compile_golden(case: str) -> None:
    """The compile step turns the case's input into exactly its expected output."""
    folder = GOLDEN / case
    resources = [d for d in yaml.safe_load_all((folder / "input.yaml").read_text()) if d]
    actual = render(compile_snapshot(resources))
    expected_path = folder / "expected.json"
    if UPDATE:
        expected_path.write_text(actual)
    assert actual == expected_path.read_text()
