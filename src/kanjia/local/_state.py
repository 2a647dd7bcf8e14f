"""The record of a running local server: ``server.json`` in kanjia's state folder.

``kanjia local start`` writes it (foreground or ``--detach``), ``stop`` and ``status``
read it, and ``kanjia serve`` uses it to reach the server as the ``llamacpp`` vendor.
The folder is ``$KANJIA_LOCAL_STATE`` if set, else ``$XDG_STATE_HOME/kanjia/local``
(``~/.local/state/kanjia/local``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["STATE_ENV", "LocalState", "clear_state", "pid_alive", "read_state",
           "state_dir", "write_state"]

STATE_ENV = "KANJIA_LOCAL_STATE"
_FILE = "server.json"


@dataclass(frozen=True, slots=True)
class LocalState:
    pid: int
    host: str
    port: int
    model: str
    model_path: str
    server_path: str
    started_at: float
    detached: bool
    log: str | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (what LLAMACPP_BASE_URL holds)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/v1"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "base_url": self.base_url}


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    explicit = env.get(STATE_ENV)
    if explicit:
        return Path(explicit)
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kanjia" / "local"


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live process (not a zombie) that we may signal."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        # field 3 is the state; "Z" is a zombie waiting for its parent to reap it
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def write_state(folder: Path, state: LocalState) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2), "utf-8")
    tmp.replace(path)
    return path


def read_state(folder: Path, *, prune: bool = True) -> LocalState | None:
    """The recorded server if its process is still alive; a stale record is removed."""
    path = folder / _FILE
    try:
        state = LocalState(**json.loads(path.read_text("utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        if prune:
            clear_state(folder)
        return None
    if not pid_alive(state.pid):
        if prune:
            clear_state(folder)
        return None
    return state


def clear_state(folder: Path, pid: int | None = None) -> None:
    """Remove the record (only if it is ``pid``'s, when given)."""
    path = folder / _FILE
    if pid is not None:
        try:
            if json.loads(path.read_text("utf-8")).get("pid") != pid:
                return
        except (OSError, ValueError):
            return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
