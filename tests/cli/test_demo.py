"""`sidelight demo` runs the tour end to end and shows each decision."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SIDELIGHT = Path(sys.executable).parent / "sidelight"


def test_demo_shows_routes_translation_fallback_and_guardrails() -> None:
    result = subprocess.run(
        [str(SIDELIGHT), "demo"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split("  ")[0]: line for line in result.stdout.splitlines()}
    assert "cheap-summaries" in lines["summary (short)"]
    assert "claude-3-haiku-20240307" in lines["summary (short)"]
    assert "low-priority-chat" in lines["chat, low priority"]
    assert "long-high-priority-chat" in lines["chat, high priority, long"]
    assert "claude-3-haiku" in lines["OpenAI SDK, streaming, via Claude"]
    assert lines["summary while Claude is overloaded"].split()[-1] == "true"
    assert "provider received  Write to <EMAIL_1> about the card <CARD_1>." in result.stdout
    assert "caller got back    Echo: Write to jane.doe@example.com" in result.stdout
    assert "HTTP 400 guardrail_blocked: guardrail default/local-safety, rule injection" in (
        result.stdout
    )
    assert "8 records" in result.stdout
