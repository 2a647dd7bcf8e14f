"""The ledger writer process: ``python -m kanjia.ledger._writer_main`` (see ``_writer``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

from kanjia.ledger._writer import serve


def main() -> None:
    # only the end of its input stops it: the gateway's last flush must get through
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # the answers get a descriptor of their own; anything a library prints goes to stderr
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with contextlib.suppress(BrokenPipeError), out:
        asyncio.run(serve(sys.stdin.buffer, out))


if __name__ == "__main__":
    main()
