"""The master key is compared in one place: ``kanjia.metering.is_master_key``."""

from __future__ import annotations

import re
from pathlib import Path

import kanjia
from kanjia.metering import is_master_key

PACKAGE = Path(kanjia.__file__).parent


def test_is_master_key() -> None:
    assert is_master_key("sk-master", "sk-master")
    assert not is_master_key("sk-master2", "sk-master")
    assert not is_master_key("", "sk-master")
    assert not is_master_key(None, "sk-master")
    assert not is_master_key("sk-master", None)
    assert not is_master_key("", "")        # no master key set: nobody is admin


def test_nothing_else_compares_with_the_master_key() -> None:
    """No other module compares a key with the master key itself."""
    pattern = re.compile(r"compare_digest\([^\n]*\n?[^\n]*\b_?master\.encode\(\)")
    found = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                   if p.relative_to(PACKAGE).parts[0] != "sandbox"
                   and pattern.search(p.read_text(encoding="utf-8")))
    assert found == ["metering/_registry.py"]
