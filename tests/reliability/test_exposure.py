"""What the gateway shows to whom, and to how many guesses.

F14: /metrics needs the master key when one is set (``metrics_public`` opens it on
purpose); /healthz lists vendors only to the master key. F17: a deferred job is read only
with the key that queued it (or the admin key), and reading never creates the queue's
database. F15: wrong master keys are limited per client address only (a bounded table):
guesses from many addresses lock out nobody else, and /admin/ is limited too. F20: the
OpenAPI document accepts nothing the server refuses as malformed (``model: ""``), and a
known path answers an unknown method with 405, an Allow header and an OpenAI-style body.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from kanjia.batch import JobQueue
from kanjia.config import load_settings
from kanjia.server import KanjiaApp, ServerThread, build_app
from kanjia.server.model_ids import check_model_id
from kanjia.server.openapi import MODEL_PATTERN, OPENAPI
from kanjia.server.validate import parse_chat, parse_embeddings

from ._util import Gw, gateway, request

MASTER = "c0ffee42-9d8e-4f7a-b6c5-d4e3f2a1b0c9"
ADMIN = {"Authorization": f"Bearer {MASTER}"}
ENV = {"KANJIA_MASTER_KEY": MASTER}


# -- F14: /metrics and /healthz --------------------------------------------------------
def test_metrics_need_the_master_key_when_one_is_set(sb: str) -> None:
    with gateway(sb, env=ENV) as g:
        for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}):
            r = request(g.url, "GET", "/metrics", headers=headers)
            assert r.status == 401 and r.error["type"] == "authentication_error"
            assert b"kanjia_" not in r.body
        r = request(g.url, "GET", "/metrics", headers=ADMIN)
        assert r.status == 200 and b"kanjia_requests" in r.body
    for name in ("metrics_public", "public_metrics"):  # made public on purpose
        with gateway(sb, env=ENV, server={name: True}) as g:
            assert request(g.url, "GET", "/metrics").status == 200, name
    with gateway(sb) as g:  # no master key: nothing to ask for
        assert request(g.url, "GET", "/metrics").status == 200


def test_healthz_lists_vendors_only_to_the_master_key(sb: str) -> None:
    for env in (ENV, {}):
        with gateway(sb, env=env) as g:
            for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}):
                r = request(g.url, "GET", "/healthz", headers=headers)
                assert r.status == 200 and r.json() == {"status": "ok"}
            if env:
                full = request(g.url, "GET", "/healthz", headers=ADMIN).json()
                assert full["status"] == "ok" and "deepseek" in full["vendors"]


# -- F17: deferred jobs -----------------------------------------------------------------
@pytest.fixture()
def jobs(sb: str, tmp_path: Path) -> Iterator[tuple[Gw, Path]]:
    queue = tmp_path / "batch.db"
    with gateway(sb, env=ENV, batch_queue=str(queue)) as g:
        yield g, queue


def _owner(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _add(queue: Path, owner: str | None) -> str:
    q = JobQueue(queue)
    try:
        return q.add(batch_id="http", model="deepseek/deepseek-chat",
                     body={"model": "deepseek/deepseek-chat", "messages": []},
                     send_at=4e9, route=None, target="deepseek/deepseek-chat", cost_now="1",
                     cost_then="0.5", currency="CNY", owner=owner)
    finally:
        q.close()


def test_reading_a_job_never_creates_the_queue(jobs: tuple[Gw, Path]) -> None:
    g, queue = jobs
    for headers in ({}, ADMIN):
        r = request(g.url, "GET", "/v1/kanjia/jobs/job-0123456789abcdef0123", headers=headers)
        assert r.status == 404 and r.error["code"] == "model_not_found"
    assert not queue.exists()
    assert not list(queue.parent.glob("*.db*"))


def test_a_job_answers_only_the_key_that_queued_it_or_the_admin(jobs: tuple[Gw, Path]) -> None:
    g, queue = jobs
    mine = _add(queue, _owner("sk-client-a-0123456789"))
    anonymous = _add(queue, None)
    path = f"/v1/kanjia/jobs/{mine}"
    ok = request(g.url, "GET", path, headers={"Authorization": "Bearer sk-client-a-0123456789"})
    assert ok.status == 200 and ok.json()["id"] == mine
    assert request(g.url, "GET", path, headers=ADMIN).status == 200
    for headers in ({}, {"Authorization": "Bearer sk-client-b-0123456789"},
                    {"Authorization": "Bearer sk-client-a-012345678"}):
        r = request(g.url, "GET", path, headers=headers)
        assert r.status == 404 and b"deepseek" not in r.body, headers  # existence not told
    # queued without a key on this open gateway: readable without one, as it was made
    assert request(g.url, "GET", f"/v1/kanjia/jobs/{anonymous}").status == 200
    r = request(g.url, "PUT", path, b"{}", headers=ADMIN)
    assert r.status == 405 and r.headers["allow"] == "GET"


def test_a_keyless_job_is_not_readable_once_keys_are_required(sb: str, tmp_path: Path) -> None:
    queue = tmp_path / "batch.db"
    jid = _add(queue, None)
    with gateway(sb, env=ENV, batch_queue=str(queue), server={"require_keys": True}) as g:
        assert request(g.url, "GET", f"/v1/kanjia/jobs/{jid}").status == 404
        assert request(g.url, "GET", f"/v1/kanjia/jobs/{jid}", headers=ADMIN).status == 200


def test_a_deferred_request_records_its_key_as_owner(jobs: tuple[Gw, Path]) -> None:
    g, queue = jobs
    # a weekday peak hour of DeepSeek's current prices (09:00-12:00 Beijing time), so the
    # request is deferred whatever the hour the test runs at
    peak = datetime(2026, 11, 20, 2, 0, tzinfo=UTC).timestamp()
    g.app.clock = lambda: peak
    key = {"Authorization": "Bearer sk-client-a-0123456789"}
    body = {"model": "deepseek/deepseek-chat", "max_tokens": 20,
            "messages": [{"role": "user", "content": "nightly summary"}]}
    r = request(g.url, "POST", "/v1/chat/completions", body,
                headers={**key, "x-kanjia-defer": "until-offpeak"})
    assert r.status == 202, r.body
    poll = r.json()["poll"]
    assert request(g.url, "GET", poll, headers=key).status == 200
    assert request(g.url, "GET", poll).status == 404
    assert JobQueue(queue).owner(r.json()["id"]) == _owner("sk-client-a-0123456789")


# -- F15: guess limits per address --------------------------------------------------------
@pytest.fixture()
def metered(sb: str, tmp_path: Path) -> Iterator[tuple[KanjiaApp, asyncio.AbstractEventLoop]]:
    s = load_settings(None, sandbox_url=sb, database=str(tmp_path / "ledger.db"),
                      ledger_writer="thread")
    app = build_app(s, env=ENV)
    loops: list[asyncio.AbstractEventLoop] = []

    async def keep_loop() -> None:
        loops.append(asyncio.get_running_loop())

    app.on_startup.append(keep_loop)
    with ServerThread(app):
        yield app, loops[0]


def _call(app: KanjiaApp, loop: asyncio.AbstractEventLoop, method: str, path: str,
          client: str, key: str | None = None, form: str = "") -> int:
    """One request straight into the ASGI app, from ``client`` (an address over TCP here
    would always be 127.0.0.1)."""
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    if key is not None:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    scope = {"type": "http", "method": method, "path": path, "query_string": b"",
             "headers": headers, "client": (client, 40000), "scheme": "http"}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": form.encode(), "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run_coroutine_threadsafe(app(scope, receive, send), loop).result(10)
    return int(sent[0]["status"])


def test_wrong_keys_from_many_addresses_lock_out_nobody_else(
        metered: tuple[KanjiaApp, asyncio.AbstractEventLoop]) -> None:
    app, loop = metered
    for i in range(300):  # 300 wrong keys from 150 addresses, on both doors
        addr = f"203.0.113.{i % 150}"
        assert _call(app, loop, "POST", "/ui/login", addr, form="key=guess") == 401
        assert _call(app, loop, "GET", "/admin/keys", addr, key=f"guess-{i}") == 401
    assert _call(app, loop, "GET", "/admin/keys", "198.51.100.7", key=MASTER) == 200
    assert _call(app, loop, "POST", "/ui/login", "198.51.100.7", form=f"key={MASTER}") == 303
    assert _call(app, loop, "GET", "/status", "198.51.100.8", key=MASTER) == 200


def test_the_admin_api_limits_guesses_per_address(
        metered: tuple[KanjiaApp, asyncio.AbstractEventLoop]) -> None:
    app, loop = metered
    limit = app.guesses.per_client
    for i in range(limit):
        assert _call(app, loop, "GET", "/admin/keys", "192.0.2.10", key=f"guess-{i}") == 401
    # held: even the right key, so a 429 does not tell a guesser it found the key
    assert _call(app, loop, "GET", "/admin/keys", "192.0.2.10", key=MASTER) == 429
    assert _call(app, loop, "GET", "/status", "192.0.2.10", key=MASTER) == 429
    assert _call(app, loop, "POST", "/ui/login", "192.0.2.10", form=f"key={MASTER}") == 429
    # the right key from another address still works
    assert _call(app, loop, "GET", "/admin/keys", "192.0.2.11", key=MASTER) == 200
    # a request without any key is no guess
    assert _call(app, loop, "GET", "/admin/keys", "192.0.2.12") == 401
    assert app.guesses.wait_s("192.0.2.12") == 0


def test_the_guess_table_is_bounded(
        metered: tuple[KanjiaApp, asyncio.AbstractEventLoop]) -> None:
    app, loop = metered
    app.guesses.max_clients = 500
    for i in range(2000):
        _call(app, loop, "GET", "/status", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
              key="wrong")
    assert len(app.guesses) <= 500


# -- F20: the OpenAPI document and 405s --------------------------------------------------------
def _body_schema(path: str) -> dict[str, Any]:
    op = OPENAPI["paths"][path]["post"]
    return dict(op["requestBody"]["content"]["application/json"]["schema"])


def test_the_openapi_model_field_refuses_what_the_server_refuses() -> None:
    import re

    for path in ("/v1/chat/completions", "/v1/embeddings"):
        model = _body_schema(path)["properties"]["model"]
        assert model["minLength"] == 1 and model["maxLength"] == 256
    pattern = re.compile(MODEL_PATTERN)
    for bad in ("", "gemini/../cachedContents?", "a b", "a#b", "a%2Fb", "a\\b", "a\x00b"):
        assert not (1 <= len(bad) <= 256 and pattern.search(bad)), bad
    for good in ("deepseek/deepseek-chat", "openai/gpt-4o:online", "模型-7b", "a.b"):
        assert pattern.search(good) and check_model_id(good) == good


def _messages(raw: bytes) -> dict[str, Any]:
    from kanjia.ingress import messages_to_chat
    from kanjia.server._messages_http import checked
    from kanjia.server.validate import parse_json

    return checked(messages_to_chat(parse_json(raw)).chat)


def _count_tokens(raw: bytes) -> dict[str, Any]:
    from kanjia.ingress import count_input
    from kanjia.server._messages_http import checked
    from kanjia.server.validate import parse_json

    return checked(count_input(parse_json(raw)))


def _responses(raw: bytes) -> dict[str, Any]:
    from kanjia.ingress import responses_to_chat
    from kanjia.server._messages_http import checked
    from kanjia.server.validate import parse_json

    return checked(responses_to_chat(parse_json(raw), []).chat)


@pytest.mark.parametrize(("path", "parse"), [("/v1/chat/completions", parse_chat),
                                             ("/v1/embeddings", parse_embeddings),
                                             ("/v1/messages", _messages),
                                             ("/v1/messages/count_tokens", _count_tokens),
                                             ("/v1/responses", _responses)])
def test_what_the_openapi_document_allows_the_server_parses(path: str, parse: Any) -> None:
    """Schema-valid bodies (generated from the document itself) pass the server's own
    validation: no ``model: ""``, empty input arrays or nameless tools slip through."""
    import schemathesis

    strategy = schemathesis.openapi.from_dict(OPENAPI)[path]["POST"].as_strategy()

    @settings(max_examples=25, deadline=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def accepted(case: Any) -> None:
        body = parse(json.dumps(case.body).encode())
        check_model_id(body["model"])

    accepted()


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("POST", "/v1/models", "GET"), ("DELETE", "/healthz", "GET"), ("PUT", "/metrics", "GET"),
    ("GET", "/v1/chat/completions", "POST"), ("PATCH", "/v1/embeddings", "POST"),
    ("POST", "/openapi.json", "GET"), ("DELETE", "/v1/kanjia/jobs/job-1", "GET")])
def test_a_known_path_answers_an_unknown_method_with_405(gw: Gw, method: str, path: str,
                                                          allow: str) -> None:
    r = request(gw.url, method, path, b"{}" if method != "GET" else None)
    assert r.status == 405, (r.status, r.body[:200])
    assert r.headers["allow"] == allow
    assert r.error["type"] == "invalid_request_error" and r.error["code"] == "method_not_allowed"
    assert request(gw.url, "GET", "/no/such/path").status == 404


def test_admin_paths_answer_405_too(
        metered: tuple[KanjiaApp, asyncio.AbstractEventLoop]) -> None:
    app, loop = metered
    assert _call(app, loop, "DELETE", "/admin/usage", "192.0.2.30", key=MASTER) == 405
    assert _call(app, loop, "PATCH", "/admin/keys", "192.0.2.30", key=MASTER) == 405
    assert _call(app, loop, "GET", "/admin/nothing", "192.0.2.30", key=MASTER) == 404
    assert _call(app, loop, "DELETE", "/ui/login", "192.0.2.30") == 405
    assert _call(app, loop, "PUT", "/ui", "192.0.2.30") == 405
