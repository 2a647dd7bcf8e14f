"""Load TOML (the built-in defaults, then the user's file) into frozen Settings."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kanjia.config._settings import Settings
from kanjia.errors import ConfigError

__all__ = ["load_settings"]


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _defaults() -> dict[str, Any]:
    text = resources.files("kanjia.config").joinpath("default.toml").read_text("utf-8")
    return tomllib.loads(text)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Built-in defaults, merged with the file at ``path``, then keyword overrides
    (``server={"port": 9}``, ``sandbox_url=...``)."""
    data = _defaults()
    source = "built-in defaults"
    if path is not None:
        p = Path(path)
        source = str(p)
        try:
            user = tomllib.loads(p.read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: invalid TOML: {exc}") from None
        data = _merge(data, user)
    data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{source}: key {where!r}: {first['msg']}") from None
