"""F7: vendor keys of every real shape never reach a client, a log, a record, the ledger,
a journal or /metrics, even when the vendor quotes the key in its error text.

The shape-based ``redact`` misses UUID keys (Doubao/ARK, DashScope), ``key:secret``
(Spark), JWTs (MiniMax) and Tencent ``AKID...``; the gateway scrubs the exact configured
values (``kanjia.scrub.Scrubber``). The sandbox quotes the key it received in its error
message when a request carries ``[[sandbox:echo_key]]``, as some real vendors do."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanjia.config import load_settings
from kanjia.errors import redact
from kanjia.ledger.record import CallRecord
from kanjia.scrub import Scrubber, install_log_scrubber, url_password
from kanjia.server import KanjiaApp, ServerThread, build_app
from kanjia.vendors import load_vendor_specs

from ._util import Reply, request, stop_process, wait_healthy
from ._vendor_keys import KEYS, MODELS, VENDORS, secret_parts, vendor_config
from .test_memory import _free_port

MASTER = KEYS["KANJIA_MASTER_KEY"]
ADMIN = {"Authorization": f"Bearer {MASTER}"}
#: vendor faults whose answer quotes the key; rate_limit and overloaded (the gateway waits
#: out their Retry-After) only for the vendors whose keys have no recognisable shape
FAULTS = ("auth", "balance", "server_error", "context_too_long", "content_filter")
SLOW_FAULTS = ("rate_limit", "overloaded")
SHAPELESS = ("doubao", "qwen", "minimax", "spark", "hunyuan")
SECRETS = secret_parts(list(KEYS.values()))


def _leaks(data: str | bytes) -> list[str]:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    return [s for s in SECRETS if s in text]


def _echo_chat(vendor: str, fault: str, stream: bool) -> dict[str, object]:
    return {"model": f"{vendor}/{MODELS[vendor]}", "stream": stream, "max_tokens": 8,
            "messages": [{"role": "user",
                          "content": f"hi [[sandbox:fault={fault}]] [[sandbox:echo_key]]"}]}


# -- the scrubber itself ----------------------------------------------------------------
def test_shape_redaction_alone_misses_these_keys() -> None:
    """Why exact values are needed: the shape-based redactor leaves these untouched."""
    for env in ("ARK_API_KEY", "DASHSCOPE_API_KEY", "SPARK_API_PASSWORD", "MINIMAX_API_KEY",
                "HUNYUAN_API_KEY", "KANJIA_MASTER_KEY"):
        assert KEYS[env] in redact(f"bad key {KEYS[env]}"), env


def test_scrubber_from_config_covers_every_configured_secret() -> None:
    pg_pw, redis_pw = "pg-Secr3t%2Fwith%40at", "r3dis-Pa55word-xyz"  # as written in a URL
    settings = load_settings(None, vendors=vendor_config("http://127.0.0.1:1"),
                             database=f"postgresql://kanjia:{pg_pw}@db.internal:5432/ledger",
                             redis=f"redis://default:{redis_pw}@cache:6379/0")
    scrub = Scrubber.from_config(settings, KEYS, load_vendor_specs())
    assert url_password(settings.database) == [pg_pw, "pg-Secr3t/with@at"]
    text = " | ".join([*KEYS.values(), pg_pw, "pg-Secr3t/with@at", redis_pw,
                       KEYS["SPARK_API_PASSWORD"].split(":")[1],       # the secret half
                       KEYS["ZHIPUAI_API_KEY"].split(".")[0]])         # the id half
    out = scrub(text)
    assert not _leaks(out), _leaks(out)
    assert pg_pw not in out and redis_pw not in out and "with@at" not in out
    # percent-encoded, as in a URL or a form
    from urllib.parse import quote

    assert scrub(quote(KEYS["QIANFAN_API_KEY"], safe="")) == "***"
    # ordinary text survives; values too short to be secrets are left alone
    assert scrub("vendor said: model not found (code 404)") == \
        "vendor said: model not found (code 404)"
    assert Scrubber(["abc"])("abc abc") == "abc abc"
    assert scrub.exact_bytes(KEYS["ARK_API_KEY"].encode() + b" x") == b"*** x"


def test_log_scrubber_cleans_messages_arguments_and_tracebacks() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    log = logging.getLogger("kanjia.test-secret-values")
    log.addHandler(handler)
    log.propagate = False
    remove = install_log_scrubber(Scrubber([KEYS["ARK_API_KEY"]]), loggers=[log.name])
    try:
        log.warning("vendor said %s", f"bad key {KEYS['ARK_API_KEY']}")
        try:
            raise RuntimeError(f"boom {KEYS['ARK_API_KEY']}")
        except RuntimeError:
            log.exception("failed")
    finally:
        remove()
        log.removeHandler(handler)
    fmt = logging.Formatter()
    written = "\n".join(fmt.format(r) for r in records)
    assert "vendor said bad key ***" in written and "boom ***" in written
    assert KEYS["ARK_API_KEY"] not in written


# -- end to end, in process -------------------------------------------------------------
@pytest.fixture()
def keyed(sb: str) -> Iterator[tuple[KanjiaApp, str, list[CallRecord]]]:
    settings = load_settings(None, vendors=vendor_config(sb),
                             server={"upstream_timeout_s": 2.0, "first_byte_timeout_s": 2.0})
    records: list[CallRecord] = []
    app = build_app(settings, env=KEYS, sinks=[records.append])
    with ServerThread(app) as srv:
        yield app, srv.url, records


def test_the_sandbox_really_quotes_the_key(sb: str) -> None:
    """The attack is real: a vendor answer that quotes our key, straight from the sandbox."""
    for vendor, env, header in (("doubao", "ARK_API_KEY", "Authorization"),
                                ("anthropic", "ANTHROPIC_API_KEY", "x-api-key")):
        path = "/anthropic/v1/messages" if vendor == "anthropic" else \
            f"/{vendor}/chat/completions"
        body = _echo_chat(vendor, "auth", False)
        body["model"] = MODELS[vendor]
        value = KEYS[env] if header != "Authorization" else f"Bearer {KEYS[env]}"
        r = request(sb, "POST", path, body, headers={header: value})
        assert r.status >= 400 and KEYS[env].encode() in r.body, r.body[:300]


def test_no_vendor_key_of_any_shape_reaches_a_client_log_or_record(
        keyed: tuple[KanjiaApp, str, list[CallRecord]], sb: str,
        captured: list[logging.LogRecord]) -> None:
    app, url, records = keyed
    seen: list[tuple[str, Reply]] = []
    request(sb, "DELETE", "/_sandbox/requests")
    calls = [(v, f, st) for v in VENDORS for f in FAULTS for st in (False, True)]
    calls += [(v, f, False) for v in SHAPELESS for f in SLOW_FAULTS]
    for vendor, fault, stream in calls:
        app.services.health.reset()  # every call reaches the vendor: no open circuit
        r = request(url, "POST", "/v1/chat/completions", _echo_chat(vendor, fault, stream))
        seen.append((f"{vendor} {fault} stream={stream}", r))
    # content_filter answers 200 where the vendor filters in a finish_reason
    failed = [w for w, r in seen if r.status >= 400 or b'"error"' in r.body]
    assert len(failed) >= len(calls) - len(VENDORS) * 2, failed
    reached = request(sb, "GET", "/_sandbox/requests").json()["requests"]
    assert len(reached) >= len(seen), "some calls never reached the vendor"
    for where, r in seen:
        assert not _leaks(r.body + repr(r.headers).encode()), (where, _leaks(r.body))
    for rec in records:
        assert not _leaks(repr(rec)), rec.request_id
    text = "\n".join(logging.Formatter().format(r) for r in captured)
    assert not _leaks(text)
    for path in ("/metrics", "/status", "/healthz", "/v1/models"):
        assert not _leaks(request(url, "GET", path).body), path


@pytest.fixture()
def captured() -> Iterator[list[logging.LogRecord]]:
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


# -- everything a served gateway wrote -------------------------------------------------------
def _pg_available() -> bool:
    from tests._services import pg_reachable

    return asyncio.run(pg_reachable())


def _pg_dump_and_drop(url: str, schema: str) -> bytes:
    import asyncpg

    async def run() -> bytes:
        conn = await asyncpg.connect(url)
        try:
            out = []
            tables = await conn.fetch("SELECT table_name FROM information_schema.tables "
                                      "WHERE table_schema = $1", schema)
            for (table,) in tables:
                for row in await conn.fetch(f'SELECT * FROM "{schema}"."{table}"'):
                    out.append(repr(tuple(row)))
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            return "\n".join(out).encode()
        finally:
            await conn.close()

    return asyncio.run(run())


def _redis_dump_and_drop(prefix: str) -> bytes:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    out = []
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            kind = client.type(key)
            value = client.hgetall(key) if kind == b"hash" else \
                client.zrange(key, 0, -1, withscores=True) if kind == b"zset" else \
                client.get(key) if kind == b"string" else b""
            out.append(repr((key, value)))
            client.delete(key)
    finally:
        client.close()
    return "\n".join(out).encode()


def test_secret_scan_of_everything_a_served_gateway_wrote(rel_sandbox: object,
                                                          tmp_path: Path) -> None:
    """``kanjia serve`` with every vendor keyed (keys of every real shape), a PostgreSQL
    ledger and Redis reached through URLs with passwords, and a UUID master key; every
    vendor fails with its key quoted. Then: no secret (nor a long part of one) in any
    response, stderr, the journal, the ledger's rows, Redis, /metrics or /status."""
    if not _pg_available():
        pytest.skip("PostgreSQL is not reachable")
    sandbox_url = rel_sandbox.url  # type: ignore[attr-defined]
    run = uuid.uuid4().hex[:10]
    schema, prefix = f"kj_test_secure_{run}", f"kjtest-secure-{run}"
    pg_pw, redis_pw = f"pg-pw-{run}-Zq9", f"rd-pw-{run}-Xk7"
    db = f"postgresql://postgres:{pg_pw}@127.0.0.1:5432/test?schema={schema}"
    redis_url = f"redis://default:{redis_pw}@127.0.0.1:6379/0?prefix={prefix}"
    secrets = secret_parts([*KEYS.values(), pg_pw, redis_pw])
    config = tmp_path / "kanjia.toml"
    lines = []
    for vendor, table in vendor_config(sandbox_url).items():
        lines += [f"[vendors.{vendor}]", f'base_url = "{table["base_url"]}"']
        for dep in table.get("deployments", ()):
            lines.append(f"[[vendors.{vendor}.deployments]]")
            lines += [f'{k} = "{v}"' for k, v in dep.items()]
    config.write_text("\n".join(lines) + "\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "stderr.log"
    import kanjia

    env = {**os.environ, **KEYS, "PYTHONUNBUFFERED": "1",
           "KANJIA_JOURNAL_DIR": str(tmp_path / "journal"),
           # the kanjia under test, whatever the working directory
           "PYTHONPATH": str(Path(kanjia.__file__).resolve().parents[1])}
    bodies: list[bytes] = []
    dumped = b""
    with open(log, "wb") as err:
        p = subprocess.Popen([sys.executable, "-m", "kanjia", "serve", "--config", str(config),
                              "--port", str(port), "--db", db, "--redis", redis_url],
                             stdout=err, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
        try:
            wait_healthy(url, p, why=log.read_text)
            made = request(url, "POST", "/admin/keys", {"name": "scan"}, headers=ADMIN)
            assert made.status == 201, made.body
            vkey = made.json()["key"]
            secrets = secret_parts([*KEYS.values(), pg_pw, redis_pw, vkey])
            caller = {"Authorization": f"Bearer {vkey}"}
            for vendor in VENDORS:
                ok = request(url, "POST", "/v1/chat/completions",
                             {**_echo_chat(vendor, "none", False),
                              "messages": [{"role": "user", "content": "hi"}]}, headers=caller)
                assert ok.status == 200, (vendor, ok.body[:300])
                # auth last: it takes the deployment out, and later calls would not reach it
                for fault, stream in (("server_error", True), ("context_too_long", False),
                                      ("auth", False)):
                    r = request(url, "POST", "/v1/chat/completions",
                                _echo_chat(vendor, fault, stream), headers=caller)
                    assert r.status != 200 or b'"error"' in r.body, (vendor, fault)
                    assert b"no_deployment_available" not in r.body, (vendor, fault)
                    bodies.append(r.body + repr(r.headers).encode())
            for path in ("/metrics", "/status", "/healthz", "/admin/keys", "/admin/usage"):
                r = request(url, "GET", path, headers=ADMIN)
                assert r.status == 200, path
                bodies.append(r.body)
        finally:
            stop_process(p, 15)  # SIGTERM: the ledger flushes everything
            dumped = _pg_dump_and_drop("postgresql://postgres@127.0.0.1:5432/test", schema)
            dumped += _redis_dump_and_drop(prefix)
    assert dumped.count(b"chat") >= len(VENDORS), "the ledger holds no rows"

    def clean(where: str, data: bytes) -> None:
        text = data.decode("utf-8", "replace")
        found = [s for s in secrets if s in text]
        assert not found, f"{found} in {where}"

    for i, body in enumerate(bodies):
        clean(f"response {i}", body)
    clean("stderr", log.read_bytes())
    clean("ledger rows and Redis", dumped)
    files = [f for f in tmp_path.rglob("*") if f.is_file() and f not in (log, config)]
    for f in files:
        clean(f"file {f.relative_to(tmp_path)}", f.read_bytes())


def test_a_failed_deferred_job_stores_no_key(sb: str, tmp_path: Path) -> None:
    """The batch queue keeps a failed job's error text: scrubbed like any other."""
    import time

    import orjson

    from kanjia.batch import BatchRunner, JobQueue
    from kanjia.server.gateway import CallOutcome

    app = build_app(load_settings(None, vendors=vendor_config(sb)), env=KEYS)
    queue = JobQueue(tmp_path / "q.db")

    async def send(body: dict[str, object],
                   key_id: str | None = None) -> dict[str, object]:  # as the app's own runner
        outcome = await app.services.gateway.chat(body, None, time.perf_counter())
        assert isinstance(outcome, CallOutcome)
        return dict(orjson.loads(outcome.body))

    async def run() -> None:
        await app.startup()
        try:
            await BatchRunner(queue, send).run_once()
        finally:
            await app.shutdown()

    jids = [queue.add(batch_id="http", model=f"{v}/{MODELS[v]}", body=_echo_chat(v, "auth", False),
                      send_at=0, route=None, target=None, cost_now=None, cost_then=None,
                      currency=None) for v in SHAPELESS]
    asyncio.run(run())
    errors = [(queue.get(j) or pytest.fail("job lost")).error for j in jids]
    queue.close()
    assert all(e and e.startswith("upstream_auth_failed") for e in errors), errors
    assert not _leaks(repr(errors)), errors
    assert not _leaks((tmp_path / "q.db").read_bytes())
