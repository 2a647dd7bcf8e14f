"""``kanjia serve --workers N``: N gateway processes answering on one port.

The parent binds the listening socket once and starts N worker processes
(``python -m kanjia.server.run --worker FD``) that inherit it, so the kernel hands each
new connection to whichever worker accepts first. Each worker builds its own app from
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


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=_BACKLOG)
    sock.set_inheritable(True)
    return sock


def run_workers(host: str, port: int, workers: int) -> int:
    """Run ``workers`` gateway processes on (host, port) until a signal or a worker's
    death; returns the exit status for the parent."""
    sock = _listen(host, port)
    fd = sock.fileno()
    procs = [subprocess.Popen([sys.executable, "-m", "kanjia.server.run", "--worker", str(fd)],
                              pass_fds=(fd,)) for _ in range(workers)]
    sock.close()  # the workers hold it now
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
