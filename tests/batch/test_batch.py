"""Deferrable work: the cheapest moment, the durable queue, the runner, the CLI and HTTP."""

from __future__ import annotations

import asyncio
import http.client
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from click.testing import CliRunner

from kanjia.batch import BatchRunner, JobQueue
from kanjia.catalog import load_catalog
from kanjia.cli.main import cli
from kanjia.config import load_settings
from kanjia.routing.defer import cheapest_send_time
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app

CATALOG = load_catalog()


def test_deepseek_peak_request_waits_for_offpeak() -> None:
    entry = CATALOG.get("deepseek", "deepseek-chat")
    assert entry is not None
    noon_bjt = datetime(2025, 3, 4, 4, 0, tzinfo=UTC)  # 12:00 Beijing, during the 2025 window
    when = cheapest_send_time(entry, 2000, 500, noon_bjt)
    assert when.deferred
    assert when.cost_then < when.cost_now
    assert when.at == datetime(2025, 3, 4, 16, 30, tzinfo=UTC)  # 00:30 Beijing


def test_offpeak_request_goes_now() -> None:
    entry = CATALOG.get("deepseek", "deepseek-chat")
    assert entry is not None
    night_bjt = datetime(2025, 3, 4, 18, 0, tzinfo=UTC)  # 02:00 Beijing
    when = cheapest_send_time(entry, 2000, 500, night_bjt)
    assert not when.deferred and when.at == night_bjt


def test_queue_claims_each_due_job_once_and_survives_restart(tmp_path: Path) -> None:
    q = JobQueue(tmp_path / "q.db")
    a = q.add(batch_id="b", model="m", body={"model": "m"}, send_at=10, route=None,
              target=None, cost_now=None, cost_then=None, currency=None)
    q.add(batch_id="b", model="m", body={"model": "m"}, send_at=1000, route=None, target=None,
          cost_now=None, cost_then=None, currency=None)
    assert [j.id for j in q.claim_due(100)] == [a]
    assert q.claim_due(100) == []
    q.close()
    q2 = JobQueue(tmp_path / "q.db")   # crash before finishing: back to the queue
    assert q2.requeue_sent() == 1
    assert [j.id for j in q2.claim_due(100)] == [a]
    q2.finish(a, {"ok": True}, None)
    assert q2.counts() == {"done": 1, "queued": 1}


def test_runner_records_results_and_errors(tmp_path: Path) -> None:
    q = JobQueue(tmp_path / "q.db")
    good = q.add(batch_id="b", model="m", body={"model": "good"}, send_at=0, route=None,
                 target=None, cost_now=None, cost_then=None, currency=None)
    bad = q.add(batch_id="b", model="m", body={"model": "bad"}, send_at=0, route=None,
                target=None, cost_now=None, cost_then=None, currency=None)

    async def send(body: dict[str, Any], key_id: str | None) -> dict[str, Any]:
        if body["model"] == "bad":
            raise RuntimeError("vendor down")
        return {"echo": body["model"]}

    assert asyncio.run(BatchRunner(q, send).run_once()) == 2
    assert q.get(good).result == {"echo": "good"}  # type: ignore[union-attr]
    assert "vendor down" in (q.get(bad).error or "")  # type: ignore[union-attr]


def test_cli_submit_status_run_results(tmp_path: Path, gateway: ServerThread) -> None:
    file = tmp_path / "work.jsonl"
    file.write_text("\n".join(json.dumps({"custom_id": str(i), "body": {
        "messages": [{"role": "user", "content": f"summarise report {i}"}],
        "max_tokens": 50}}) for i in range(3)) + "\n")
    queue = str(tmp_path / "q.db")
    runner = CliRunner()
    res = runner.invoke(cli, ["batch", "submit", str(file), "--route", "cheap-chat",
                              "--queue", queue, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["queued"] == 3
    with sqlite3.connect(queue) as db:   # pretend the cheap window has opened
        db.execute("UPDATE batch_jobs SET send_at = 0")
    res = runner.invoke(cli, ["batch", "run", "--once", "--gateway", gateway.url,
                              "--queue", queue])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["batch", "status", "--queue", queue, "--json"])
    assert json.loads(res.output)["counts"] == {"done": 3}
    res = runner.invoke(cli, ["batch", "results", "--queue", queue])
    rows = [json.loads(x) for x in res.output.splitlines()]
    assert all(r["result"]["choices"][0]["message"]["content"] for r in rows)


def test_cli_rejects_bad_lines(tmp_path: Path) -> None:
    file = tmp_path / "bad.jsonl"
    file.write_text('{"body": {"messages": "nope"}}\n')
    res = CliRunner().invoke(cli, ["batch", "submit", str(file), "--route", "cheap-chat",
                                   "--queue", str(tmp_path / "q.db")])
    assert res.exit_code != 0
    assert "bad.jsonl:1" in res.output


#: deepseek-chat's current price has a weekday peak surcharge (09:00-12:00, 14:00-18:00
#: Beijing): a Friday at 08:30 Beijing is already its lowest price, 10:00 is peak until 12:00
STANDARD = datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
PEAK = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
PEAK_ENDS = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


def test_http_defer_header(sandbox: SandboxThread, tmp_path: Path) -> None:
    settings = load_settings(None, sandbox_url=sandbox.url,
                             batch_queue=str(tmp_path / "queue.db"),
                             server={"upstream_timeout_s": 2.0, "first_byte_timeout_s": 2.0})
    app = build_app(settings, env={})
    now = [STANDARD.timestamp()]
    app.clock = lambda: now[0]          # deferred work is planned and sent by this clock
    body = json.dumps({"model": "deepseek/deepseek-chat", "max_tokens": 20,
                       "messages": [{"role": "user", "content": "nightly summary"}]})
    with ServerThread(app) as gateway:
        u = urlparse(gateway.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
        # already the cheapest moment: answered now
        conn.request("POST", "/v1/chat/completions", body=body,
                     headers={"x-kanjia-defer": "until-offpeak"})
        resp = conn.getresponse()
        data = json.loads(resp.read())
        assert resp.status == 200 and resp.getheader("x-kanjia-deferred") == "no"
        assert data["choices"]
        # peak now: queued for the end of the peak, and still queued (the queue's runner
        # keeps the same clock, so the job is not due yet)
        now[0] = PEAK.timestamp()
        conn.request("POST", "/v1/chat/completions", body=body,
                     headers={"x-kanjia-defer": "until-offpeak"})
        resp = conn.getresponse()
        data = json.loads(resp.read())
        assert resp.status == 202 and resp.getheader("x-kanjia-deferred") == "yes"
        assert data["send_at"] == PEAK_ENDS.isoformat()
        assert float(data["expected_cost_then"]) < float(data["expected_cost_now"])
        conn.request("GET", data["poll"])
        job = json.loads(conn.getresponse().read())
        assert job["status"] == "queued" and job["target"] == "deepseek/deepseek-chat"
        conn.request("POST", "/v1/chat/completions", body=body,
                     headers={"x-kanjia-defer": "tomorrow"})
        bad = conn.getresponse()
        assert bad.status == 400
        bad.read()
        conn.close()
