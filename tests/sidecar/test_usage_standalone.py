"""`sidelight run` reports usage the cluster's way: the local sidecar's records reach the store."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from sidelight_cli.standalone import FileSource, Standalone
from sidelight_fake_provider.server import FakeProvider
from sidelight_operator.usage import UsageOptions, UsageService
from sidelight_sidecar.server import Sidecar, SidecarOptions
from sidelight_sidecar.usage_spool import SUFFIX

KEY = "sk-standalone-0123456789"
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
  - {name: default, routeTo: main}
"""


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_the_local_sidecars_usage_reaches_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIDELIGHT_SECRET_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("SIDELIGHT_POD_NAMESPACE", "laptop")
    routes = tmp_path / "routes"
    routes.mkdir()
    usage = UsageService(UsageOptions("127.0.0.1", 0, tmp_path / "state" / "usage.db"))
    async with FakeProvider("openai", api_keys={"openai": KEY}) as fake:
        (routes / "route.yaml").write_text(ROUTE.replace("URL", fake.url))
        local = Standalone(
            FileSource([routes], out=io.StringIO()),
            Sidecar(SidecarOptions(port=0, usage_path=tmp_path / "usage.jsonl")),
            usage,
        )
        await local.start()
        client = openai.AsyncOpenAI(
            base_url=f"{local.sidecar.url}/v1", api_key="placeholder", max_retries=0
        )
        try:
            completion = await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
            )

            def stored() -> list[tuple[str, int, int]]:
                with usage.store.reading() as conn:
                    query = "SELECT namespace, input_tokens, output_tokens FROM records"
                    return list(conn.execute(query))

            await until(stored)
            rows = stored()
        finally:
            await client.close()
            await local.stop()
    assert completion.usage is not None
    tokens = (completion.usage.prompt_tokens, completion.usage.completion_tokens)
    assert rows == [("laptop", *tokens)]  # the local sidecar's own identity
    assert (tmp_path / "usage.jsonl").read_text().count("\n") == 1  # the file as well
    assert list((tmp_path / "state" / "usage-spool").glob(f"*{SUFFIX}")) == []
