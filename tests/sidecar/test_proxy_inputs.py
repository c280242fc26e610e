"""Bad input gets a 4xx in the caller's API format, and nothing crashes."""

from __future__ import annotations

import aiohttp
import pytest

from sidelight_sidecar.proxy import Settings
from sidelight_sidecar.server import Sidecar, SidecarOptions
from tests.sidecar.harness import SEED_ROUTES, Harness, compile_routes

CASES = [
    ("not json", b"{not json", "application/json", 400),
    (
        "invalid utf-8",
        b'{"model": "gpt-4", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        "application/json",
        400,
    ),
    ("array body", b"[1, 2]", "application/json", 400),
    ("no model", b'{"messages": [{"role": "user", "content": "x"}]}', "application/json", 400),
    ("model not a string", b'{"model": 4, "messages": []}', "application/json", 400),
    ("no messages", b'{"model": "gpt-4"}', "application/json", 400),
    ("messages not objects", b'{"model": "gpt-4", "messages": ["x"]}', "application/json", 400),
    ("wrong content type", b"model=gpt-4", "application/x-www-form-urlencoded", 415),
    (
        "stream not boolean",
        b'{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
        "application/json",
        400,
    ),
]


@pytest.mark.parametrize(("name", "body", "ctype", "status"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_bad_requests(
    harness: Harness, name: str, body: bytes, ctype: str, status: int, api: str
) -> None:
    harness.apply(SEED_ROUTES)
    path = "/v1/chat/completions" if api == "openai" else "/v1/messages"
    async with (
        aiohttp.ClientSession() as session,
        session.post(harness.sidecar.url + path, data=body, headers={"content-type": ctype}) as r,
    ):
        payload = await r.json()
        assert r.status == status, (name, payload)
        assert r.headers["x-sidelight-error-source"] == "proxy"
    if api == "openai":
        assert set(payload["error"]) >= {"message", "type"}
    else:
        assert payload["type"] == "error"
        assert set(payload["error"]) == {"type", "message"}
    assert harness.openai_fake.requests == []
    assert harness.anthropic_fake.requests == []


async def test_anthropic_requires_max_tokens(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            harness.sidecar.url + "/v1/messages",
            json={"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]},
        ) as r,
    ):
        assert r.status == 400
        assert "max_tokens" in (await r.json())["error"]["message"]


async def test_body_over_the_cap_is_413() -> None:
    sidecar = Sidecar(SidecarOptions(port=0, settings=Settings(max_body_bytes=1024)))
    sidecar.store.apply(
        compile_routes(
            SEED_ROUTES.replace("OPENAI_URL", "http://127.0.0.1:9").replace(
                "ANTHROPIC_URL", "http://127.0.0.1:9"
            )
        )
    )
    await sidecar.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                sidecar.url + "/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "x" * 4096}]},
            ) as r,
        ):
            assert r.status == 413
            assert "larger" in (await r.json())["error"]["message"]
    finally:
        await sidecar.stop()


async def test_not_ready_without_configuration(harness: Harness) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(harness.sidecar.url + "/readyz") as r:
            assert r.status == 503
        async with session.get(harness.sidecar.url + "/healthz") as r:
            assert r.status == 200
        harness.apply(SEED_ROUTES)
        async with session.get(harness.sidecar.url + "/readyz") as r:
            assert r.status == 200


async def test_unknown_path_and_method(harness: Harness) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(harness.sidecar.url + "/v1/nothing") as r:
            assert r.status == 404
            assert "error" in await r.json()
        async with session.get(
            harness.sidecar.url + "/v1/messages", headers={"anthropic-version": "2023-06-01"}
        ) as r:
            assert r.status == 404
            assert (await r.json())["type"] == "error"
