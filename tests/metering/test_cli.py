"""``kanjia keys`` and ``kanjia usage`` against a real ledger file."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.ledger._records import make_record

from kanjia.cli.keys import keys
from kanjia.cli.usage import usage
from kanjia.errors import ConfigError
from kanjia.ledger._rows import COLUMNS, KEY, TABLE, row_of
from kanjia.ledger.store import migrate, open_database
from kanjia.metering import parse_budget


def _run(*args: str) -> str:
    result = CliRunner().invoke(keys if args[0] != "usage" else usage,
                                list(args if args[0] != "usage" else args[1:]))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_keys_lifecycle(tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    secret = _run("create", "--name", "alice", "--tenant", "acme", "--budget", "100CNY/month",
                  "--budget", "2USD/day", "--rpm", "60", "--models", "deepseek/*,cheap-chat",
                  "--db", db).strip()
    assert secret.startswith("kj-") and len(secret) > 40
    listed = json.loads(_run("list", "--json", "--db", db))
    assert [k["name"] for k in listed] == ["alice"]
    assert secret not in json.dumps(listed)
    assert sorted(listed[0]["budgets"]) == ["100CNY/month", "2USD/day"]
    assert listed[0]["models"] == ["deepseek/*", "cheap-chat"] and listed[0]["tenant"] == "acme"
    assert "acme" in _run("tenant", "acme", "--markup", "1.2", "--budget", "500CNY/month",
                          "--db", db)
    _run("budget", "alice", "5CNY/day", "--db", db)
    assert "revoked" in _run("revoke", "alice", "--db", db)
    assert json.loads(_run("list", "--json", "--db", db)) == []
    assert json.loads(_run("list", "--all", "--json", "--db", db))[0]["revoked"]
    bad = CliRunner().invoke(keys, ["create", "--name", "x", "--budget", "5EUR/day",
                                    "--db", db])
    assert bad.exit_code != 0


def test_usage_json(tmp_path: Path) -> None:
    db_path = str(tmp_path / "u.db")
    now = time.time()
    recs = [make_record(cost=Decimal("0.7"), currency="CNY", input_tokens=10, output_tokens=5,
                        ts=now),
            make_record(vendor="openai", model="gpt-4o", cost=Decimal("0.1"), currency="USD",
                        input_tokens=20, output_tokens=10, ts=now),
            make_record(cost=Decimal("9"), ts=now - 400 * 86400)]

    async def seed() -> None:
        db = open_database(db_path)
        await db.connect()
        await migrate(db)
        await db.insert_ignore(TABLE, COLUMNS, KEY, [row_of(r) for r in recs])
        await db.close()

    asyncio.run(seed())
    today = datetime.now(UTC).date().isoformat()
    out = json.loads(_run("usage", "--since", today, "--by", "vendor", "--currency", "USD",
                          "--json", "--db", db_path))
    assert set(out["total"]) >= {"amount", "currency", "requests", "tokens"}
    assert out["total"]["currency"] == "USD" and out["total"]["requests"] == 2
    assert out["total"]["tokens"] == 45
    vendors = {r["vendor"]: r for r in out["rows"]}
    assert vendors["openai"]["amount"] == pytest.approx(0.1)
    assert 0.05 < vendors["deepseek"]["amount"] < 0.2  # 0.7 CNY at the catalog's rate
    everything = json.loads(_run("usage", "--all", "--by", "day", "--json", "--db", db_path))
    assert everything["total"]["requests"] == 3 and len(everything["rows"]) == 2
    assert "TOTAL" in _run("usage", "--all", "--db", db_path)


@pytest.mark.parametrize(("text", "amount", "cur", "period"), [
    ("100CNY/month", "100", "CNY", "month"), ("5 usd/day", "5", "USD", "day"),
    ("0.25USD/total", "0.25", "USD", "total"), ("30CNY", "30", "CNY", "month")])
def test_budget_specs(text: str, amount: str, cur: str, period: str) -> None:
    spec = parse_budget(text)
    assert (spec.amount, spec.currency, spec.period) == (Decimal(amount), cur, period)


@pytest.mark.parametrize("text", ["", "CNY", "100/month", "100CNY/week", "-5CNY/day"])
def test_bad_budget_specs(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_budget(text)
