"""``kanjia serve --workers N``: N gateway processes answering on one port.

The parent binds the port and starts N worker processes (``python -m kanjia.server.run
--worker FD``), each inheriting a listening socket of its own: N sockets on one port with
``SO_REUSEPORT``, so the kernel spreads new connections evenly over the workers (by a
hash of the client's address and port). One socket shared by every worker instead lets
whichever worker wakes first accept a burst of connections: wrk's 64 connections landed
64/0, 44/20, 59/5 on two workers, so one worker was saturated while the other idled.
Elsewhere than on Linux the workers share one socket. Each worker builds its own app from
the environment (``KANJIA_CONFIG`` / ``KANJIA_SETTINGS_JSON``, set by the parent) and
runs uvicorn on the inherited socket. The parent only supervises: SIGINT/SIGTERM go to
every worker (each finishes its requests and flushes its ledger); if a worker dies, the
others are stopped too and the parent exits with its status, so a process manager sees
the failure instead of a gateway quietly running at a fraction of its capacity.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from types import FrameType

__all__ = ["run_workers"]

_BACKLOG = 2048
_STOP_GRACE_S = 15.0


def listen(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on (host, port), one per worker, with ``SO_REUSEPORT``
    (the kernel balances connections between them); one shared socket where the
    platform lacks it. Port 0: the first socket's port is used for the others."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Linux balances connections between SO_REUSEPORT sockets; other systems may not
    reuse = count > 1 and hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")
    first = socket.create_server((host, port), family=family, backlog=_BACKLOG,
                                 reuse_port=reuse)
    socks = [first]
    if reuse:
        bound = first.getsockname()[1]
        socks += [socket.create_server((host, bound), family=family, backlog=_BACKLOG,
                                       reuse_port=True) for _ in range(count - 1)]
    for sock in socks:
        sock.set_inheritable(True)
    return socks


def run_workers(host: str, port: int, workers: int) -> int:
    """Run ``workers`` gateway processes on (host, port) until a signal or a worker's
    death; returns the exit status for the parent."""
    socks = listen(host, port, workers)
    procs = []
    for i in range(workers):
        fd = socks[i % len(socks)].fileno()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "kanjia.server.run", "--worker", str(fd)], pass_fds=(fd,)))
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
