"""Fixtures for kanjia.local: a fake llama-server executable and a private state folder."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from kanjia.local import ServerOptions

_FAKE = Path(__file__).with_name("fake_llama_server.py")


@pytest.fixture
def fake_binary(tmp_path: Path) -> Path:
    """An executable named llama-server that runs the fake server."""
    path = tmp_path / "bin" / "llama-server"
    path.parent.mkdir()
    path.write_text(f"#!{sys.executable}\n" + _FAKE.read_text("utf-8"), "utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "tiny-model.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF" + b"\0" * 60)
    return path


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def fake_options(fake_binary: Path, fake_model: Path) -> ServerOptions:
    return ServerOptions(port=0, model_path=str(fake_model), server_path=str(fake_binary),
                         alias="smollm2-135m")
