"""Bad price files are rejected with an error naming the file, the model and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanjia.catalog import load_catalog
from kanjia.errors import ConfigError

VENDOR = """
[vendor]
name = "Test"
region = "cn"
currency = "CNY"
pricing_urls = ["https://example.com"]
"""

MODEL = """
[[models]]
id = "m-1"
capabilities = ["chat"]

[[models.periods]]
start = 2024-05-21
input_mtok = 1
output_mtok = 2
source = "test source"
checked = 2026-11-28
evidence = "S"
"""


def _load(tmp_path: Path, text: str, name: str = "testvendor.toml") -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    load_catalog(extra_dirs=[tmp_path])


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    return info.value.message


def test_a_valid_extra_file_adds_a_vendor(tmp_path: Path) -> None:
    (tmp_path / "testvendor.toml").write_text(VENDOR + MODEL, encoding="utf-8")
    cat = load_catalog(extra_dirs=[tmp_path])
    entry = cat.get("testvendor", "m-1")
    assert entry is not None and entry.region == "cn"
    assert cat.vendors["testvendor"].name == "Test"


def test_unknown_key_names_file_model_and_field(tmp_path: Path) -> None:
    msg = _error(tmp_path, VENDOR + MODEL.replace("output_mtok = 2", "output_mtok = 2\nouptut = 3"))
    assert "testvendor.toml" in msg
    assert "model 'm-1'" in msg
    assert "periods[0].ouptut" in msg


def test_bad_value_names_the_field(tmp_path: Path) -> None:
    msg = _error(tmp_path, VENDOR + MODEL.replace("input_mtok = 1", "input_mtok = -1"))
    assert "model 'm-1'" in msg and "periods[0].input_mtok" in msg


def test_bad_evidence_level(tmp_path: Path) -> None:
    msg = _error(tmp_path, VENDOR + MODEL.replace('evidence = "S"', 'evidence = "maybe"'))
    assert "model 'm-1'" in msg and "periods[0].evidence" in msg


def test_missing_source_is_an_error(tmp_path: Path) -> None:
    msg = _error(tmp_path, VENDOR + MODEL.replace('source = "test source"\n', ""))
    assert "model 'm-1'" in msg and "periods[0].source" in msg


def test_unknown_capability(tmp_path: Path) -> None:
    msg = _error(tmp_path, VENDOR + MODEL.replace('["chat"]', '["chat", "telepathy"]'))
    assert "model 'm-1'" in msg and "capabilities" in msg


def test_vendor_level_field(tmp_path: Path) -> None:
    msg = _error(tmp_path, VENDOR.replace('region = "cn"', 'region = "mars"') + MODEL)
    assert "testvendor.toml" in msg and "vendor.region" in msg


def test_periods_out_of_order(tmp_path: Path) -> None:
    second = MODEL.split("[[models.periods]]")[1].replace("2024-05-21", "2024-01-01")
    msg = _error(tmp_path, VENDOR + MODEL + "[[models.periods]]" + second)
    assert "model 'm-1'" in msg and "periods[1].start" in msg


def test_free_period_with_a_price(tmp_path: Path) -> None:
    msg = _error(tmp_path, VENDOR + MODEL.replace("input_mtok = 1", "free = true\ninput_mtok = 1"))
    assert "model 'm-1'" in msg and "free" in msg


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    msg = _error(tmp_path, VENDOR + "[[models]\n")
    assert "testvendor.toml" in msg and "invalid TOML" in msg


def test_duplicate_model_and_alias(tmp_path: Path) -> None:
    msg = _error(tmp_path, VENDOR + MODEL + MODEL)
    assert "model 'm-1'" in msg and "already used" in msg
    (tmp_path / "testvendor.toml").unlink()
    clash = MODEL.replace('id = "m-1"', 'id = "m-2"\naliases = ["M-1"]')
    msg = _error(tmp_path, VENDOR + MODEL + clash)
    assert "model 'm-2'" in msg and "'M-1'" in msg


def test_window_hours_are_checked(tmp_path: Path) -> None:
    window = """
  [[models.periods.windows]]
  label = "offpeak"
  hours = ["25:00-08:30"]
  input_mtok = 1
  output_mtok = 1
"""
    msg = _error(tmp_path, VENDOR + MODEL + window)
    assert "model 'm-1'" in msg and "windows[0].hours" in msg


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        load_catalog(extra_dirs=[tmp_path / "nope"])
