"""Shared benchmark plumbing: start the sandbox and gateways as subprocesses pinned to
cores, drive them with wrk (or an aiohttp client when wrk is absent), parse figures.

Every script in bench/ prints JSON; the last line of output is one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

CHAT_BODY = {
    "model": "openai/gpt-4o-mini",
    "max_tokens": 40,
    "messages": [
        {"role": "system", "content": "You are a helpful assistant for procurement teams. " * 8},
        {
            "role": "user",
            "content": "Compare the price per million tokens of three vendors "
            "and recommend one for a customer-service bot. " * 6,
        },
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu(core: int | None) -> list[str]:
    if core is None or shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return []
    return ["taskset", "-c", str(core)]


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def process(
    args: Sequence[str],
    health_url: str,
    core: int | None = None,
    env: dict[str, str] | None = None,
    health_timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    # stderr goes to a file: a pipe nobody reads fills up and blocks the server for good
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [*_cpu(core), *args],
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            wait_http(health_url, timeout=health_timeout)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def sandbox(core: int | None = 0) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(
        [sys.executable, "-m", "kanjia", "sandbox", "--port", str(port)],
        f"{url}/_sandbox/stats",
        core,
    ):
        yield url


@contextlib.contextmanager
def gateway(
    sandbox_url: str,
    core: int | None = 1,
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(
        [
            sys.executable,
            "-m",
            "kanjia",
            "serve",
            "--sandbox",
            sandbox_url,
            "--port",
            str(port),
            *extra,
        ],
        f"{url}/healthz",
        core,
        env,
    ):
        yield url


@dataclass
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    def as_dict(self) -> dict[str, float]:
        return {
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "requests": self.requests,
            "errors": self.errors,
        }


_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
local f = io.open("%s", "rb"); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, '
    .. '"p99_us": %%d, "errors": %%d, "non2xx": %%d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout,
    e.status))
end
"""


def load(
    url: str,
    body: dict[str, object],
    connections: int,
    seconds: float,
    core: int | None = 0,
    api_key: str = "bench",
) -> LoadResult:
    if shutil.which("wrk"):
        return _wrk(url, body, connections, seconds, core, api_key)
    return asyncio.run(_aio(url, body, connections, seconds, api_key))


def _wrk(
    url: str,
    body: dict[str, object],
    connections: int,
    seconds: float,
    core: int | None,
    api_key: str,
) -> LoadResult:
    with tempfile.TemporaryDirectory() as tmp:
        body_path = Path(tmp) / "body.json"
        body_path.write_bytes(orjson.dumps(body))
        script = Path(tmp) / "post.lua"
        script.write_text(_LUA % (api_key, body_path))
        out = subprocess.run(
            [
                *_cpu(core),
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, int(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    d = json.loads(line[8:])
    return LoadResult(
        d["requests"] / (d["duration_us"] / 1e6),
        d["p50_us"] / 1000,
        d["p99_us"] / 1000,
        d["requests"],
        d["errors"] + d["non2xx"],
    )


async def _aio(
    url: str, body: dict[str, object], connections: int, seconds: float, api_key: str
) -> LoadResult:
    import aiohttp

    data = orjson.dumps(body)
    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            async with session.post(url, data=data, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
            lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        await asyncio.gather(*(worker(s) for _ in range(connections)))
    took = time.perf_counter() - t0
    lat.sort()
    pick = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: 0.0)
    return LoadResult(len(lat) / took, pick(0.5), pick(0.99), len(lat), errors)


def emit(result: dict[str, object]) -> None:
    print(json.dumps(result, sort_keys=True))


def percentiles(ms: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of a list of milliseconds, and how many there were."""
    ordered = sorted(ms)

    def pick(q: float) -> float:
        return float(statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1])

    return {
        "p50": float(statistics.median(ordered)),
        "p99": pick(99) if len(ordered) > 1 else float(ordered[0]),
        "max": float(ordered[-1]),
        "n": len(ordered),
    }
