"""``/ui``: the dashboard served by the gateway, for the master key only.

    GET  /ui              the dashboard (``?since=DATE&until=DATE&currency=USD``);
                          without a session: 401 and the sign-in form, no data
    GET  /ui?key=KEY      one-time exchange: a valid key sets the session cookie and
                          redirects to the same page without the key in the URL
    GET  /ui/data.json    the same data as JSON
    POST /ui/login        form field ``key``: sets the session cookie
    POST /ui/logout       clears it

A request is admitted with ``Authorization: Bearer <master key>`` (or the other key
headers the gateway accepts) or with the session cookie (``_auth``). Keys are only
ever compared in constant time and never written back into a response.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from kanjia.catalog import Catalog
from kanjia.dashboard._auth import (
    clear_cookie,
    cookie_value,
    make_session,
    session_cookie,
    session_valid,
)
from kanjia.dashboard._data import collect_dashboard
from kanjia.dashboard._health import live_breakers
from kanjia.dashboard._page import Assets, render_login, render_page
from kanjia.dashboard._period import Period
from kanjia.errors import AuthFailed, BadRequest, MethodNotAllowed, ModelNotFound, RateLimited
from kanjia.ledger.store import open_database
from kanjia.metering import is_master_key
from kanjia.server import _asgi
from kanjia.server._asgi import Receive, Scope, Send
from kanjia.server._guesses import Guesses
from kanjia.server.validate import query_date

if TYPE_CHECKING:
    from kanjia.server.app import KanjiaApp

__all__ = ["Dashboard"]

_FORM_LIMIT = 4096
_METHODS = {"/ui": ("GET", "HEAD"), "/ui/data.json": ("GET",), "/ui/login": ("POST",),
            "/ui/logout": ("POST",)}
_CURRENCIES = ("CNY", "USD")
#: the longest window one dashboard shows (ten years of days)
MAX_DAYS = 3660


def _csp(nonce: str) -> str:
    return (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "img-src data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
            "base-uri 'none'")


def _html_headers(nonce: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"content-security-policy": _csp(nonce), "cache-control": "no-store",
            "x-content-type-options": "nosniff", "x-frame-options": "DENY",
            "referrer-policy": "no-referrer", **(extra or {})}


def _query(scope: Scope) -> list[tuple[str, str]]:
    return parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1"))


def _view(app: KanjiaApp, query: dict[str, str]) -> tuple[Period, str]:
    currency = query.get("currency", app.services.settings.server.reporting_currency).upper()
    if currency not in _CURRENCIES:
        raise BadRequest("currency must be CNY or USD")
    period = Period.recent(query_date(query.get("since"), "since"),
                           query_date(query.get("until"), "until"))
    if period.until is not None and period.until <= period.since:
        raise BadRequest("until must be after since")
    return _clamp(period), currency


def _clamp(period: Period, today: date | None = None) -> Period:
    """At most ``MAX_DAYS`` days, ending no later than tomorrow: the ledger holds nothing
    later, and every day of the window is a point on the page's time axis."""
    today = today or datetime.now(UTC).date()
    until = min(period.until, today + timedelta(days=1)) if period.until else None
    since = max(period.since, (until or today + timedelta(days=1)) - timedelta(days=MAX_DAYS))
    return Period(min(since, until - timedelta(days=1)) if until else since, until)


async def _redirect(send: Send, location: str, cookie: str | None = None) -> None:
    headers = {"location": location, "cache-control": "no-store",
               "referrer-policy": "no-referrer"}
    if cookie is not None:
        headers["set-cookie"] = cookie
    await _asgi.send_bytes(send, 303, b"", headers, b"text/plain; charset=utf-8")


class Dashboard:
    """The ``/ui`` handler; mount it with ``app.mount("/ui", Dashboard())``."""

    def __init__(self, assets: Assets | None = None, guesses: Guesses | None = None) -> None:
        self.assets = assets or Assets.load()
        #: None: the app's own counter, shared with /admin/ (``KanjiaApp.guesses``)
        self.guesses = guesses

    def _offer(self, app: KanjiaApp, scope: Scope, candidate: str | None, master: str
               ) -> bool:
        """Whether ``candidate`` is the master key; 429 while this client address has
        offered too many wrong ones this minute."""
        guesses = self.guesses if self.guesses is not None else app.guesses
        client = (scope.get("client") or ("?", 0))[0]
        wait = guesses.wait_s(client)
        if wait > 0:
            raise RateLimited("too many wrong admin keys: wait before signing in again",
                              retry_after=wait)
        if is_master_key(candidate, master):
            return True
        guesses.failed(client)
        return False

    async def __call__(self, app: KanjiaApp, scope: Scope, receive: Receive, send: Send
                       ) -> None:
        path, method = scope["path"].rstrip("/") or "/", scope["method"]
        if path == "/ui" and method in ("GET", "HEAD"):
            await self._page(app, scope, send)
        elif path == "/ui/data.json" and method == "GET":
            if not self._admitted(app, scope):
                raise AuthFailed("the dashboard requires the admin key")
            period, currency = _view(app, dict(_query(scope)))
            await _asgi.send_json(send, 200, await self._data(app, period, currency),
                                  {"cache-control": "no-store"})
        elif path == "/ui/login" and method == "POST":
            await self._login(app, scope, receive, send)
        elif path == "/ui/logout" and method == "POST":
            await _redirect(send, "/ui", clear_cookie(_secure(scope)))
        elif path in _METHODS:
            raise MethodNotAllowed(f"{path} does not answer {method}", allow=_METHODS[path])
        else:
            raise ModelNotFound(f"no such endpoint: {method} {scope['path']}")

    # -- who is asking -----------------------------------------------------------------------
    @staticmethod
    def _admitted(app: KanjiaApp, scope: Scope) -> bool:
        master = app.services.master_key
        if not master:
            return False
        if app.admitted(scope):  # a wrong key counts against the caller's address
            return True
        return session_valid(cookie_value(_asgi.header(scope, b"cookie")), master)

    async def _login_page(self, app: KanjiaApp, send: Send, message: str | None) -> None:
        nonce = secrets.token_urlsafe(16)
        enabled = bool(app.services.master_key)
        if not enabled:
            message = ("The dashboard is off: set the master key "
                       f"(${app.services.settings.server.master_key_env}).")
        body = render_login(self.assets, nonce=nonce, message=message, enabled=enabled)
        await _asgi.send_bytes(send, 401, body.encode(), _html_headers(
            nonce, {"www-authenticate": 'Bearer realm="kanjia"'}), b"text/html; charset=utf-8")

    async def _login(self, app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
        master = app.services.master_key
        raw = await _asgi.read_body(scope, receive, _FORM_LIMIT)
        form = dict(parse_qsl(raw.decode("utf-8", "replace")))
        if not master or not self._offer(app, scope, form.get("key"), master):
            await self._login_page(app, send, "That is not the admin key.")
            return
        await _redirect(send, "/ui", session_cookie(make_session(master), _secure(scope)))

    # -- the page ------------------------------------------------------------------------------
    async def _page(self, app: KanjiaApp, scope: Scope, send: Send) -> None:
        master = app.services.master_key
        query = _query(scope)
        offered = next((v for k, v in query if k == "key"), None)
        if offered is not None:
            if not master or not self._offer(app, scope, offered, master):
                await self._login_page(app, send, "That is not the admin key.")
                return
            rest = urlencode([(k, v) for k, v in query if k != "key"])
            await _redirect(send, "/ui" + (f"?{rest}" if rest else ""),
                            session_cookie(make_session(master), _secure(scope)))
            return
        if not self._admitted(app, scope):
            await self._login_page(app, send, None)
            return
        period, currency = _view(app, dict(query))
        data = await self._data(app, period, currency)
        nonce = secrets.token_urlsafe(16)
        body = render_page(data, self.assets, nonce=nonce).encode()
        await _asgi.send_bytes(send, 200, b"" if scope["method"] == "HEAD" else body,
                               _html_headers(nonce), b"text/html; charset=utf-8")

    @staticmethod
    async def _data(app: KanjiaApp, period: Period, currency: str) -> dict[str, Any]:
        s = app.services
        metering = s.metering
        if metering is None:
            raise ModelNotFound("the dashboard needs a ledger database (kanjia serve --db ...)")
        with contextlib.suppress(RuntimeError):  # the database is away: show what it has
            await metering.ledger.flush()
        live = live_breakers(s.directory, s.health)
        url = s.settings.database
        try:
            if not url or url.removeprefix("sqlite:///") in ("", ":memory:"):
                # only this connection sees an in-memory database
                return await collect_dashboard(metering.db, s.catalog, period=period,
                                               currency=currency, live=live)
            # reading and aggregating a window's rows takes seconds on a big ledger: in a
            # thread of its own, with a connection of its own, off the event loop
            return await asyncio.to_thread(asyncio.run, _collect(url, s.catalog, period,
                                                                 currency, live))
        except ValueError as exc:  # a window or currency the reports refuse
            raise BadRequest(str(exc)) from None


async def _collect(url: str, catalog: Catalog, period: Period, currency: str,
                   live: dict[str, Any]) -> dict[str, Any]:
    db = open_database(url)
    await db.connect()
    try:
        return await collect_dashboard(db, catalog, period=period, currency=currency,
                                       live=live)
    finally:
        await db.close()


def _secure(scope: Scope) -> bool:
    return scope.get("scheme") == "https"
