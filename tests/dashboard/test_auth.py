"""/ui over plain HTTP: no key, no data; the master key as a header, through the login
form or through the one-time ``?key=`` exchange; the key never comes back."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from kanjia.dashboard._auth import (
    COOKIE,
    cookie_value,
    make_session,
    session_valid,
)
from kanjia.metering import is_master_key as key_matches

from ._traffic import MASTER, Served, http

BEARER = {"Authorization": f"Bearer {MASTER}"}


def _cookie(headers: dict[str, str]) -> str:
    set_cookie = headers["set-cookie"]
    value = cookie_value(set_cookie.split(";", 1)[0])
    assert value
    return value


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-the-key"},
                                     {"Authorization": f"Bearer {MASTER}x"},
                                     {"Cookie": f"{COOKIE}=v1.99999999999.deadbeef"},
                                     {"Cookie": f"{COOKIE}={MASTER}"}])
def test_no_key_no_data(served: Served, headers: dict[str, str]) -> None:
    status, hdrs, body = http("GET", served.url + "/ui", headers=headers)
    assert status == 401
    page = body.decode()
    assert "name='key'" in page and "kanjia-data" not in page
    for leaked in ("deepseek", "qwen", "team-a", "fallback-chat", "¥"):
        assert leaked not in page
    assert hdrs["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in hdrs["content-security-policy"]
    status, _, body = http("GET", served.url + "/ui/data.json", headers=headers)
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"


def test_bearer_header(served: Served) -> None:
    status, hdrs, body = http("GET", served.url + "/ui", headers=BEARER)
    assert status == 200 and hdrs["content-type"].startswith("text/html")
    page = body.decode()
    assert "id='kanjia-data'" in page and MASTER not in page
    nonce = hdrs["content-security-policy"].split("'nonce-", 1)[1].split("'", 1)[0]
    assert page.count(f'nonce="{nonce}"') == 3  # the styles and both scripts, nothing else
    assert "<script src" not in page and "<link rel='stylesheet'" not in page
    status, _, body = http("GET", served.url + "/ui/data.json?currency=USD", headers=BEARER)
    data = json.loads(body)
    assert status == 200 and data["meta"]["currency"] == "USD" and data["meta"]["live"]
    assert MASTER not in body.decode()


def test_key_exchange_sets_a_cookie_and_drops_the_key(served: Served) -> None:
    status, hdrs, body = http("GET", served.url + f"/ui?currency=USD&key={MASTER}")
    assert status == 303 and hdrs["location"] == "/ui?currency=USD"
    assert MASTER not in hdrs["location"] and MASTER not in body.decode()
    flags = hdrs["set-cookie"].lower()
    assert "httponly" in flags and "samesite=strict" in flags and "path=/ui" in flags
    token = _cookie(hdrs)
    assert MASTER not in token
    status, _, body = http("GET", served.url + "/ui?currency=USD",
                           headers={"Cookie": f"{COOKIE}={token}"})
    assert status == 200 and "kanjia-data" in body.decode()
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    status, _, _ = http("GET", served.url + "/ui", headers={"Cookie": f"{COOKIE}={forged}"})
    assert status == 401


def test_wrong_key_is_not_echoed(served: Served) -> None:
    guess = "guess-" + "Z" * 20
    status, _, body = http("GET", served.url + f"/ui?key={guess}")
    assert status == 401 and guess not in body.decode()
    status, hdrs, body = http("POST", served.url + "/ui/login", form={"key": guess})
    assert status == 401 and guess not in body.decode() and "set-cookie" not in hdrs
    assert "not the admin key" in body.decode()


def test_login_form_and_logout(served: Served) -> None:
    status, hdrs, body = http("POST", served.url + "/ui/login", form={"key": MASTER})
    assert status == 303 and hdrs["location"] == "/ui" and MASTER not in body.decode()
    token = _cookie(hdrs)
    status, _, _ = http("GET", served.url + "/ui/data.json",
                        headers={"Cookie": f"{COOKIE}={token}"})
    assert status == 200
    status, hdrs, _ = http("POST", served.url + "/ui/logout")
    assert status == 303 and "max-age=0" in hdrs["set-cookie"].lower()


def test_bad_query_and_unknown_paths(served: Served) -> None:
    status, _, body = http("GET", served.url + "/ui/data.json?since=yesterday", headers=BEARER)
    assert status == 400 and "since" in json.loads(body)["error"]["message"]
    status, _, _ = http("GET", served.url + "/ui/data.json?currency=EUR", headers=BEARER)
    assert status == 400
    status, _, _ = http("GET", served.url + "/ui/data.json?since=2026-02-02&until=2026-01-01",
                        headers=BEARER)
    assert status == 400
    status, _, _ = http("GET", served.url + "/ui/nothing", headers=BEARER)
    assert status == 404
    status, _, _ = http("GET", served.url + "/uinothing", headers=BEARER)
    assert status == 404


def test_session_tokens() -> None:
    now = time.time()
    token = make_session("master", now=now, ttl_s=60)
    assert session_valid(token, "master", now=now + 30)
    assert not session_valid(token, "master", now=now + 61)          # expired
    assert not session_valid(token, "other-master", now=now)         # key rotated
    expires = token.split(".")[1]
    assert not session_valid(token.replace(expires, str(int(expires) + 3600)), "master",
                             now=now)                                  # extended by hand
    for junk in ("", "v1", "v1.x.y", "v2.1.2", "master", None):
        assert not session_valid(junk, "master", now=now)
    assert key_matches("master", "master") and not key_matches("maste", "master")
    assert not key_matches(None, "master") and not key_matches("", "master")
    assert cookie_value(f"a=1; {COOKIE}=tok; b=2") == "tok"
    assert cookie_value("a=1") is None and cookie_value('bad="') is None


def test_guess_counter_limits_each_client_alone() -> None:
    from kanjia.server._guesses import Guesses

    g = Guesses(per_client=3, max_clients=50)
    for _ in range(3):
        assert g.wait_s("a", now=100.0) == 0
        g.failed("a", now=100.0)
    assert g.wait_s("a", now=100.0) == pytest.approx(60.0)
    assert g.wait_s("b", now=100.0) == 0
    for i in range(200):  # wrong keys from many other addresses hold up none but them
        g.failed(f"10.0.{i // 250}.{i % 250}", now=101.0)
    assert g.wait_s("d", now=101.0) == 0
    assert len(g) <= 50  # the table is bounded
    assert g.wait_s("a", now=160.5) == 0  # the minute has passed


async def _call(dash: Any, served: Served, path: str, *, method: str = "GET",
                query: str = "", form: str = "", client: str = "203.0.113.7") -> int:
    scope = {"type": "http", "path": path, "method": method, "query_string": query.encode(),
             "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
             "client": (client, 5555), "scheme": "http"}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": form.encode(), "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await dash(served.app, scope, receive, send)
    return int(sent[0]["status"])


async def test_wrong_keys_past_the_limit_get_429_even_for_the_right_key(
        served: Served) -> None:
    from kanjia.dashboard import Dashboard
    from kanjia.errors import RateLimited
    from kanjia.server._guesses import Guesses

    dash = Dashboard(guesses=Guesses(per_client=3))
    for _ in range(3):
        assert await _call(dash, served, "/ui/login", method="POST", form="key=nope") == 401
    with pytest.raises(RateLimited) as info:
        await _call(dash, served, "/ui/login", method="POST", form=f"key={MASTER}")
    assert info.value.status == 429 and info.value.retry_after is not None
    with pytest.raises(RateLimited):
        await _call(dash, served, "/ui", query=f"key={MASTER}")
    # another address is not held up by this one's guesses
    assert await _call(dash, served, "/ui/login", method="POST", form=f"key={MASTER}",
                       client="198.51.100.9") == 303
