"""One module reads the ledger: ``kanjia.ledger.query`` issues every SELECT on
``usage_records``; elsewhere the table is only created (migrations) or written (the
ledger's writer)."""

from __future__ import annotations

import re
from pathlib import Path

import kanjia

PACKAGE = Path(kanjia.__file__).parent
HOME = PACKAGE / "ledger" / "query.py"

#: a read of the ledger table: ``FROM usage_records`` or ``FROM {TABLE}`` (its name in
#: ``ledger/_rows.py``), whatever the SQL around it
_READ = re.compile(r"\bFROM\s+(?:usage_records\b|\{TABLE\})", re.IGNORECASE)
#: the modules that may name the table: its definition, its migrations, its writers
_WRITERS = {"ledger/_rows.py", "ledger/store/_migrations.py", "ledger/_writer.py",
            "ledger/ledger.py", "ledger/query.py"}


def _sources() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text(encoding="utf-8")
            for p in PACKAGE.rglob("*.py")
            # the sandbox simulates vendors and has no ledger
            if p.relative_to(PACKAGE).parts[0] != "sandbox"}


def test_the_pattern_sees_a_read() -> None:
    assert _READ.search('db.fetch("SELECT day, COUNT(*)\\n FROM usage_records WHERE 1 = 1")')
    assert _READ.search('f"SELECT {cols} from {TABLE} WHERE {clause}"')
    assert not _READ.search('db.insert_ignore(TABLE, COLUMNS, KEY, rows)')


def test_only_the_query_module_reads_usage_records() -> None:
    sources = _sources()
    assert "ledger/query.py" in sources and _READ.search(sources["ledger/query.py"])
    readers = sorted(name for name, text in sources.items()
                     if name != "ledger/query.py" and _READ.search(text))
    assert readers == []


def test_only_writers_name_the_ledger_table() -> None:
    """Nothing else spells the table's name in code or imports ``TABLE`` (a docstring
    naming it is fine)."""
    named = sorted(name for name, text in _sources().items()
                   if name not in _WRITERS
                   and (re.search(r"[\"'][^\"'\n]*\busage_records\b", text.replace('"""', ""))
                        or re.search(r"import[^\n]*\bTABLE\b", text)))
    assert named == []
