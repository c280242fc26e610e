"""The admin API under `/_fake/`: fault rules and request records, for out-of-process tests.

- `POST /_fake/faults`: add a rule (see `faults`), answers 201 with the rule.
- `GET /_fake/faults`: the rules still in force, in matching order.
- `DELETE /_fake/faults`: remove every rule.
- `GET /_fake/requests`: every provider request received, oldest first.
- `DELETE /_fake/requests`: forget them.

Admin requests are neither recorded nor subject to faults or keys.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from sidelight_fake_provider.faults import FaultRule, FaultRuleError
from sidelight_fake_provider.state import FakeState

__all__ = ["STATE", "add_admin_routes"]

STATE = web.AppKey("sidelight_fake_provider.state", FakeState)


def add_admin_routes(app: web.Application) -> None:
    """Register the `/_fake/` routes on `app`, which must hold a `STATE`."""
    app.router.add_post("/_fake/faults", _add_fault)
    app.router.add_get("/_fake/faults", _list_faults)
    app.router.add_delete("/_fake/faults", _clear_faults)
    app.router.add_get("/_fake/requests", _list_requests)
    app.router.add_delete("/_fake/requests", _clear_requests)


def _json(payload: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


async def _add_fault(request: web.Request) -> web.Response:
    try:
        rule = FaultRule.from_json(orjson.loads(await request.read()))
    except (orjson.JSONDecodeError, FaultRuleError) as exc:
        return _json({"error": str(exc)}, status=400)
    request.app[STATE].add_fault(rule)
    return _json({"fault": rule.to_json()}, status=201)


async def _list_faults(request: web.Request) -> web.Response:
    return _json({"faults": [rule.to_json() for rule in request.app[STATE].faults]})


async def _clear_faults(request: web.Request) -> web.Response:
    request.app[STATE].clear_faults()
    return web.Response(status=204)


async def _list_requests(request: web.Request) -> web.Response:
    return _json({"requests": [record.to_json() for record in request.app[STATE].requests]})


async def _clear_requests(request: web.Request) -> web.Response:
    request.app[STATE].clear_requests()
    return web.Response(status=204)
