from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from kanjia.config import load_settings
from kanjia.errors import ConfigError


def test_defaults_have_the_builtin_routes() -> None:
    s = load_settings()
    assert {"cheap-chat", "long-doc", "code", "cn-only"} <= set(s.routes)
    assert s.routes["long-doc"].min_context >= 128000


def test_bad_key_is_named(tmp_path: Path) -> None:
    p = tmp_path / "k.toml"
    p.write_text("[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"server\.prot"):
        load_settings(p)


def test_bad_value_is_named(tmp_path: Path) -> None:
    p = tmp_path / "k.toml"
    p.write_text("[server]\nport = 'eighty'\n")
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_settings(p)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "k.toml"
    p.write_text("[server\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(p)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(ValidationError):
        s.server.port = 1  # type: ignore[misc]


def test_budget_settings_for_unpriced_models() -> None:
    from kanjia.server.wiring import _unpriced

    s = load_settings(None, budgets={"unpriced_price": {"input_mtok": "20", "output_mtok": 60},
                                     "allow_unpriced": True})
    policy = _unpriced(s)
    assert policy.allow and policy.currency == "CNY" and policy.price is not None
    assert (policy.price.input_mtok, policy.price.output_mtok) == (20, 60)
    assert not _unpriced(load_settings(None)).allow
    with pytest.raises(ConfigError):
        load_settings(None, budgets={"unpriced_price": {"input_mtok": -1, "output_mtok": 1}})
