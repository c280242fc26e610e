"""Standalone mode serves the usage views: ReportUsage on loopback feeds `sidelight cost`.

One test speaks ReportUsage to the local control plane itself; the other sends
a request through the local sidecar with the official OpenAI SDK and finds it,
its tokens, cost and trace id, in `sidelight top` and `sidelight cost`.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from grpc import aio

from sidelight_cli.main import main
from sidelight_cli.standalone import FileSource, Standalone
from sidelight_fake_provider.server import FakeProvider
from sidelight_operator.usage import UsageOptions, UsageService
from sidelight_proto.v1 import control_plane_pb2, control_plane_pb2_grpc
from sidelight_sidecar.server import Sidecar, SidecarOptions
from tests.operator.usage.factory import record

KEY = "sk-standalone-usage-0123456789"
ROUTE = """\
apiVersion: sidelight.io/v1alpha1
kind: LLMRoute
metadata: {name: assistant, namespace: default}
spec:
  backends:
  - name: main
    provider: openai
    model: gpt-4o
    endpoints: [{url: "URL/v1"}]
    credentials: {secretRef: {name: openai, key: api-key}}
    pricing: {inputPerMillionTokens: 2.5, outputPerMillionTokens: 10}
  routes:
  - {name: chat, routeTo: main}
"""


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeProvider]:
    monkeypatch.setenv("SIDELIGHT_SECRET_OPENAI_API_KEY", KEY)
    async with FakeProvider("openai", api_keys={"openai": KEY}) as provider:
        yield provider


@pytest.fixture
async def standalone(tmp_path: Path, fake: FakeProvider) -> AsyncIterator[Standalone]:
    routes = tmp_path / "routes"
    routes.mkdir()
    (routes / "route.yaml").write_text(ROUTE.replace("URL", fake.url))
    usage = UsageService(UsageOptions("127.0.0.1", 0, tmp_path / "usage.db"))
    local = Standalone(
        FileSource([routes], out=io.StringIO()),
        Sidecar(SidecarOptions(port=0)),
        usage,
    )
    await local.start()
    try:
        yield local
    finally:
        await local.stop()


async def report(target: str, records: list[control_plane_pb2.UsageReport]) -> list[str]:
    """Send reports on one ReportUsage stream; the ids acknowledged."""
    async with aio.insecure_channel(target) as channel:
        stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
        acks = [ack async for ack in stub.ReportUsage(iter(records))]
    return [id_ for ack in acks for id_ in ack.ids]


async def test_reported_usage_reaches_sidelight_cost(
    standalone: Standalone, capsys: pytest.CaptureFixture[str]
) -> None:
    assert standalone.agent is not None
    assert standalone.usage is not None
    node = control_plane_pb2.Node(namespace="default", pod="standalone")
    now = time.time()
    first = control_plane_pb2.UsageReport(node=node, records=[record("a", now - 5, cost_usd=0.5)])
    again = control_plane_pb2.UsageReport(
        records=[record("a", now - 5), record("b", now - 1, application="search", cost_usd=0.25)]
    )
    assert await report(standalone.agent.target, [first, again]) == ["a", "a", "b"]
    url = f"http://127.0.0.1:{standalone.usage.port}"
    argv = ["cost", "--by", "application", "--since", "1h", "--json", "--url", url]
    assert await asyncio.to_thread(main, argv) == 0
    body = json.loads(capsys.readouterr().out)
    assert {g["key"]: g["cost_usd"] for g in body["groups"]} == {"checkout": 0.5, "search": 0.25}


async def sidelight_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert await asyncio.to_thread(main, list(argv)) == 0
    return json.loads(capsys.readouterr().out)


async def test_a_request_through_the_sidecar_shows_in_top_and_cost(
    standalone: Standalone, capsys: pytest.CaptureFixture[str]
) -> None:
    assert standalone.usage is not None
    client = openai.AsyncOpenAI(
        base_url=f"{standalone.sidecar.url}/v1", api_key="unused", max_retries=0
    )
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "what does it cost?"}]
    )
    await client.close()
    answer = raw.parse()
    assert answer.usage is not None
    url = f"http://127.0.0.1:{standalone.usage.port}"
    deadline = time.monotonic() + 15
    while not (top := await sidelight_json(capsys, "top", "--json", "--url", url))["requests"]:
        assert time.monotonic() < deadline, "the request never reached the usage store"
        await asyncio.sleep(0.05)
    (request,) = top["requests"]
    assert request["trace_id"] == raw.headers["x-sidelight-trace-id"]
    assert (request["input_tokens"], request["output_tokens"]) == (
        answer.usage.prompt_tokens,
        answer.usage.completion_tokens,
    )
    cost = (answer.usage.prompt_tokens * 2.5 + answer.usage.completion_tokens * 10) / 1e6
    assert request["cost_usd"] == pytest.approx(cost, abs=1e-9)
    assert (request["served_model"], request["route"]) == ("gpt-4o", "default/assistant#chat")
    report = await sidelight_json(capsys, "cost", "--by", "backend", "--json", "--url", url)
    assert [(g["key"], g["requests"]) for g in report["groups"]] == [("main", 1)]
