"""Running the sandbox: the thread runner for synchronous code, the CLI, and a
throughput smoke test (no timing assertions: performance belongs to bench/)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import aiohttp
import click
import pytest
from click.testing import CliRunner

from kanjia.cli import sandbox as cli_module
from kanjia.sandbox import VENDORS, Sandbox, SandboxThread, run_sandbox


def post(url: str, body: object, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_thread_runner_serves_synchronous_clients() -> None:
    with SandboxThread() as sb:
        assert sb.url == f"http://127.0.0.1:{sb.port}"
        assert sb.base_url("deepseek") == f"{sb.url}/deepseek"
        body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}
        status, reply = post(
            sb.base_url("deepseek") + "/chat/completions", body, {"Authorization": "Bearer k"}
        )
        assert status == 200 and reply["object"] == "chat.completion"
        status, reply = post(
            sb.base_url("deepseek") + "/chat/completions", body, {"Authorization": "Bearer bad-key"}
        )
        assert status == 401
        with pytest.raises(ValueError):
            sb.base_url("nobody")
        with pytest.raises(RuntimeError):
            sb.start()
    with pytest.raises(urllib.error.URLError):
        post(sb.base_url("deepseek") + "/chat/completions", body, {})


def test_thread_runner_reports_a_busy_port() -> None:
    with SandboxThread() as first:
        from kanjia.sandbox import SandboxSettings

        with pytest.raises(RuntimeError):
            SandboxThread(SandboxSettings(port=first.port)).start()


def test_sandbox_urls() -> None:
    assert Sandbox("0.0.0.0", 9000).url == "http://127.0.0.1:9000"
    assert Sandbox("::", 9000).url == "http://[::1]:9000"
    assert Sandbox("127.0.0.1", 9000).base_url("gemini") == "http://127.0.0.1:9000/gemini"


def test_cli_command() -> None:
    assert isinstance(cli_module.sandbox, click.Command)
    result = CliRunner().invoke(cli_module.sandbox, ["--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--ttft-ms", "--chunk-ms", "--seed"):
        assert option in result.output


def test_cli_announces_every_vendor(capsys: pytest.CaptureFixture[str]) -> None:
    cli_module._announce(Sandbox("127.0.0.1", 9000))
    out = capsys.readouterr().out
    for vendor in VENDORS:
        assert f"http://127.0.0.1:9000/{vendor}" in out


async def test_throughput_smoke() -> None:
    """A few hundred concurrent requests across vendors all succeed."""
    async with run_sandbox() as sb, aiohttp.ClientSession() as session:
        headers = {"Authorization": "Bearer k"}

        async def one(i: int) -> int:
            vendor = VENDORS[i % 15]
            body = {
                "model": "m",
                "stream": i % 4 == 0,
                "messages": [{"role": "user", "content": f"q{i}"}],
            }
            async with session.post(
                sb.base_url(vendor) + "/chat/completions", json=body, headers=headers
            ) as r:
                await r.read()
                return r.status

        results = await asyncio.gather(*(one(i) for i in range(600)))
        assert results == [200] * 600
