"""Real gateway processes (``python -m kanjia serve``) and a load driver for them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

MASTER = "test-master-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayProcess:
    def __init__(self, sandbox_url: str, database: str, journal: Path, log: Path, *,
                 redis: str | None = None, flush_s: float | None = None,
                 config: Path | None = None, own_group: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "kanjia", "serve", "--sandbox", sandbox_url,
                     "--db", database, "--port", str(self.port)]
        if redis:
            self.args += ["--redis", redis]
        if config is not None:
            self.args += ["--config", str(config)]
        self.env = {**os.environ, "KANJIA_MASTER_KEY": MASTER,
                    "KANJIA_JOURNAL_DIR": str(journal)}
        if flush_s is not None:
            self.env["KANJIA_LEDGER_FLUSH_S"] = str(flush_s)
        self.log = log
        #: a process group of its own, as a terminal gives a foreground command (Ctrl-C
        #: then reaches the gateway and every process it started)
        self.own_group = own_group
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> GatewayProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=out,
                                         start_new_session=self.own_group)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("gateway did not start")

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout: float = 20) -> bool:
        """SIGTERM; True if it shut down gracefully (uvicorn re-raises the signal after
        its graceful shutdown, so the exit status is -SIGTERM either way: the log tells)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        return rc in (0, -signal.SIGTERM) and "Traceback" not in self.log.read_text()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def chat_body(tokens: int = 20, max_tokens: int | None = None, text: str = "hello",
              model: str = "deepseek/deepseek-chat") -> dict[str, Any]:
    return {"model": model, "max_tokens": max_tokens or tokens,
            "messages": [{"role": "user", "content": f"{text} [[sandbox:tokens={tokens}]]"}]}


@dataclass
class Outcome:
    status: int
    request_id: str | None
    done_at: float
    code: str | None = None


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)

    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200]


async def post_chat(session: aiohttp.ClientSession, url: str, body: dict[str, Any],
                    key: str | None) -> Outcome:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with session.post(url + "/v1/chat/completions", json=body, headers=headers) as resp:
        data = await resp.read()
        code = None
        if resp.status != 200:
            import json

            code = json.loads(data)["error"]["code"]
        return Outcome(resp.status, resp.headers.get("x-kanjia-request-id"), time.time(), code)


async def admin(session: aiohttp.ClientSession, url: str, method: str, path: str,
                body: dict[str, Any] | None = None) -> tuple[int, Any]:
    async with session.request(method, url + path, json=body,
                               headers={"Authorization": f"Bearer {MASTER}"}) as resp:
        return resp.status, await resp.json()


async def hammer(urls: list[str], key: str | None, seconds: float, concurrency: int,
                 body: dict[str, Any]) -> Load:
    """Send requests back to back from ``concurrency`` workers for ``seconds``."""
    load = Load()
    stop = time.monotonic() + seconds
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        async def worker(i: int) -> None:
            url = urls[i % len(urls)]
            while time.monotonic() < stop:
                try:
                    load.outcomes.append(await post_chat(session, url, body, key))
                except aiohttp.ClientError:
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return load
