"""``kanjia serve --workers N``: N gateway processes answering on one port.

The parent binds the port (so a port in use fails at once) and starts N worker processes
(``kanjia.server.run.worker_main``), each inheriting a socket of its own: N sockets bound
to one port with ``SO_REUSEPORT``, so the kernel spreads new connections evenly over the
workers (by a hash of the client's address and port). One listening socket shared by
every worker instead lets whichever worker wakes first accept a burst of connections:
wrk's 64 connections landed 64/0, 44/20, 59/5 on two workers, so one worker was
saturated while the other idled. A worker's socket starts listening (joins the group the
kernel balances over) only when that worker serves, after its start-up: no connection
waits in the queue of a worker still loading. Elsewhere than on Linux the workers share
one listening socket. Each worker builds its own app from
the environment (``KANJIA_CONFIG`` / ``KANJIA_SETTINGS_JSON``, set by the parent) and
runs uvicorn on the inherited socket. The parent only supervises: SIGINT/SIGTERM go to
every worker (each finishes its requests and flushes its ledger); if a worker dies, the
others are stopped too and the parent exits with its status, so a process manager sees
the failure instead of a gateway quietly running at a fraction of its capacity.

Each worker has its own ledger (journal, batches, writer process), and a ledger writes
its queued rows every ``KANJIA_LEDGER_FLUSH_S`` (0.1 s): N workers would write N times as
many batches, each 1/N the size, and a batch costs the writer about 0.8 ms plus a few
microseconds a row (PostgreSQL; estimated from the writers' CPU at one and two workers).
Unless that variable is set, each worker flushes every N x 0.1 s, so the gateway as a whole
writes as many batches as one process: rows reach the database up to N x 0.1 s after their
request (the journal has each row on disk before its response either way).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType

__all__ = ["run_workers"]

_BACKLOG = 2048
_STOP_GRACE_S = 15.0
# not ``python -m kanjia.server.run``: the package imports that module first, and runpy
# then warns at every worker's start that it runs a module already imported
_WORKER = "import sys; from kanjia.server.run import worker_main; worker_main(int(sys.argv[1]))"
_FLUSH_ENV = "KANJIA_LEDGER_FLUSH_S"
_FLUSH_S = 0.1  # one gateway's ledger flush interval (``Metering.create``'s default)


def bind(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets bound to (host, port), one per worker, with ``SO_REUSEPORT``
    (the kernel balances connections between them once each listens; its worker's
    uvicorn calls ``listen`` when it starts serving); one shared socket, listening
    already, where the platform lacks that. Port 0: the first socket's port is used for
    the others."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Linux balances connections between SO_REUSEPORT sockets; other systems may not
    if count < 2 or not hasattr(socket, "SO_REUSEPORT") or not sys.platform.startswith("linux"):
        shared = socket.create_server((host, port), family=family, backlog=_BACKLOG)
        shared.set_inheritable(True)
        return [shared]
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, socks[0].getsockname()[1] if len(socks) > 1 else port))
            sock.set_inheritable(True)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


def worker_env(environ: Mapping[str, str], workers: int) -> dict[str, str]:
    """The workers' environment: each flushes its ledger every ``workers`` x 0.1 s unless
    ``KANJIA_LEDGER_FLUSH_S`` says otherwise (see the module's docstring)."""
    env = dict(environ)
    if not env.get(_FLUSH_ENV):
        env[_FLUSH_ENV] = repr(round(_FLUSH_S * workers, 3))
    return env


def run_workers(host: str, port: int, workers: int) -> int:
    """Run ``workers`` gateway processes on (host, port) until a signal or a worker's
    death; returns the exit status for the parent."""
    socks = bind(host, port, workers)
    env = worker_env(os.environ, workers)
    procs = []
    for i in range(workers):
        fd = socks[i % len(socks)].fileno()
        procs.append(subprocess.Popen([sys.executable, "-c", _WORKER, str(fd)], pass_fds=(fd,),
                                      env=env))
    for sock in socks:
        sock.close()  # the workers hold them now
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    status = 0
    while not stopping.is_set():
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            status = dead[0].returncode or 1
            print(f"kanjia: worker {dead[0].pid} exited with status {dead[0].returncode}; "
                  "stopping the others", file=sys.stderr)
            break
        stopping.wait(0.5)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE_S
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return status
