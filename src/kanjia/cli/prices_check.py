"""`kanjia prices check`: every model with no price, and prices not checked for too long.

Exits 1 when a model of an enabled vendor has no price now or a price last checked more
than --max-age days ago. Enabled is what the gateway would enable with this config and
environment (a key set, or a self-hosted server configured; `enabled = false` honoured);
--all-vendors checks every vendor kanjia can call.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, date, datetime

import click

from kanjia.catalog import Catalog
from kanjia.cli._common import Command
from kanjia.cli._common import friendly as _friendly
from kanjia.cli._user_catalog import user_catalog

__all__ = ["DEFAULT_MAX_AGE", "check", "check_catalog", "enabled_vendors"]

#: days after which a price's last check is too old
DEFAULT_MAX_AGE = 365


def _emit_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def enabled_vendors(cat: Catalog, config_path: str | None, all_vendors: bool) -> set[str]:
    """The vendors a gateway started with this config and environment would call."""
    from kanjia.vendors import load_vendor_specs

    specs = load_vendor_specs()
    if all_vendors:
        return set(specs)
    from kanjia.config import load_settings
    from kanjia.routing.directory import ModelDirectory

    settings = load_settings(config_path)
    return set(ModelDirectory(settings, cat, specs, os.environ).enabled_vendors())


def check_catalog(cat: Catalog, enabled: set[str], max_age: int, now: datetime) -> tuple[
        list[str], list[tuple[str, date]], list[str], list[str]]:
    """(unpriced, stale with their check date, retired, failing) keys of every model."""
    unpriced: list[str] = []
    stale: list[tuple[str, date]] = []
    retired: list[str] = []
    for m in cat.every:
        period = m.price_at(now)
        if period is None:
            last = m.periods[-1] if m.periods else None
            if last is not None and last.end is not None and last.end <= now:
                retired.append(m.key)
            else:
                unpriced.append(m.key)
        elif (now.date() - period.checked).days > max_age:
            stale.append((m.key, period.checked))
    failing = [k for k in unpriced if k.split("/", 1)[0] in enabled] + \
        [k for k, _ in stale if k.split("/", 1)[0] in enabled]
    return unpriced, stale, retired, failing


@click.command("check", cls=Command)
@click.option("--max-age", type=click.IntRange(min=1), default=DEFAULT_MAX_AGE,
              show_default=True, metavar="DAYS",
              help="A price last checked longer ago than this fails the check.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="The gateway's config (which vendors it enables).")
@click.option("--all-vendors", is_flag=True,
              help="Treat every vendor kanjia can call as enabled.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@_friendly
def check(max_age: int, config_path: str | None, all_vendors: bool, as_json: bool) -> None:
    """Find models without a price or with stale ones.

    Every model with no price anywhere, and stale prices; exits 1 when an enabled
    vendor's model has no price or a price older than --max-age days."""
    cat = user_catalog()
    enabled = enabled_vendors(cat, config_path, all_vendors)
    unpriced, stale, retired, failing = check_catalog(cat, enabled, max_age,
                                                      datetime.now(UTC))
    if as_json:
        _emit_json({"models": len(cat.every), "max_age_days": max_age,
                    "enabled_vendors": sorted(enabled), "unpriced": unpriced,
                    "stale": [{"key": k, "checked": c.isoformat()} for k, c in stale],
                    "retired": retired, "failing": failing, "ok": not failing})
    else:
        click.echo(f"{len(cat.every)} models; {len(unpriced)} with no price now, "
                   f"{len(stale)} checked more than {max_age} days ago, "
                   f"{len(retired)} retired.")
        for k in unpriced:
            click.echo(f"  no price: {k}" + ("" if k.split("/", 1)[0] in enabled
                                              else " (vendor not enabled)"))
        for k, c in stale:
            click.echo(f"  stale: {k} (checked {c})")
    if failing:
        sys.exit(1)
