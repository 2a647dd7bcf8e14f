"""Shared fixtures: the vendor sandbox and a gateway in front of it, both for real."""

from __future__ import annotations

import os

# One BLAS thread per test process (and the gateways it starts, which inherit the
# environment), set before anything imports numpy or SciPy. OpenBLAS's own threads spin
# for work on a busy 2-core machine: the router lab's L-BFGS fits took ~8x the wall time
# and ~10x the CPU time with them, and two pytest-xdist workers would double the contention.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from collections.abc import Iterator

import pytest

from kanjia.config import load_settings
from kanjia.sandbox import SandboxSettings, SandboxThread
from kanjia.server import ServerThread, build_app

#: the longest test files, longest first (each took 35-125 s of a 2-worker run on a busy
#: machine): they are collected first, so that with ``--dist loadfile
#: --no-loadscope-reorder`` (the README's test command) no worker is left running one of
#: them alone after the other has finished everything else
LONG_FILES = ("reliability/test_fuzz.py", "metering/test_budget_race.py",
              "metering/test_crash.py", "ingress/test_translate_fuzz.py",
              "cli/test_demo.py", "server/test_workers.py")


def _long_first(item: pytest.Item) -> int:
    path = item.path.as_posix()
    return next((i for i, name in enumerate(LONG_FILES) if path.endswith("/tests/" + name)),
                len(LONG_FILES))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_long_first)  # stable: every file keeps its own tests' order
    if os.environ.get("KANJIA_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow test: set KANJIA_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxThread]:
    sb = SandboxThread(SandboxSettings(port=0, hang_s=3.0))
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture(scope="session")
def gateway(sandbox: SandboxThread,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    queue = tmp_path_factory.mktemp("batch") / "queue.db"
    settings = load_settings(None, sandbox_url=sandbox.url, batch_queue=str(queue),
                             server={"upstream_timeout_s": 2.0, "first_byte_timeout_s": 2.0})
    with ServerThread(build_app(settings, env={})) as srv:
        yield srv


@pytest.fixture()
def client(gateway: ServerThread):  # type: ignore[no-untyped-def]
    import openai

    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="test", max_retries=0,
                       timeout=20) as c:
        yield c
