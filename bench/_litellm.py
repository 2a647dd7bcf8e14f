"""Helpers for the side-by-side and soak benchmarks (vs_litellm.py, soak.py).

- ``ensure_litellm``: LiteLLM's proxy in its own virtual environment under
  ``bench/.venv-litellm`` (pinned version; never a project dependency; reused if present).
- ``Server``: a server subprocess pinned to a core, stderr to a log file (a pipe nobody
  reads would block a chatty server), with its pid for memory sampling.
- ``RssSampler``: samples the resident memory of a process tree from /proc.
- ``wrk``: the harness's wrk run, with a configurable per-request timeout (LiteLLM's
  requests take longer than the harness's 10 s at 256 connections).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import orjson

from _harness import _LUA, LoadResult, _cpu, free_port, wait_http

LITELLM_VERSION = "1.106.12"
BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venv-litellm"


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def litellm_installed_version() -> str | None:
    py = _venv_python()
    if not py.exists():
        return None
    out = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def ensure_litellm(log: bool = True) -> Path:
    """The ``litellm`` CLI of the pinned version, installing it on first use (about 90 s)."""
    if litellm_installed_version() != LITELLM_VERSION:
        if log:
            print(f"installing litellm[proxy]=={LITELLM_VERSION} into {VENV} ...", file=sys.stderr)
        if not _venv_python().exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [
                str(_venv_python()),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                f"litellm[proxy]=={LITELLM_VERSION}",
            ],
            check=True,
        )
    exe = VENV / "bin" / "litellm"
    if not exe.exists():
        raise RuntimeError(f"{exe} missing after install")
    return exe


def litellm_config(path: Path, sandbox_url: str, model: str = "openai/gpt-4o-mini") -> None:
    """One model, pointing at the sandbox's OpenAI path: the same upstream kanjia uses."""
    vendor_model = model.split("/", 1)[1]
    path.write_text(
        "model_list:\n"
        f"  - model_name: {model}\n"
        "    litellm_params:\n"
        f"      model: openai/{vendor_model}\n"
        f"      api_base: {sandbox_url}/openai\n"
        "      api_key: sandbox-key\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  num_retries: 0\n"
    )


class Server:
    """A server subprocess (pinned to ``core``) that is up once its health URL answers."""

    def __init__(
        self,
        args: Sequence[str],
        health_url: str,
        core: int | None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        start_timeout: float = 90.0,
    ) -> None:
        self.args = list(args)
        self.health_url = health_url
        self.core = core
        self.env = env
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            prefix="bench-", suffix=".log", delete=False
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_s = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Server:
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [*_cpu(self.core), *self.args],
            env={**os.environ, **(self.env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
        )
        try:
            deadline = time.monotonic() + self.start_timeout
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.args[0]} exited:\n{self.tail()}")
                try:
                    wait_http(self.health_url, timeout=1.0)
                    break
                except RuntimeError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{self.health_url} did not come up:\n{self.tail()}"
                        ) from None
        except BaseException:
            self.stop()
            raise
        self.started_s = time.monotonic() - t0
        return self

    def tail(self, n: int = 4000) -> str:
        try:
            return Path(self.log.name).read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if e is None:
            Path(self.log.name).unlink(missing_ok=True)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # ppid is the 2nd field after the parenthesised command name
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def rss_bytes(pid: int, tree: bool = True) -> int:
    """Resident memory of ``pid`` (and its descendants), from /proc/PID/status."""
    pids = [pid]
    if tree:
        i = 0
        while i < len(pids):
            pids.extend(_children(pids[i]))
            i += 1
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


class RssSampler:
    """Samples RSS of a process tree every ``interval`` seconds in a thread; keeps the peak
    and every sample (``samples``: (monotonic time, bytes))."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        tree_every = 25  # descendants are rare: rescan the tree every 5 s only
        n = 0
        tree_pids: list[int] = []
        while not self._stop.is_set():
            if n % tree_every == 0:
                tree_pids = _children(self.pid)
            v = rss_bytes(self.pid, tree=False) + sum(rss_bytes(p) for p in tree_pids)
            if v:
                self.samples.append((time.monotonic(), v))
                self.peak = max(self.peak, v)
            n += 1
            self._stop.wait(self.interval)

    def now(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def wrk(
    url: str,
    body: dict[str, object],
    connections: int,
    seconds: float,
    core: int | None = 0,
    api_key: str = "bench",
    timeout_s: float = 60.0,
) -> LoadResult:
    """Same Lua and parsing as the harness's wrk run; ``timeout_s`` per request."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is required: apt-get install wrk")
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
                f"{int(timeout_s)}s",
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
    dur = d["duration_us"] / 1e6
    return LoadResult(
        d["requests"] / dur if dur else 0.0,
        d["p50_us"] / 1000,
        d["p99_us"] / 1000,
        d["requests"],
        d["errors"] + d["non2xx"],
    )


@contextlib.contextmanager
def sandbox(core: int | None = 0) -> Iterator[str]:
    """The sandbox as a subprocess whose output goes to a log file. (The harness's
    ``sandbox()`` gives it a stderr pipe that nobody reads: under streaming load at c64
    the sandbox logs a traceback per connection wrk drops, fills the 64 KiB pipe and
    blocks for good.)"""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "kanjia", "sandbox", "--port", str(port)]
    with Server(args, f"{url}/_sandbox/stats", core):
        yield url


def master_key() -> str:
    return "sk-" + secrets.token_hex(32)


def kanjia_args(sandbox_url: str, port: int, extra: Sequence[str] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "kanjia",
        "serve",
        "--sandbox",
        sandbox_url,
        "--port",
        str(port),
        *extra,
    ]


__all__ = [
    "LITELLM_VERSION",
    "RssSampler",
    "Server",
    "ensure_litellm",
    "free_port",
    "kanjia_args",
    "litellm_config",
    "master_key",
    "rss_bytes",
    "sandbox",
    "wrk",
]
