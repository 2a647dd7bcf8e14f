"""One ``llama-server`` process: its command line, start, readiness and stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from kanjia.errors import LocalServerError
from kanjia.local._paths import LocalPaths, find_paths
from kanjia.local._state import pid_alive

__all__ = ["MODEL_ALIAS", "LocalServer", "ServerOptions", "default_threads", "health_ok",
           "is_server_process", "server_command", "start_server", "stop_pid"]

#: the name llama-server serves the packaged model under: the catalog's llamacpp id
MODEL_ALIAS = "smollm2-135m"


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """How to run llama-server. ``port=0`` picks a free port."""

    host: str = "127.0.0.1"
    port: int = 8080
    #: generation threads (None: default_threads(), half the CPUs)
    threads: int | None = None
    ctx: int = 8192
    #: the model id the server reports and accepts (None: the packaged model's
    #: catalog id, or the GGUF file's stem for another model)
    alias: str | None = None
    model_path: str | None = None
    server_path: str | None = None
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def model_name(self) -> str:
        if self.alias:
            return self.alias
        return Path(self.model_path).stem if self.model_path else MODEL_ALIAS


def server_command(paths: LocalPaths, options: ServerOptions, port: int) -> list[str]:
    cmd = [str(paths.server), "--model", str(paths.model), "--host", options.host,
           "--port", str(port), "--ctx-size", str(options.ctx),
           "--alias", options.model_name()]
    cmd += ["--threads", str(options.threads or default_threads())]
    return [*cmd, *options.extra_args]


def default_threads() -> int:
    """Half the CPUs (at least 1): llama.cpp's threads spin at every step, so one
    thread per CPU collapses (to ~12 from ~95 tokens/s measured on 2 cores) as soon
    as anything else, the gateway included, wants a CPU."""
    return max(1, (os.cpu_count() or 1) // 2)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _root(host: str, port: int) -> str:
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def health_ok(host: str, port: int, timeout: float = 1.0) -> bool:
    """True once llama-server answers ``GET /health`` with 200 (503 while loading)."""
    try:
        with urllib.request.urlopen(f"{_root(host, port)}/health", timeout=timeout) as r:
            return int(r.status) == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _tail(path: Path | None, lines: int = 8) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text("utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return (" | log: " + " / ".join(text[-lines:])) if text else ""


class LocalServer:
    """A llama-server process this process started. Context manager: stops on exit."""

    def __init__(self, process: subprocess.Popen[bytes], options: ServerOptions,
                 paths: LocalPaths, port: int, log: Path | None) -> None:
        self.process = process
        self.options = options
        self.paths = paths
        self.port = port
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def host(self) -> str:
        return self.options.host

    @property
    def model(self) -> str:
        return self.options.model_name()

    @property
    def base_url(self) -> str:
        return f"{_root(self.host, self.port)}/v1"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once ``/health`` answers 200; raise if the process dies or it times out."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise LocalServerError(f"llama-server exited with code {code} before it was "
                                       f"ready{_tail(self.log)}")
            if health_ok(self.host, self.port):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise LocalServerError(f"llama-server was not ready after {timeout:.0f} s"
                                       f"{_tail(self.log)}")
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return int(self.process.returncode)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_server(options: ServerOptions | None = None, *, paths: LocalPaths | None = None,
                 log: Path | None = None) -> LocalServer:
    """Start llama-server in its own session (signals reach it only when sent to it).

    Output goes to ``log`` (truncated) when given, else to this process's stdout/stderr.
    Call ``wait_ready()`` before sending requests.
    """
    options = options or ServerOptions()
    paths = paths or find_paths(model=options.model_path, server=options.server_path)
    port = options.port or _free_port(options.host)
    if options.port and _port_in_use(options.host, port):
        raise LocalServerError(f"port {port} on {options.host} is in use: "
                               "`kanjia local status` / `kanjia local stop`, or pick --port")
    cmd = server_command(paths, options, port)
    out: IO[bytes] | None = None
    try:
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            out = log.open("wb")
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT if out else None,
                                   start_new_session=True)
    except OSError as exc:
        raise LocalServerError(f"cannot run {paths.server}: {exc}") from None
    finally:
        if out is not None:
            out.close()
    return LocalServer(process, options, paths, port, log)


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_server_process(pid: int, server_path: str) -> bool:
    """False when ``pid`` is alive but visibly runs something else (a reused pid)."""
    if not pid_alive(pid):
        return False
    args = _cmdline(pid)
    return args is None or any(os.path.basename(a) == os.path.basename(server_path)
                               for a in args[:2])


def stop_pid(pid: int, timeout: float = 10.0) -> bool:
    """Stop a server we do not hold a handle to (``--detach``); True if it is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.05)
    return not pid_alive(pid)
