"""Auth and secrets: no endpoint answers without the right key where one is required, keys
are compared in constant time, and no API key (the vendor's, the master key, a client's,
a virtual key) appears in logs, error bodies, headers, /metrics, /v1/models, /status, the
call records or the ledger's files."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanjia.sandbox import SandboxThread

from ._util import (
    FALLBACK_ROUTE,
    Gw,
    chat,
    gateway,
    request,
    sse,
    stop_process,
    wait_healthy,
)
from .test_memory import _free_port

VENDOR_KEY = "sandbox-key"  # what the sandbox deployments authenticate with
MASTER = "kj-master-7f3c9a1e5b2d4c6a8e0f"
CLIENT = "sk-client-5e8d2a7c4b1f9e3d6a0c"
FAULTS = ["rate_limit", "server_error", "overloaded", "balance", "auth", "timeout", "reset",
          "malformed", "context_too_long", "content_filter"]


def _secrets(*extra: str) -> list[str]:
    return [VENDOR_KEY, MASTER, CLIENT, *extra]


def _assert_clean(where: str, text: str | bytes, secrets: list[str]) -> None:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    for s in secrets:
        assert s.encode() not in data, f"{s!r} leaked into {where}"
    assert b"Bearer " not in data and b"bearer " not in data, f"an Authorization value in {where}"


@pytest.fixture()
def captured_logs() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.DEBUG)
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def _log_text(records: list[logging.LogRecord]) -> str:
    fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(fmt.format(r) for r in records)


# -- auth ----------------------------------------------------------------------------------
@pytest.fixture()
def locked(sb: str) -> Iterator[Gw]:
    with gateway(sb, routes={"fb": FALLBACK_ROUTE}, env={"KANJIA_MASTER_KEY": MASTER},
                 server={"require_keys": True, "metrics_public": False}) as g:
        yield g


CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
EMB = {"model": "openai/text-embedding-3-small", "input": "hi"}
GUARDED = [("POST", "/v1/chat/completions", CHAT), ("POST", "/chat/completions", CHAT),
           ("POST", "/v1/embeddings", EMB), ("GET", "/metrics", None), ("GET", "/status", None)]


@pytest.mark.parametrize(("method", "path", "body"), GUARDED)
@pytest.mark.parametrize("auth", [None, "Bearer wrong-key-123456", f"Bearer {MASTER}x",
                                  f"Bearer {MASTER[:-1]}", "Basic " + MASTER, MASTER])
def test_guarded_endpoints_refuse_without_the_right_key(locked: Gw, method: str, path: str,
                                                        body: dict | None,  # type: ignore[type-arg]
                                                        auth: str | None) -> None:
    r = request(locked.url, method, path, body, headers={"Authorization": auth} if auth else {})
    assert r.status == 401, (r.status, r.body[:200])
    assert r.error["type"] == "authentication_error"
    _assert_clean("401 body", r.body, _secrets())


@pytest.mark.parametrize(("method", "path", "body"), GUARDED)
@pytest.mark.parametrize("header", ["Authorization", "x-api-key"])
def test_guarded_endpoints_answer_with_the_master_key(locked: Gw, method: str, path: str,
                                                      body: dict | None,  # type: ignore[type-arg]
                                                      header: str) -> None:
    value = f"Bearer {MASTER}" if header == "Authorization" else MASTER
    r = request(locked.url, method, path, body, headers={header: value})
    assert r.status == 200, r.body[:200]


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
def test_models_requires_a_key_when_keys_are_required(locked: Gw, path: str) -> None:
    for auth in (None, "Bearer wrong-key-123456"):
        r = request(locked.url, "GET", path, headers={"Authorization": auth} if auth else {})
        assert r.status == 401, (auth, r.body[:200])
        assert r.error["type"] == "authentication_error"
        assert b'"data"' not in r.body
    ok = request(locked.url, "GET", path, headers={"Authorization": f"Bearer {MASTER}"})
    assert ok.status == 200 and ok.json()["data"]


@pytest.mark.parametrize("path", ["/admin/keys", "/admin/", "/ui", "/ui/", "/admin/usage"])
def test_admin_and_ui_paths_do_not_answer_without_a_key(locked: Gw, path: str) -> None:
    r = request(locked.url, "GET", path)
    assert r.status in (401, 403, 404)
    assert b'"data"' not in r.body


def test_keys_are_compared_in_constant_time() -> None:
    from kanjia.access import OpenAccess
    from kanjia.server.app import KanjiaApp

    fns = [KanjiaApp.is_admin, OpenAccess.authenticate]
    try:
        from kanjia.metering._gate import Gatekeeper

        fns.append(Gatekeeper.authenticate)
    except ImportError:
        pass
    from kanjia.metering import is_master_key

    assert "compare_digest" in inspect.getsource(is_master_key)   # the one comparison
    for fn in fns:
        src = inspect.getsource(fn)
        assert "compare_digest" in src or "is_master_key(" in src, fn.__qualname__
        assert "== self._master" not in src and "== master" not in src, fn.__qualname__


# -- no secret anywhere ---------------------------------------------------------------------
def test_no_key_in_logs_errors_metrics_models_or_records(
        sb: str, captured_logs: list[logging.LogRecord]) -> None:
    seen: list[tuple[str, bytes]] = []
    with gateway(sb, routes={"fb": FALLBACK_ROUTE}, env={"KANJIA_MASTER_KEY": MASTER}) as g:
        hdrs = {"Authorization": f"Bearer {CLIENT}"}
        for fault in FAULTS:
            for stream in (False, True):
                body = {"model": "deepseek/deepseek-chat", "stream": stream,
                        "messages": [{"role": "user", "content": f"x [[sandbox:fault={fault}]]"}]}
                r = request(g.url, "POST", "/v1/chat/completions", body, headers=hdrs)
                seen.append((f"{fault} stream={stream}", r.body + repr(r.headers).encode()))
        for bad in (b"{", b'{"model": "nope/none", "messages": [{"role": "user"}]}',
                    b'{"model": "x"}'):
            r = request(g.url, "POST", "/v1/chat/completions", bad, headers=hdrs)
            seen.append(("bad request", r.body))
        ok = chat(g.url, "hi", model="fb")
        seen.append(("fallback answer", ok.body + repr(ok.headers).encode()))
        st = chat(g.url, "hi", model="openai/gpt-4o-mini", stream=True)
        seen.append(("stream", st.body))
        assert sse(st.body)[-1] == "[DONE]"
        for path in ("/metrics", "/v1/models", "/status", "/healthz", "/openapi.json"):
            r = request(g.url, "GET", path, headers={"Authorization": f"Bearer {MASTER}"})
            assert r.status == 200, path
            seen.append((path, r.body))
        wrong = request(g.url, "GET", "/status", headers={"Authorization": f"Bearer {CLIENT}"})
        seen.append(("/status with a wrong key", wrong.body))
        g.wait_records(2 * len(FAULTS) + 5)
        records = list(g.records)
    for where, data in seen:
        _assert_clean(where, data, _secrets())
    for rec in records:
        _assert_clean(f"call record {rec.request_id}", repr(rec), _secrets())
    _assert_clean("log records", _log_text(captured_logs), _secrets())


def test_no_key_in_a_served_gateways_stderr_or_ledger(rel_sandbox: SandboxThread,
                                                      tmp_path: Path) -> None:
    """``kanjia serve --db``: stderr at the most verbose setting we have, the ledger's
    database and journal files: none holds a key, a client's Authorization or a virtual
    key (created through /admin/ when the metering layer is wired)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "stderr.log"
    env = {**os.environ, "KANJIA_MASTER_KEY": MASTER, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as err:
        p = subprocess.Popen([sys.executable, "-m", "kanjia", "serve", "--sandbox",
                              rel_sandbox.url, "--port", str(port), "--db",
                              str(tmp_path / "ledger.db")],
                             stdout=err, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
        try:
            wait_healthy(url, p, why=log.read_text)
            secrets = _secrets()
            master = {"Authorization": f"Bearer {MASTER}"}
            made = request(url, "POST", "/admin/keys", {"name": "leak-test"}, headers=master)
            vkey = made.json().get("key") if made.status == 201 else None
            callers = [{"Authorization": f"Bearer {CLIENT}"}, master,
                       {"Authorization": "Bearer kj-not-a-real-key-0123456789"}]
            if vkey:
                secrets.append(vkey)
                callers.append({"Authorization": f"Bearer {vkey}"})
            bodies: list[bytes] = []
            metered: list[str] = []  # every request past authentication has a ledger row
            for hdrs in callers:
                for fault in ("auth", "server_error", "malformed", "reset", None):
                    content = "hi" + (f" [[sandbox:fault={fault}]]" if fault else "")
                    for stream in (False, True):
                        r = request(url, "POST", "/v1/chat/completions",
                                    {"model": "deepseek/deepseek-chat", "stream": stream,
                                     "messages": [{"role": "user", "content": content}]},
                                    headers=hdrs)
                        bodies.append(r.body + repr(r.headers).encode())
                        if r.status != 401:
                            metered.append(r.headers["x-kanjia-request-id"])
            for path in ("/metrics", "/v1/models", "/status", "/admin/keys", "/admin/usage"):
                r = request(url, "GET", path, headers=master)
                bodies.append(r.body)
        finally:
            stop_process(p, 15)  # SIGTERM: the ledger writes every row it holds, then exits
    for i, b in enumerate(bodies):
        # the key-creation answer shows the new key once, by design: it is not in ``bodies``
        _assert_clean(f"response {i}", b, secrets)
    _assert_clean("gateway stderr", log.read_bytes(), secrets)
    with contextlib.closing(sqlite3.connect(tmp_path / "ledger.db")) as db:
        ledger = {row[0] for row in db.execute("SELECT request_id FROM usage_records")}
    assert metered and set(metered) <= ledger, "the ledger does not hold every request"
    files = [f for f in tmp_path.rglob("*") if f.is_file() and f != log]
    for f in files:
        _assert_clean(f"ledger file {f.name}", f.read_bytes(), secrets)
