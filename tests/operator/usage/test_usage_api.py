"""The usage HTTP API on a loopback port: answers checked against its OpenAPI description."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from sidelight_operator.usage.api import build_usage_app
from tests.operator.usage.served import TRACE_C, UsageServer

OPENAPI: dict[str, Any] = json.loads(
    resources.files("sidelight_operator.usage").joinpath("openapi.json").read_text()
)
_REFS: Registry[Any] = Registry().with_resource("urn:openapi", DRAFT202012.create_resource(OPENAPI))


def check(schema_name: str, body: object) -> None:
    """Validate `body` against a component schema of the OpenAPI file."""
    schema = {"$ref": f"urn:openapi#/components/schemas/{schema_name}"}
    Draft202012Validator(schema, registry=_REFS).validate(body)


def response_schema(path: str, status: str) -> str:
    content = OPENAPI["paths"][path]["get"]["responses"][status]["content"]
    ref: str = content["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[1]


@pytest.fixture
async def server() -> AsyncIterator[UsageServer]:
    server = UsageServer()
    await server.start()
    yield server
    await server.stop()


async def get(server: UsageServer, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(server.url + path) as response:
        return response.status, await response.json()


def test_openapi_document_is_valid_openapi_3_1() -> None:
    assert OPENAPI["openapi"].startswith("3.1")
    validate(OPENAPI)
    for schema in OPENAPI["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


async def test_cost_by_team(server: UsageServer) -> None:
    status, body = await get(server, "/api/v1/usage/cost?by=team&since=7d")
    assert status == 200
    check(response_schema("/api/v1/usage/cost", "200"), body)
    assert body["days"][-3:] == ["2025-03-03", "2025-03-04", "2025-03-05"]
    groups = {g["key"]: g for g in body["groups"]}
    assert [day["cost_usd"] for day in groups["payments"]["trend"][-3:]] == [0.75, 0.0, 0.125]
    assert [day["cost_usd"] for day in groups["search"]["trend"][-3:]] == [0.0, 2.0, 0.0]
    assert groups["search"]["errors"] == 1
    assert body["total"]["cost_usd"] == 2.875


async def test_cost_with_rfc3339_range(server: UsageServer) -> None:
    status, body = await get(
        server,
        "/api/v1/usage/cost?by=served_model&since=2025-03-04T00:00:00Z"
        "&until=2025-03-05T00:00:00%2B00:00",
    )
    assert status == 200
    check("CostReport", body)
    assert body["days"] == ["2025-03-04"]
    assert [(g["key"], g["requests"]) for g in body["groups"]] == [
        ("claude-3-5-sonnet", 1),
        ("gpt-4o", 1),
    ]


async def test_top(server: UsageServer) -> None:
    status, body = await get(server, "/api/v1/usage/top?limit=2")
    assert status == 200
    check(response_schema("/api/v1/usage/top", "200"), body)
    assert [(r["id"], r["cost_usd"]) for r in body["requests"]] == [("c", 2.0), ("b", 0.5)]
    assert body["requests"][0]["trace_id"] == TRACE_C


async def test_rates(server: UsageServer) -> None:
    status, body = await get(server, "/api/v1/usage/rates?since=30d")
    assert status == 200
    check(response_schema("/api/v1/usage/rates", "200"), body)
    assert body["fallback_rate"] == 0.2
    assert body["guardrails"]["blocked"] == {"requests": 1, "rate": 0.2}
    assert body["guardrails"]["redacted"] == {"requests": 1, "rate": 0.2}


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("/api/v1/usage/cost", "by"),
        ("/api/v1/usage/cost?by=colour", "by"),
        ("/api/v1/usage/cost?by=team&since=yesterday", "since"),
        ("/api/v1/usage/cost?by=team&until=2025-03-04T00:00:00", "until"),
        ("/api/v1/usage/cost?by=team&since=1d&until=2d", "until"),
        ("/api/v1/usage/top?limit=many", "limit"),
        ("/api/v1/usage/top?limit=0", "limit"),
        ("/api/v1/usage/top?limit=1001", "limit"),
        ("/api/v1/usage/rates?since=-1d", "since"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    server: UsageServer, query: str, parameter: str
) -> None:
    status, body = await get(server, query)
    assert status == 400
    check("Error", body)
    assert body["parameter"] == parameter


def test_every_api_route_is_described() -> None:
    server = UsageServer()
    app = build_usage_app(server.store, server.registry)
    served = {
        resource.canonical
        for resource in app.router.resources()
        if resource.canonical.startswith("/api/") or resource.canonical in {"/metrics"}
    }
    described = {path for path in OPENAPI["paths"] if path != "/openapi.json"}
    assert served == described
    server.store.close()


async def test_metrics_and_static_files(server: UsageServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + "/metrics") as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            text = await response.text()
        async with session.get(server.url + "/openapi.json") as response:
            assert await response.json() == OPENAPI
        async with session.get(server.url + "/") as response:
            assert response.content_type == "text/html"
            assert '<script src="usage.js"' in await response.text()
        async with session.get(server.url + "/usage.js") as response:
            assert response.content_type == "text/javascript"
    assert 'sidelight_usage_requests_total{application="checkout"' in text
    assert 'team="search"} 2.0' in text
