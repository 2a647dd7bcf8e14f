"""`kanjia reconcile` end to end: traffic through the real gateway to the vendor
sandbox, metered into a real ledger, compared with the sandbox's own usage export
(its record of what it served, priced from its own reading of the price files).
An honest run has no difference; a skew injected into the sandbox's export is found."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner

from kanjia.cli.main import cli
from kanjia.config import load_settings
from kanjia.ledger.record import CallRecord
from kanjia.ledger.store import open_database
from kanjia.sandbox import SandboxSettings, SandboxThread
from kanjia.server import ServerThread, build_app

DAY = 86400


class Loop:
    """A gateway with a ledger in front of a sandbox of its own (no other test's
    traffic in its record), and the requests sent through it."""

    def __init__(self, sandbox: SandboxThread, gateway: ServerThread, database: str,
                 records: list[CallRecord]) -> None:
        self.sandbox, self.gateway, self.database = sandbox, gateway, database
        self.records = records
        self.sent = 0

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.url + "/v1", api_key="test", max_retries=0,
                             timeout=20)

    def traffic(self) -> None:
        """Chat (plain and streamed), cached prompts, embeddings, Anthropic and Gemini."""
        long_system = "You answer questions about the price war. " * 200
        with self.client() as c:
            for i in range(3):
                c.chat.completions.create(model="deepseek/deepseek-chat", messages=[
                    {"role": "user", "content": f"question {i} [[sandbox:tokens={20 + i}]]"}])
            for i in range(2):     # the same long prefix: the second call hits the cache
                c.chat.completions.create(model="deepseek/deepseek-chat", messages=[
                    {"role": "system", "content": long_system},
                    {"role": "user", "content": f"cached {i}"}])
            stream = c.chat.completions.create(
                model="deepseek/deepseek-reasoner", stream=True,
                stream_options={"include_usage": True},
                messages=[{"role": "user", "content": "think [[sandbox:tokens=30]]"}])
            for _ in stream:
                pass
            c.chat.completions.create(model="openai/gpt-4o-mini", messages=[
                {"role": "user", "content": "hi [[sandbox:cached=1024]]" + " pad" * 1200}])
            c.chat.completions.create(model="openai/gpt-4o", messages=[
                {"role": "user", "content": "hello"}])
            c.embeddings.create(model="openai/text-embedding-3-small",
                                input=["one text", "another text"])
            c.chat.completions.create(model="anthropic/claude-3-5-haiku-20241022",
                                      max_tokens=40, messages=[
                                          {"role": "user", "content": "bonjour"}])
            c.chat.completions.create(model="qwen/qwen-plus", messages=[
                {"role": "user", "content": "你好 [[sandbox:cached=300]]" + "长" * 400}])
        self.sent += 10
        self.wait_for_ledger()

    def wait_for_ledger(self) -> None:
        """Until every request sent has its ledger row (written off the request path)."""
        async def count() -> int:
            db = open_database(self.database)
            await db.connect()
            try:
                rows = await db.fetch("SELECT COUNT(*) FROM usage_records")
                return int(rows[0][0])
            finally:
                await db.close()

        deadline = time.monotonic() + 20
        while asyncio.run(count()) < self.sent:
            assert time.monotonic() < deadline, "the ledger never got every request"
            time.sleep(0.05)                # poll the condition, not a fixed wait

    def export(self, tmp: Path, vendor: str, kind: str) -> Path:
        """The sandbox's export of ``vendor`` (usage/completions, usage/embeddings or
        costs) over yesterday and today, saved as a file."""
        start = int(time.time()) // DAY * DAY - DAY
        query = f"start_time={start}&end_time={start + 2 * DAY}"
        if kind == "costs":
            path, query = "/organization/costs", query + "&group_by=line_item"
        else:
            path, query = f"/organization/usage/{kind}", query + "&group_by=model"
        url = f"{self.sandbox.base_url(vendor)}{path}?{query}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read()
        out = tmp / f"{vendor}-{kind}.json"
        out.write_bytes(body)
        return out

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.sandbox.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    root = tmp_path_factory.mktemp("reconcile")
    database = str(root / "ledger.db")
    with SandboxThread(SandboxSettings(port=0, hang_s=3.0)) as sandbox:
        settings = load_settings(None, sandbox_url=sandbox.url, database=database,
                                 server={"upstream_timeout_s": 5.0,
                                         "first_byte_timeout_s": 5.0})
        records: list[CallRecord] = []
        app = build_app(settings, env={"KANJIA_JOURNAL_DIR": str(root / "journal"),
                                       "KANJIA_LEDGER_FLUSH_S": "0.05"},
                        sinks=[records.append])
        with ServerThread(app) as gateway:
            it = Loop(sandbox, gateway, database, records)
            it.traffic()
            yield it


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["reconcile", *args], catch_exceptions=False)


def test_honest_run_has_no_difference(loop: Loop, tmp_path: Path) -> None:
    files = [
        ("deepseek", [loop.export(tmp_path, "deepseek", "completions"),
                      loop.export(tmp_path, "deepseek", "costs")]),
        ("openai", [loop.export(tmp_path, "openai", "completions"),
                    loop.export(tmp_path, "openai", "embeddings"),
                    loop.export(tmp_path, "openai", "costs")]),
        ("anthropic", [loop.export(tmp_path, "anthropic", "completions"),
                       loop.export(tmp_path, "anthropic", "costs")]),
        ("qwen", [loop.export(tmp_path, "qwen", "completions"),
                  loop.export(tmp_path, "qwen", "costs")]),
    ]
    for vendor, paths in files:
        # costs to a millionth of a currency unit: kanjia prices as the vendor bills
        args = ["--vendor", vendor, "--db", loop.database, "--json", "--cost-epsilon", "1e-6"]
        for p in paths:
            args += ["--file", str(p)]
        result = run(*args)
        out = json.loads(result.output)
        assert out["differences"] == [], (vendor, out["differences"])
        assert result.exit_code == 0 and out["matched"] is True
        compared = {e["file"]: e for e in out["exports"]}
        assert all(e["lines"] >= 1 for e in compared.values()), compared
    # the cached prompts were compared (not only zeros): the ledger and the export agree
    usage = json.loads(loop.export(tmp_path, "deepseek", "completions").read_text())
    cached = sum(r.get("input_cached_tokens") or 0 for b in usage["data"] for r in b["results"])
    assert cached > 0
    text = run("--vendor", "deepseek", "--db", loop.database,
               "--file", str(loop.export(tmp_path, "deepseek", "completions")))
    assert text.exit_code == 0
    assert "no differences" in text.output


def test_injected_difference_is_found(loop: Loop, tmp_path: Path) -> None:
    loop.control("POST", "/_sandbox/usage/skew", {"vendor": "deepseek", "model": "deepseek-chat",
                                                  "field": "output_tokens", "factor": 1.5})
    loop.control("POST", "/_sandbox/usage/skew", {"vendor": "deepseek", "model": "deepseek-chat",
                                                  "field": "cost", "add": 0.02})
    try:
        usage = loop.export(tmp_path, "deepseek", "completions")
        costs = loop.export(tmp_path, "deepseek", "costs")
    finally:
        assert loop.control("DELETE", "/_sandbox/usage/skew") == {"cleared": 2}
    result = run("--vendor", "deepseek", "--db", loop.database, "--file", str(usage),
                 "--file", str(costs), "--json")
    assert result.exit_code == 1
    out = json.loads(result.output)
    found = {(d["model"], d["field"]): d for d in out["differences"]}
    assert set(found) == {("deepseek-chat", "output_tokens"), ("deepseek-chat", "cost")}
    tokens = found[("deepseek-chat", "output_tokens")]
    assert tokens["vendor"] > tokens["ledger"] > 0
    assert tokens["difference"] == tokens["ledger"] - tokens["vendor"]
    cost = found[("deepseek-chat", "cost")]
    assert cost["currency"] == "CNY" and cost["vendor"] > cost["ledger"] > 0
    # the same files in text form: one line per difference, exit 1
    text = run("--vendor", "deepseek", "--db", loop.database, "--file", str(usage),
               "--file", str(costs))
    assert text.exit_code == 1
    assert "2 differences" in text.output and "output_tokens" in text.output
    # a small skew hides within a relative tolerance, not within the default one
    loop.control("POST", "/_sandbox/usage/skew", {"vendor": "deepseek", "field": "requests",
                                                  "add": 1})
    try:
        usage = loop.export(tmp_path, "deepseek", "completions")
    finally:
        loop.control("DELETE", "/_sandbox/usage/skew")
    assert run("--vendor", "deepseek", "--db", loop.database, "--file", str(usage)
               ).exit_code == 1
    assert run("--vendor", "deepseek", "--db", loop.database, "--file", str(usage),
               "--tolerance", "50%").exit_code == 0


def test_sandbox_counts_what_the_ledger_misses(loop: Loop, tmp_path: Path) -> None:
    """A request the vendor served but kanjia never metered (here: sent to the sandbox
    directly) is a difference: the vendor bills a request the ledger does not have."""
    req = urllib.request.Request(
        loop.sandbox.base_url("moonshot") + "/chat/completions",
        data=json.dumps({"model": "moonshot-v1-8k", "messages": [
            {"role": "user", "content": "behind the gateway's back"}]}).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer x"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    usage = loop.export(tmp_path, "moonshot", "completions")
    result = run("--vendor", "moonshot", "--db", loop.database, "--file", str(usage), "--json")
    assert result.exit_code == 1
    out = json.loads(result.output)
    fields = {d["field"]: d for d in out["differences"] if d["model"] == "moonshot-v1-8k"}
    assert fields["requests"]["ledger"] == 0 and fields["requests"]["vendor"] == 1


def test_closing_the_loop_after_a_run(loop: Loop) -> None:
    """What `kanjia demo` can print at its end: the run's ledger reconciled with the
    sandbox's export of every vendor it called, in one line."""
    from kanjia.catalog import load_catalog
    from kanjia.cli._sandbox_reconcile import reconcile_with_sandbox

    fresh = [r for r in loop.records if r.vendor in ("deepseek", "openai", "anthropic", "qwen")]
    line = reconcile_with_sandbox(loop.sandbox.url, loop.database, fresh,
                                  load_catalog().fx.convert)
    assert line.startswith("reconciled against the sandbox's usage export: no differences "
                           "(4 vendors"), line
    loop.control("POST", "/_sandbox/usage/skew", {"vendor": "qwen", "field": "input_tokens",
                                                  "add": 5})
    try:
        line = reconcile_with_sandbox(loop.sandbox.url, loop.database, fresh,
                                      load_catalog().fx.convert)
    finally:
        loop.control("DELETE", "/_sandbox/usage/skew")
    assert ": 1 difference " in line and "qwen/qwen-plus" in line and "input_tokens" in line


def test_broken_stream_shows_as_an_estimate_against_the_vendors_count(
        loop: Loop, tmp_path: Path) -> None:
    """The vendor generated (and bills) the whole answer of a stream whose connection
    broke; the ledger has at most an estimate of what arrived: a difference."""
    with loop.client() as c:
        try:
            stream = c.chat.completions.create(
                model="doubao/doubao-pro-32k", stream=True,
                messages=[{"role": "user",
                           "content": "long [[sandbox:tokens=400]] [[sandbox:fault=reset]]"}])
            for _ in stream:
                pass
        except openai.APIError:
            pass
    loop.sent += 1
    loop.wait_for_ledger()
    usage = loop.export(tmp_path, "doubao", "completions")
    out = json.loads(run("--vendor", "doubao", "--db", loop.database, "--file", str(usage),
                         "--json").output)
    diff = next(d for d in out["differences"] if d["field"] == "output_tokens")
    assert diff["vendor"] == 400 and diff["ledger"] < 400
    # the ledger keeps either nothing (the break came before the client's first byte: a
    # failed request) or an estimate of what arrived, and says so
    assert diff["ledger"] == 0 or diff["estimated_rows"] == 1
