"""``kanjia keys``: virtual API keys, tenants and budgets, straight in the ledger database.

A running gateway on the same database sees the changes within two seconds (at
once for a key it has not seen yet).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import click

from kanjia.errors import ConfigError
from kanjia.ledger.store import migrate, open_database
from kanjia.metering import BudgetSpec, NotFound, PriceList, Registry, parse_budget

T = TypeVar("T")

_DB = click.option("--db", "database", envvar="KANJIA_DB", default="kanjia.db",
                   show_default=True,
                   help="Ledger database: a SQLite path or postgresql://... ($KANJIA_DB).")


def run_on(database: str, fn: Callable[[Registry], Awaitable[T]]) -> T:
    async def main() -> T:
        db = open_database(database)
        await db.connect()
        try:
            await migrate(db)
            return await fn(Registry(db))
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except NotFound as exc:
        raise click.ClickException(str(exc.args[0])) from None


def _budgets(values: tuple[str, ...]) -> list[BudgetSpec]:
    from kanjia.catalog import load_catalog

    fx = load_catalog().fx
    specs = [parse_budget(v) for v in values]
    for spec in specs:
        fx.convert(Decimal(1), spec.currency, "CNY", date.today())  # a currency fx knows
    return specs


@click.group()
def keys() -> None:
    """Virtual API keys (kj-...), tenants and budgets."""


@keys.command("create")
@click.option("--name", required=True, help="A label for the key.")
@click.option("--tenant", default=None, help="The tenant it belongs to (created if new).")
@click.option("--budget", "budgets", multiple=True,
              help="AMOUNT CURRENCY/PERIOD, e.g. 100CNY/month, 5USD/day, 50CNY/total "
                   "(repeatable).")
@click.option("--rpm", type=click.IntRange(min=1), default=None, help="Requests per minute.")
@click.option("--tpm", type=click.IntRange(min=1), default=None, help="Tokens per minute.")
@click.option("--models", default=None,
              help="Comma-separated models, routes or patterns it may use (deepseek/*).")
@click.option("--response-cache", is_flag=True,
              help="Answer its repeated identical requests from kanjia's response cache.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_DB
def create(name: str, tenant: str | None, budgets: tuple[str, ...], rpm: int | None,
           tpm: int | None, models: str | None, response_cache: bool, as_json: bool,
           database: str) -> None:
    """Create a key; it is printed once and stored hashed."""
    specs = _budgets(budgets)
    allow = [m.strip() for m in models.split(",") if m.strip()] if models else None
    secret, info = run_on(database, lambda r: r.create_key(
        name, tenant=tenant, models=allow, rpm=rpm, tpm=tpm, budgets=specs,
        response_cache=response_cache))
    if as_json:
        click.echo(json.dumps({"key": secret, **info.public(),
                               "budgets": [str(s) for s in specs]}))
        return
    click.echo(secret)
    click.echo(f"created {info.id} ({info.name}); this is the only time the key is shown",
               err=True)


@keys.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_DB
def list_keys(show_all: bool, as_json: bool, database: str) -> None:
    """List keys (never the keys themselves: only their hints)."""

    async def fetch(reg: Registry) -> tuple[list[Any], list[Any]]:
        return await reg.keys(include_revoked=show_all), await reg.budgets()

    found, budgets = run_on(database, fetch)
    by_subject: dict[str, list[str]] = {}
    for b in budgets:
        by_subject.setdefault(f"{b.scope}:{b.subject}", []).append(
            str(BudgetSpec(b.amount, b.currency, b.period)))
    if as_json:
        click.echo(json.dumps([{**k.public(), "budgets": by_subject.get(f"key:{k.id}", [])}
                               for k in found]))
        return
    for k in found:
        state = "revoked" if k.revoked_at else "active"
        extra = [f"tenant={k.tenant}" if k.tenant else "",
                 f"rpm={k.rpm}" if k.rpm else "", f"tpm={k.tpm}" if k.tpm else "",
                 f"models={','.join(k.models)}" if k.models is not None else "",
                 " ".join(by_subject.get(f"key:{k.id}", []))]
        click.echo(f"{k.id}  {k.hint}  {k.name}  {state}  "
                   + "  ".join(e for e in extra if e))


@keys.command("revoke")
@click.argument("ident")
@_DB
def revoke(ident: str, database: str) -> None:
    """Revoke a key by id (or by name, if unique)."""
    info = run_on(database, lambda r: r.revoke_key(ident))
    click.echo(f"revoked {info.id} ({info.name})")


@keys.command("budget")
@click.argument("subject")
@click.argument("budget")
@click.option("--tenant", "is_tenant", is_flag=True, help="SUBJECT is a tenant, not a key.")
@_DB
def budget(subject: str, budget: str, is_tenant: bool, database: str) -> None:
    """Set a budget (e.g. 100CNY/month) on a key, or a tenant with --tenant."""
    spec = _budgets((budget,))[0]
    out = run_on(database, lambda r: r.set_budget("tenant" if is_tenant else "key",
                                                  subject, spec))
    click.echo(f"budget {out.id}: {spec}")


@keys.command("tenant")
@click.argument("name")
@click.option("--markup", default=None, help="Charge = vendor cost × MARKUP (e.g. 1.2).")
@click.option("--prices", "prices_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A JSON price list: {currency, models: {pattern: "
                                 "{input_mtok, output_mtok, cached_mtok?}}}.")
@click.option("--budget", "budgets", multiple=True, help="A tenant budget (repeatable).")
@_DB
def tenant(name: str, markup: str | None, prices_path: str | None, budgets: tuple[str, ...],
           database: str) -> None:
    """Create or update a tenant: its sell prices and budgets."""
    try:
        factor = Decimal(markup) if markup is not None else None
    except InvalidOperation:
        raise click.BadParameter("markup must be a number", param_hint="--markup") from None
    prices = None
    if prices_path:
        try:
            prices = PriceList.parse(json.loads(Path(prices_path).read_text("utf-8")))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{prices_path}: {exc}") from None
    specs = _budgets(budgets)

    async def apply(reg: Registry) -> Any:
        out = await reg.set_tenant(name, markup=factor, price_list=prices)
        for spec in specs:
            await reg.set_budget("tenant", name, spec)
        return out

    t = run_on(database, apply)
    click.echo(f"tenant {t.name}: markup={t.markup or 1} "
               f"prices={'own list' if t.price_list else 'vendor cost'} "
               + " ".join(str(s) for s in specs))
