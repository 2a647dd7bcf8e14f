"""``kanjia local start/stop/status``: the server's life, recorded in the state folder."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from kanjia.config import Settings, VendorSettings
from kanjia.errors import LocalServerError
from kanjia.local._paths import LocalPaths, find_paths
from kanjia.local._server import (
    LocalServer,
    ServerOptions,
    health_ok,
    is_server_process,
    start_server,
    stop_pid,
)
from kanjia.local._state import LocalState, clear_state, read_state, write_state

__all__ = [
    "VENDOR",
    "LocalStatus",
    "gateway_overrides",
    "local_status",
    "run_foreground",
    "start_detached",
    "stop_local",
]

#: the vendor (vendors.toml, catalog/data/llamacpp.toml) a local server is reached as
VENDOR = "llamacpp"
_BASE_URL_ENV = "LLAMACPP_BASE_URL"
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True, slots=True)
class LocalStatus:
    state: LocalState | None
    healthy: bool

    @property
    def running(self) -> bool:
        return self.state is not None

    def to_dict(self) -> dict[str, Any]:
        return {"running": self.running, "healthy": self.healthy,
                **(self.state.to_dict() if self.state else {})}


def _record(server: LocalServer, detached: bool, log: Path | None) -> LocalState:
    return LocalState(pid=server.pid, host=server.host, port=server.port, model=server.model,
                      model_path=str(server.paths.model), server_path=str(server.paths.server),
                      started_at=time.time(), detached=detached,
                      log=str(log) if log else None)


def _refuse_second(folder: Path) -> None:
    state = read_state(folder)
    if state is not None and is_server_process(state.pid, state.server_path):
        raise LocalServerError(f"a local server is already running (pid {state.pid}, "
                               f"{state.base_url}); `kanjia local stop` first")


def start_detached(options: ServerOptions, folder: Path, *, ready_timeout: float = 60.0,
                   paths: LocalPaths | None = None) -> LocalState:
    """Start llama-server in the background; return once ``/health`` answers."""
    _refuse_second(folder)
    paths = paths or find_paths(model=options.model_path, server=options.server_path)
    log = folder / "server.log"
    server = start_server(options, paths=paths, log=log)
    try:
        server.wait_ready(ready_timeout)
    except BaseException:
        server.stop()
        raise
    state = _record(server, True, log)
    write_state(folder, state)
    return state


def run_foreground(options: ServerOptions, folder: Path, *,
                   on_ready: Callable[[LocalState], None] = lambda s: None,
                   ready_timeout: float = 60.0, paths: LocalPaths | None = None) -> int:
    """Run llama-server until it exits, forwarding SIGINT/SIGTERM/SIGHUP to it.

    Returns 0 when it stopped because of a forwarded signal, else its exit code.
    """
    _refuse_second(folder)
    paths = paths or find_paths(model=options.model_path, server=options.server_path)
    server = start_server(options, paths=paths)
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if server.process.poll() is None:
            server.process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in _FORWARDED}
    state = _record(server, False, None)
    write_state(folder, state)
    try:
        try:
            server.wait_ready(ready_timeout)
        except LocalServerError:
            if received:
                return 0
            raise
        on_ready(state)
        code = server.process.wait()
        return 0 if received else int(code)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
        clear_state(folder, server.pid)


def local_status(folder: Path) -> LocalStatus:
    state = read_state(folder)
    if state is not None and not is_server_process(state.pid, state.server_path):
        clear_state(folder, state.pid)
        state = None
    healthy = state is not None and health_ok(state.host, state.port)
    return LocalStatus(state, healthy)


def stop_local(folder: Path, timeout: float = 10.0) -> LocalState | None:
    """Stop the recorded server; the record it had, or None if none was running."""
    state = read_state(folder)
    if state is None:
        return None
    if not is_server_process(state.pid, state.server_path):
        clear_state(folder, state.pid)
        return None
    if not stop_pid(state.pid, timeout):
        raise LocalServerError(f"llama-server (pid {state.pid}) did not stop")
    clear_state(folder, state.pid)
    return state


def gateway_overrides(settings: Settings, env: Mapping[str, str],
                      folder: Path) -> dict[str, Any]:
    """Settings overrides that let a gateway reach a running ``kanjia local`` server as
    the llamacpp vendor; empty when the vendor is configured already (base URL in the
    environment or config, deployments, or disabled) or no server is running."""
    configured = settings.vendors.get(VENDOR, VendorSettings())
    if env.get(_BASE_URL_ENV) or configured.base_url or configured.deployments \
            or configured.enabled is False:
        return {}
    status = local_status(folder)
    if status.state is None:
        return {}
    return {"vendors": {VENDOR: {"base_url": status.state.base_url}}}
