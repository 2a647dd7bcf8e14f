"""``/admin/``: keys, tenants, budgets and usage over HTTP, for the master key only.

    GET    /admin/keys                 list (``?all=1``: with revoked ones)
    POST   /admin/keys                 {name, tenant?, models?, rpm?, tpm?, budget?,
                                        response_cache?}
                                       → 201 with the key itself (shown once)
    GET    /admin/keys/{id|name}       one key, with its budgets' spend
    DELETE /admin/keys/{id|name}       revoke (also POST /admin/keys/{id}/revoke)
    GET    /admin/tenants              list
    PUT    /admin/tenants/{name}       {markup?, price_list?, budget?} (create or update)
    GET    /admin/budgets              every budget, with its current window's spend
    POST   /admin/budgets              {scope: key|tenant, subject, budget: "100CNY/month"}
    DELETE /admin/budgets/{id}
    GET    /admin/usage                ?since=DATE&until=DATE&by=model&currency=CNY

``budget`` is one spec or a list of them (``AMOUNT CURRENCY/day|month|total``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from kanjia.errors import (
    AuthFailed,
    BadRequest,
    ConfigError,
    KanjiaError,
    MethodNotAllowed,
    ModelNotFound,
)
from kanjia.metering import (
    GROUPS,
    BudgetSpec,
    Metering,
    NotFound,
    PriceList,
    parse_budget,
    usage_report,
)
from kanjia.server import _asgi
from kanjia.server._asgi import Receive, Scope, Send
from kanjia.server.validate import query_date

if TYPE_CHECKING:
    from kanjia.server.app import KanjiaApp

__all__ = ["handle_admin"]

Params = dict[str, str]
Route = Callable[["_Ctx"], Awaitable[tuple[int, Any]]]


class _Ctx:
    def __init__(self, app: KanjiaApp, metering: Metering, body: dict[str, Any],
                 query: Params, match: re.Match[str]) -> None:
        self.app = app
        self.m = metering
        self.body = body
        self.query = query
        self.match = match


def _specs(ctx: _Ctx, value: Any) -> list[BudgetSpec]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    specs = []
    for item in items:
        if not isinstance(item, str):
            raise BadRequest("budget must be a string like '100CNY/month' or a list of them")
        spec = parse_budget(item)
        ctx.m.gate.fx.convert(Decimal(1), spec.currency, "CNY", date.today())
        specs.append(spec)
    return specs


def _int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise BadRequest(f"{name} must be an integer")
    return value


async def _list_keys(ctx: _Ctx) -> tuple[int, Any]:
    keys = await ctx.m.gate.registry.keys(include_revoked=ctx.query.get("all") in ("1", "true"))
    return 200, {"object": "list", "data": [k.public() for k in keys]}


async def _create_key(ctx: _Ctx) -> tuple[int, Any]:
    b = ctx.body
    name, tenant, models = b.get("name"), b.get("tenant"), b.get("models")
    if not isinstance(name, str):
        raise BadRequest("name is required")
    if tenant is not None and not isinstance(tenant, str):
        raise BadRequest("tenant must be a string")
    if models is not None and not (isinstance(models, list)
                                   and all(isinstance(x, str) for x in models)):
        raise BadRequest("models must be a list of model names or patterns")
    specs = _specs(ctx, b.get("budget"))
    cache = b.get("response_cache", False)
    if not isinstance(cache, bool):
        raise BadRequest("response_cache must be a boolean")
    secret, info = await ctx.m.gate.registry.create_key(
        name, tenant=tenant, models=models, rpm=_int(b, "rpm"), tpm=_int(b, "tpm"),
        budgets=specs, response_cache=cache)
    await ctx.m.gate.refresh()
    return 201, {"key": secret, **info.public(), "budgets": [str(s) for s in specs]}


async def _key_budgets(ctx: _Ctx, key_id: str, tenant: str | None) -> list[dict[str, Any]]:
    budgets = [b for b in await ctx.m.gate.registry.budgets()
               if (b.scope, b.subject) in (("key", key_id), ("tenant", tenant))]
    return await ctx.m.gate.budget_status(budgets)


async def _get_key(ctx: _Ctx) -> tuple[int, Any]:
    info = await ctx.m.gate.registry.find_key(ctx.match["id"])
    return 200, {**info.public(), "budgets": await _key_budgets(ctx, info.id, info.tenant)}


async def _revoke_key(ctx: _Ctx) -> tuple[int, Any]:
    info = await ctx.m.gate.registry.revoke_key(ctx.match["id"])
    await ctx.m.gate.refresh()
    return 200, info.public()


async def _list_tenants(ctx: _Ctx) -> tuple[int, Any]:
    tenants = await ctx.m.gate.registry.tenants()
    return 200, {"object": "list", "data": [
        {"name": t.name, "markup": str(t.markup) if t.markup is not None else None,
         "price_list": t.price_list.to_json() if t.price_list else None} for t in tenants]}


async def _put_tenant(ctx: _Ctx) -> tuple[int, Any]:
    name, b = ctx.match["name"], ctx.body
    try:
        markup = Decimal(str(b["markup"])) if b.get("markup") is not None else None
    except InvalidOperation:
        raise BadRequest("markup must be a number, e.g. 1.2") from None
    prices = PriceList.parse(b["price_list"]) if b.get("price_list") is not None else None
    reg = ctx.m.gate.registry
    tenant = await reg.set_tenant(name, markup=markup, price_list=prices,
                                  clear=bool(b.get("replace")))
    for spec in _specs(ctx, b.get("budget")):
        await reg.set_budget("tenant", name, spec)
    await ctx.m.gate.refresh()
    return 200, {"name": tenant.name,
                 "markup": str(tenant.markup) if tenant.markup is not None else None,
                 "price_list": tenant.price_list.to_json() if tenant.price_list else None}


async def _list_budgets(ctx: _Ctx) -> tuple[int, Any]:
    budgets = await ctx.m.gate.registry.budgets()
    return 200, {"object": "list", "data": await ctx.m.gate.budget_status(budgets)}


async def _create_budget(ctx: _Ctx) -> tuple[int, Any]:
    b = ctx.body
    scope, subject = b.get("scope"), b.get("subject")
    if scope not in ("key", "tenant") or not isinstance(subject, str):
        raise BadRequest("scope must be 'key' or 'tenant' and subject a key id/name or tenant")
    if "budget" in b:
        specs = _specs(ctx, b["budget"])
    else:
        specs = _specs(ctx, f"{b.get('amount')}{b.get('currency')}/{b.get('period', 'month')}")
    out = [await ctx.m.gate.registry.set_budget(scope, subject, spec) for spec in specs]
    await ctx.m.gate.refresh()
    return 201, {"object": "list", "data": await ctx.m.gate.budget_status(out)}


async def _delete_budget(ctx: _Ctx) -> tuple[int, Any]:
    if not await ctx.m.gate.registry.delete_budget(ctx.match["id"]):
        raise NotFound(f"no budget {ctx.match['id']!r}")
    await ctx.m.gate.refresh()
    return 200, {"id": ctx.match["id"], "deleted": True}


async def _usage(ctx: _Ctx) -> tuple[int, Any]:
    q = ctx.query
    by = q.get("by", "model")
    if by not in GROUPS:
        raise BadRequest(f"by must be one of {', '.join(GROUPS)}")
    currency = q.get("currency", ctx.app.services.settings.server.reporting_currency).upper()
    since = query_date(q.get("since"), "since")
    if since is None and "since" not in q:
        now = datetime.now(UTC)
        since = date(now.year, now.month, 1)
    report = await usage_report(ctx.m.db, ctx.m.gate.fx, since=since,
                                until=query_date(q.get("until"), "until"), by=by, currency=currency)
    return 200, report


_ROUTES: list[tuple[str, re.Pattern[str], Route]] = [
    ("GET", re.compile(r"/admin/keys/?"), _list_keys),
    ("POST", re.compile(r"/admin/keys/?"), _create_key),
    ("GET", re.compile(r"/admin/keys/(?P<id>[^/]+)"), _get_key),
    ("DELETE", re.compile(r"/admin/keys/(?P<id>[^/]+)"), _revoke_key),
    ("POST", re.compile(r"/admin/keys/(?P<id>[^/]+)/revoke"), _revoke_key),
    ("GET", re.compile(r"/admin/tenants/?"), _list_tenants),
    ("PUT", re.compile(r"/admin/tenants/(?P<name>[^/]+)"), _put_tenant),
    ("POST", re.compile(r"/admin/tenants/(?P<name>[^/]+)"), _put_tenant),
    ("GET", re.compile(r"/admin/budgets/?"), _list_budgets),
    ("POST", re.compile(r"/admin/budgets/?"), _create_budget),
    ("DELETE", re.compile(r"/admin/budgets/(?P<id>[^/]+)"), _delete_budget),
    ("GET", re.compile(r"/admin/usage/?"), _usage),
]


def _find(method: str, path: str) -> tuple[Route, re.Match[str]]:
    allow: list[str] = []
    for verb, pattern, route in _ROUTES:
        match = pattern.fullmatch(path)
        if match is not None:
            if verb == method:
                return route, match
            allow.append(verb)
    if allow:
        raise MethodNotAllowed(f"{path} does not answer {method}", allow=allow)
    raise ModelNotFound(f"no such admin endpoint: {method} {path}")


async def handle_admin(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    if not app.services.master_key:
        raise AuthFailed("the admin API is off: set the master key "
                         f"(${app.services.settings.server.master_key_env})")
    if not app.admitted(scope):  # wrong keys count against the caller's address
        raise AuthFailed("the admin API requires the master key")
    metering = app.services.metering
    if metering is None:
        raise ModelNotFound("the admin API needs a ledger database (kanjia serve --db ...)")
    path, method = scope["path"], scope["method"]
    route, match = _find(method, path)
    body: dict[str, Any] = {}
    if method in ("POST", "PUT"):
        raw = await _asgi.read_body(scope, receive, 1 << 20)
        try:
            parsed = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            raise BadRequest("the body must be JSON") from None
        if not isinstance(parsed, dict):
            raise BadRequest("the body must be a JSON object")
        body = parsed
    query = dict(parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1")))
    try:
        status, payload = await route(_Ctx(app, metering, body, query, match))
    except NotFound as exc:
        await _asgi.send_json(send, 404, {"error": {"message": str(exc.args[0]),
                                                    "type": "invalid_request_error",
                                                    "code": "not_found", "param": None}})
        return
    except (ConfigError, ValueError) as exc:
        message = exc.message if isinstance(exc, KanjiaError) else str(exc)
        raise BadRequest(message) from None
    await _asgi.send_json(send, status, payload)
