"""The OpenAI-compatible Batch API through the official ``openai`` SDK, against sandbox
upstreams: files.create + batches.create + batches.retrieve + files.content, each line
sent the cheapest way within the deadline and billed at the price it was sent at."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from kanjia.catalog import Usage, cost_of, load_catalog
from kanjia.config import load_settings
from kanjia.ledger.record import CallRecord
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app


def _control(sandbox: SandboxThread, **conf: object) -> None:
    req = urllib.request.Request(f"{sandbox.url}/_sandbox/batches",
                                 data=json.dumps(conf).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


class Ledger:
    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self._lock = threading.Lock()

    def append(self, rec: CallRecord) -> None:
        with self._lock:
            self.records.append(rec)


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture(scope="module")
def queue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("batch") / "kanjia-batch.db"


@pytest.fixture(scope="module")
def gw(sandbox: SandboxThread, ledger: Ledger, queue: Path) -> Iterator[ServerThread]:
    settings = load_settings(None, sandbox_url=sandbox.url, batch_queue=str(queue),
                             server={"upstream_timeout_s": 5.0})
    app = build_app(settings, env={}, sinks=[ledger.append])
    app.services.batch_poll_s = 0.05
    _control(sandbox, delay_s=0.3, fail=[])
    with ServerThread(app) as srv:
        yield srv


def _client(gw: ServerThread, key: str = "test") -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=20)


def _wait(client: openai.OpenAI, bid: str, timeout: float = 20.0) -> openai.types.Batch:
    """Poll the API until the batch has ended (what a client does)."""
    end = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(bid)
        if batch.status in ("completed", "failed", "cancelled", "expired"):
            return batch
        assert time.monotonic() < end, f"batch still {batch.status}"
        time.sleep(0.05)


#: deepseek-chat is dearer on weekdays 09:00-12:00 and 14:00-18:00 Beijing (01:00-04:00 and
#: 06:00-10:00 UTC): a line for it goes now at 12:00 UTC, off-peak at 02:00 UTC (to 04:00)
OFFPEAK = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)   # a Monday, 20:00 Beijing
PEAK = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)       # the same Monday, 10:00 Beijing
PEAK_ENDS = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


def _clock_from(at: datetime) -> list[float]:
    """A wall clock that reads ``at`` now and runs on from there, and a handle to move it:
    ``app.clock = lambda: clock[0] + time.monotonic()``; ``clock[0] += s`` jumps ahead."""
    return [at.timestamp() - time.monotonic()]


def _line(cid: str, model: str, text: str, max_tokens: int = 20) -> str:
    return json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                       "body": {"model": model, "max_tokens": max_tokens,
                                "messages": [{"role": "user", "content": text}]}})


def _jsonl(lines: list[str]) -> io.BytesIO:
    buf = io.BytesIO(("\n".join(lines) + "\n").encode())
    buf.name = "input.jsonl"
    return buf


def test_sdk_flow_vendor_batch_billed_at_batch_price(gw: ServerThread, ledger: Ledger) -> None:
    client = _client(gw)
    lines = [_line("a", "openai/gpt-4o-mini", "hello [[sandbox:tokens=7]]"),
             _line("b", "anthropic/claude-3-5-haiku-20241022", "hi [[sandbox:tokens=5]]"),
             "{not json",
             _line("c", "openai/gpt-4o-mini", "again [[sandbox:tokens=9]]")]
    f = client.files.create(file=_jsonl(lines), purpose="batch")
    assert f.purpose == "batch" and f.object == "file" and f.bytes > 0
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"job": "t1"})
    assert batch.status == "in_progress" and batch.metadata == {"job": "t1"}
    done = _wait(client, batch.id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed,
            done.request_counts.failed) == (4, 3, 1)
    assert done.output_file_id and done.error_file_id
    out = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    assert sorted(o["custom_id"] for o in out) == ["a", "b", "c"]
    for o in out:
        assert o["error"] is None and o["response"]["status_code"] == 200
        assert o["response"]["body"]["object"] == "chat.completion"
    errs = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    assert len(errs) == 1 and errs[0]["error"]["line"] == 3
    assert "line 3" in errs[0]["error"]["message"]
    assert done.errors is not None and done.errors.data and done.errors.data[0].line == 3
    # every line went through the vendor's batch API and is billed at its batch price
    catalog = load_catalog()
    recs = {o["custom_id"]: next(r for r in ledger.records
                                 if r.request_id == o["response"]["request_id"]) for o in out}
    for cid, rec in recs.items():
        assert rec.endpoint == "batch" and rec.price_period and \
            rec.price_period.endswith("+batch"), (cid, rec.price_period)
        entry = catalog.get(rec.vendor or "", rec.model or "")
        assert entry is not None
        at = datetime.fromtimestamp(rec.ts, UTC)
        period = entry.price_at(at)
        assert period is not None
        # by hand: half the standard per-million prices
        uncached = rec.input_tokens - rec.cached_tokens - rec.cache_write_tokens
        want = (Decimal(uncached) * period.input_mtok
                + Decimal(rec.output_tokens) * (period.output_mtok or Decimal(0))) \
            * Decimal("0.5") / Decimal(1_000_000)
        assert rec.cost == want, (cid, rec.cost, want)
        assert rec.cost == cost_of(Usage(rec.input_tokens, rec.cached_tokens,
                                         rec.cache_write_tokens, rec.output_tokens),
                                   entry, at).amount / 2
    assert recs["a"].output_tokens == 7 and recs["c"].output_tokens == 9
    assert recs["b"].vendor == "anthropic" and recs["b"].output_tokens == 5


def test_short_deadline_goes_now_at_the_standard_price(gw: ServerThread,
                                                       ledger: Ledger) -> None:
    client = _client(gw)
    f = client.files.create(file=_jsonl([_line("x", "openai/gpt-4o-mini", "q")]),
                            purpose="batch")
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="1h")  # type: ignore[arg-type]
    done = _wait(client, batch.id)
    assert done.status == "completed" and done.output_file_id
    out = json.loads(client.files.content(done.output_file_id).text)
    rec = next(r for r in ledger.records if r.request_id == out["response"]["request_id"])
    assert not (rec.price_period or "").endswith("+batch")


def test_vendor_side_failure_lands_in_the_error_file(gw: ServerThread, sandbox: SandboxThread
                                                      ) -> None:
    client = _client(gw)
    _control(sandbox, fail=[])
    lines = [_line("ok", "openai/gpt-4o-mini", "fine"),
             _line("boom", "openai/gpt-4o-mini", "x [[sandbox:fault=server_error]]")]
    f = client.files.create(file=_jsonl(lines), purpose="batch")
    done = _wait(client, client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h").id)
    assert done.request_counts is not None and done.request_counts.completed == 1
    assert done.error_file_id
    err = json.loads(client.files.content(done.error_file_id).text)
    assert err["custom_id"] == "boom" and err["response"]["status_code"] >= 500


def test_files_and_batches_belong_to_their_key(gw: ServerThread) -> None:
    a, b = _client(gw, "key-a"), _client(gw, "key-b")
    f = a.files.create(file=_jsonl([_line("x", "openai/gpt-4o-mini", "q")]), purpose="batch")
    batch = a.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                             completion_window="24h")
    # an open gateway has no keys: everyone is the same owner; the list pages work
    page = a.batches.list(limit=1)
    assert page.data and page.data[0].id == batch.id
    assert b.files.retrieve(f.id).id == f.id


def test_bad_requests(gw: ServerThread) -> None:
    client = _client(gw)
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions",
                              completion_window="24h")
    f = client.files.create(file=_jsonl([_line("x", "openai/gpt-4o-mini", "q")]),
                            purpose="batch")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=f.id, endpoint="/v1/completions",  # type: ignore[arg-type]
                              completion_window="24h")
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=_jsonl(["{}"]), purpose="fine-tune")


def test_cancel(gw: ServerThread, sandbox: SandboxThread) -> None:
    client = _client(gw)
    _control(sandbox, delay_s=30)
    try:
        f = client.files.create(file=_jsonl([_line("x", "openai/gpt-4o-mini", "q")]),
                                purpose="batch")
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        c = client.batches.cancel(batch.id)
        assert c.status in ("cancelling", "cancelled")
        done = _wait(client, batch.id)
        assert done.status == "cancelled"
    finally:
        _control(sandbox, delay_s=0.3)


def test_store_is_durable(gw: ServerThread, tmp_path: Path) -> None:
    from kanjia.batch import BatchStore, store_path

    assert store_path(str(tmp_path / "q.db")).name == "q.api.db"
    s = BatchStore(tmp_path / "q.api.db")
    row = s.add_file("k1", "batch", "in.jsonl", b"{}\n")
    s.close()
    s = BatchStore(tmp_path / "q.api.db")
    assert s.content("k1", row.id) == b"{}\n" and s.content("k2", row.id) is None
    s.close()


def test_cli_submit_with_deadline_and_status(gw: ServerThread, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kanjia.cli.main import cli

    src = tmp_path / "work.jsonl"
    src.write_text("\n".join([
        _line("v1", "openai/gpt-4o-mini", "one"),
        json.dumps({"model": "openai/gpt-4o-mini",  # a bare chat body works too
                    "messages": [{"role": "user", "content": "two"}], "max_tokens": 5}),
        '{"custom_id": "bad", "body": {"model": "openai/gpt-4o-mini"}}',
    ]) + "\n")
    runner = CliRunner()
    res = runner.invoke(cli, ["batch", "submit", str(src), "--deadline", "24h",
                              "--gateway", gw.url, "--json"])
    assert res.exit_code == 0, res.output
    made = json.loads(res.output)
    assert made["request_counts"] == {"total": 3, "completed": 0, "failed": 1}
    done = _wait(_client(gw), made["id"])
    assert done.status == "completed"
    res = runner.invoke(cli, ["batch", "status", "--batch", made["id"], "--gateway", gw.url])
    assert res.exit_code == 0, res.output
    assert "vendor_batch=2" in res.output and "rejected=1" in res.output
    assert "openai/gpt-4o-mini" in res.output
    res = runner.invoke(cli, ["batch", "submit", str(src), "--deadline", "soon",
                              "--gateway", gw.url])
    assert res.exit_code != 0 and "--deadline" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_a_batch_past_its_window_expires(gw: ServerThread, sandbox: SandboxThread,
                                         queue: Path) -> None:
    import sqlite3

    from kanjia.batch import store_path

    client = _client(gw)
    _control(sandbox, delay_s=60)  # the vendor batch would take a minute
    try:
        f = client.files.create(file=_jsonl([_line("slow", "openai/gpt-4o-mini", "q")]),
                                purpose="batch")
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        db = sqlite3.connect(store_path(str(queue)))  # the window ran out long ago
        with db:
            db.execute("UPDATE api_batches SET deadline = 0 WHERE id = ?", (batch.id,))
        db.close()
        done = _wait(client, batch.id)
        assert done.status == "expired" and done.expired_at
        assert done.request_counts is not None and done.request_counts.failed == 1
        assert done.error_file_id
        err = json.loads(client.files.content(done.error_file_id).text)
        assert err["custom_id"] == "slow" and err["error"]["code"] == "batch_expired"
    finally:
        _control(sandbox, delay_s=0.3)


def test_embeddings_batch(gw: ServerThread, ledger: Ledger) -> None:
    client = _client(gw)
    line = json.dumps({"custom_id": "e1", "method": "POST", "url": "/v1/embeddings",
                       "body": {"model": "openai/text-embedding-3-small",
                                "input": ["some text to embed"]}})
    f = client.files.create(file=_jsonl([line]), purpose="batch")
    done = _wait(client, client.batches.create(input_file_id=f.id, endpoint="/v1/embeddings",
                                               completion_window="24h").id)
    assert done.status == "completed" and done.output_file_id
    out = json.loads(client.files.content(done.output_file_id).text)
    assert out["response"]["body"]["data"][0]["embedding"]
    rec = next(r for r in ledger.records if r.request_id == out["response"]["request_id"])
    assert (rec.price_period or "").endswith("+batch") and rec.input_tokens > 0


def test_no_usage_from_the_vendor_is_counted_and_marked(gw: ServerThread,
                                                        ledger: Ledger) -> None:
    client = _client(gw)
    f = client.files.create(file=_jsonl([_line(
        "nu", "openai/gpt-4o-mini", "tell me [[sandbox:no_usage]] [[sandbox:tokens=30]]")]),
        purpose="batch")
    done = _wait(client, client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h").id)
    assert done.output_file_id
    out = json.loads(client.files.content(done.output_file_id).text)
    rec = next(r for r in ledger.records if r.request_id == out["response"]["request_id"])
    assert rec.usage_estimated and rec.input_tokens > 0 and rec.output_tokens > 0
    assert (rec.price_period or "").endswith("+batch") and rec.cost > 0


def test_a_restarted_gateway_resumes_open_batches(sandbox: SandboxThread, tmp_path: Path
                                                   ) -> None:
    queue = tmp_path / "kanjia-batch.db"
    settings = load_settings(None, sandbox_url=sandbox.url, batch_queue=str(queue))

    # the deepseek line goes now only outside its weekday peak hours (at 01:00-04:00 UTC
    # it would wait for 04:00): both runs plan and send by a clock that starts off-peak
    clock = _clock_from(OFFPEAK)

    def app() -> ServerThread:
        a = build_app(settings, env={})
        a.services.batch_poll_s = 0.05
        a.clock = lambda: clock[0] + time.monotonic()
        return ServerThread(a)

    _control(sandbox, delay_s=60)
    try:
        with app() as first:
            client = _client(first)
            f = client.files.create(file=_jsonl([
                _line("v", "openai/gpt-4o-mini", "later"),
                _line("n", "deepseek/deepseek-chat", "now")]), purpose="batch")
            batch = client.batches.create(input_file_id=f.id,
                                          endpoint="/v1/chat/completions",
                                          completion_window="24h")
            list_page = client.batches.list(limit=10)
            assert [b.id for b in list_page.data] == [batch.id]
        _control(sandbox, delay_s=0.1)  # the vendor finishes while kanjia is down
        with app() as second:
            client = _client(second)
            done = _wait(client, batch.id)
            assert done.status == "completed" and done.request_counts is not None
            assert done.request_counts.completed == 2
            assert done.output_file_id
            ids = {json.loads(x)["custom_id"]
                   for x in client.files.content(done.output_file_id).text.splitlines()}
            assert ids == {"v", "n"}
    finally:
        _control(sandbox, delay_s=0.3)


def test_a_refused_vendor_batch_falls_back_to_now(gw: ServerThread, sandbox: SandboxThread,
                                                  ledger: Ledger) -> None:
    client = _client(gw)
    _control(sandbox, refuse=True)
    try:
        f = client.files.create(file=_jsonl([_line("fb", "openai/gpt-4o-mini", "q")]),
                                purpose="batch")
        done = _wait(client, client.batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h").id)
    finally:
        _control(sandbox, refuse=False)
    assert done.status == "completed" and done.output_file_id
    out = json.loads(client.files.content(done.output_file_id).text)
    rec = next(r for r in ledger.records if r.request_id == out["response"]["request_id"])
    assert not (rec.price_period or "").endswith("+batch")  # sent live, billed live


def test_a_peak_line_waits_for_the_engines_clock(sandbox: SandboxThread, tmp_path: Path
                                                 ) -> None:
    """The engine plans, sends and bills by the app's clock (not the machine's): at peak a
    DeepSeek line is held for the end of the peak and goes when that clock gets there."""
    settings = load_settings(None, sandbox_url=sandbox.url,
                             batch_queue=str(tmp_path / "kanjia-batch.db"))
    ledger = Ledger()
    a = build_app(settings, env={}, sinks=[ledger.append])
    a.services.batch_poll_s = 0.05
    clock = _clock_from(PEAK)
    a.clock = lambda: clock[0] + time.monotonic()
    with ServerThread(a) as gw:
        client = _client(gw)
        f = client.files.create(file=_jsonl([_line("p", "deepseek/deepseek-chat", "q")]),
                                purpose="batch")
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        assert batch.created_at == int(PEAK.timestamp())
        with urllib.request.urlopen(f"{gw.url}/v1/kanjia/batches/{batch.id}/lines",
                                    timeout=5) as resp:
            lines = json.loads(resp.read())
        assert lines["ways"] == {"offpeak": 1}
        assert lines["data"][0]["send_at"] == int(PEAK_ENDS.timestamp())
        assert client.batches.retrieve(batch.id).status == "in_progress"
        clock[0] += (PEAK_ENDS - PEAK).total_seconds()  # two hours later
        done = _wait(client, batch.id)
    assert done.status == "completed" and done.output_file_id
    assert (done.completed_at or 0) >= PEAK_ENDS.timestamp()
    rec = next(r for r in ledger.records if r.endpoint == "batch")
    assert rec.vendor == "deepseek" and rec.ts >= PEAK_ENDS.timestamp()
    # billed at the price of when it was sent, not the peak price of when it was planned
    assert rec.price_period and not rec.price_period.endswith("+peak")
