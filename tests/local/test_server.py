"""llama-server's command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanjia.local import LocalPaths, ServerOptions
from kanjia.local._server import default_threads, server_command


def test_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = LocalPaths(model=Path("/m/SmolLM2.gguf"), server=Path("/b/llama-server"))
    cmd = server_command(paths, ServerOptions(threads=3, ctx=4096), 8123)
    assert cmd == ["/b/llama-server", "--model", "/m/SmolLM2.gguf", "--host", "127.0.0.1",
                   "--port", "8123", "--ctx-size", "4096", "--alias", "smollm2-135m",
                   "--threads", "3"]
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert default_threads() == 1
    cmd = server_command(paths, ServerOptions(model_path="/x/other.gguf",
                                              extra_args=("--poll", "0")), 1)
    assert cmd[-6:] == ["--alias", "other", "--threads", "1", "--poll", "0"]
    monkeypatch.setattr("os.cpu_count", lambda: None)
    assert default_threads() == 1
