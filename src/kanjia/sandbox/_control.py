"""The control API tests and benchmarks use to steer a running sandbox:

- ``POST /_sandbox/faults`` ``{"vendor", "model"?, "fault", "count"?, "probability"?}``
- ``GET /_sandbox/faults`` lists the rules, ``DELETE /_sandbox/faults`` clears them
- ``GET /_sandbox/stats``: requests per vendor and model, faults applied
- ``POST /_sandbox/reset``: rules, stats, prompt cache and ids back to start
- ``GET /_sandbox/vendors``: the vendors served and their base paths
- ``GET /_sandbox/cache``: the last requests' explicit cache breakpoints (``cache_control``
  path and ttl) and cache usage, by response id
- ``GET /_sandbox/requests``: method and raw path of the latest requests received
  (``DELETE`` forgets them)
"""

from __future__ import annotations

from aiohttp import web

from kanjia.sandbox._faults import parse_rule
from kanjia.sandbox._state import SandboxState
from kanjia.sandbox._wire import json_response, read_json

__all__ = ["add_control_routes"]


def add_control_routes(app: web.Application, state: SandboxState, vendors: tuple[str, ...]) -> None:
    async def add_fault(request: web.Request) -> web.Response:
        try:
            rule = parse_rule(await read_json(request))
        except ValueError as exc:
            return json_response({"error": str(exc)}, status=400)
        if rule.vendor != "*" and rule.vendor not in vendors:
            return json_response({"error": f"unknown vendor {rule.vendor!r}"}, status=400)
        state.faults.add(rule)
        return json_response({"rule": rule.as_json(), "rules": len(state.faults.rules)})

    async def list_faults(request: web.Request) -> web.Response:
        return json_response({"rules": [r.as_json() for r in state.faults.rules]})

    async def clear_faults(request: web.Request) -> web.Response:
        return json_response({"cleared": state.faults.clear()})

    async def stats(request: web.Request) -> web.Response:
        return json_response(state.stats.as_json())

    async def reset(request: web.Request) -> web.Response:
        state.reset()
        return json_response({"ok": True})

    async def list_vendors(request: web.Request) -> web.Response:
        return json_response({"vendors": [{"id": v, "path": f"/{v}"} for v in vendors]})

    app.router.add_post("/_sandbox/faults", add_fault)
    app.router.add_get("/_sandbox/faults", list_faults)
    app.router.add_delete("/_sandbox/faults", clear_faults)
    app.router.add_get("/_sandbox/stats", stats)
    app.router.add_post("/_sandbox/reset", reset)
    app.router.add_get("/_sandbox/vendors", list_vendors)

    async def cache_log(request: web.Request) -> web.Response:
        return json_response({"requests": state.cache.recent()})

    app.router.add_get("/_sandbox/cache", cache_log)

    async def received(request: web.Request) -> web.Response:
        return json_response({"requests": list(state.received)})

    async def forget_received(request: web.Request) -> web.Response:
        state.received.clear()
        return json_response({"ok": True})

    app.router.add_get("/_sandbox/requests", received)
    app.router.add_delete("/_sandbox/requests", forget_received)
