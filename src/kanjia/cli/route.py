"""``kanjia route explain`` and ``kanjia status``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import click

from kanjia.cli._json import dumps
from kanjia.config import load_settings
from kanjia.routing.misses import closeness

#: excluded candidates shown without --all (the nearest misses)
_MISSES = 8


@click.group()
def route() -> None:
    """Inspect routes: which model a request would go to, and why."""


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO date/time: {value!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@route.command("explain")
@click.argument("route_name")
@click.option("--prompt-tokens", type=click.IntRange(min=0), required=True)
@click.option("--max-tokens", type=click.IntRange(min=1), required=True)
@click.option("--at", "at_text", default=None, help="Price at this date/time (ISO 8601, UTC "
              "unless an offset is given).")
@click.option("--cached-tokens", type=click.IntRange(min=0), default=None,
              help="Price as if a prompt prefix of this many tokens was sent to every "
              "candidate before: the effective price by each vendor's cache rules.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
@click.option("--all", "show_all", is_flag=True,
              help="List every candidate: those past the route's max_candidates and every "
                   "excluded one (by default, the nearest few misses).")
@click.option("--json", "as_json", is_flag=True)
def explain(route_name: str, prompt_tokens: int, max_tokens: int, at_text: str | None,
            cached_tokens: int | None, config_path: str | None, show_all: bool,
            as_json: bool) -> None:
    """Rank a route's candidates for a request of this size.

    Nothing is sent. Every vendor is considered, as if every key were set."""
    from kanjia.catalog import load_catalog
    from kanjia.routing.directory import ModelDirectory
    from kanjia.routing.health import HealthBoard
    from kanjia.routing.planner import Planner
    from kanjia.vendors import load_vendor_specs

    settings = load_settings(config_path, sandbox_url="http://explain.invalid")
    catalog = load_catalog()
    directory = ModelDirectory(settings, catalog, load_vendor_specs(), {})
    planner = Planner(settings, directory, catalog, HealthBoard())
    at = _parse_at(at_text)
    plan = planner.explain(route_name, prompt_tokens, max_tokens, at, cached_tokens)
    chosen = plan.targets[0].key if plan.targets else None
    route_cfg = planner.routes[route_name]
    shown = plan.candidates
    if show_all:  # the ranking before max_candidates cuts it
        full = planner.rank(route_name, route_cfg, prompt_tokens, max_tokens,
                            at or datetime.now(UTC), set(route_cfg.capabilities), limit=False)
        cut = {t.key for t in full.targets[route_cfg.max_candidates:]}
        shown = [replace(c, kept=False,
                         reason=f"fits, past max_candidates ({route_cfg.max_candidates})")
                 if c.key in cut else c for c in full.candidates]
    kept = [c for c in shown if c.kept]
    missed = sorted((c for c in shown if not c.kept), key=lambda c: closeness(c.reason))
    if not show_all and not as_json:
        hidden, missed = len(missed) - min(len(missed), _MISSES), missed[:_MISSES]
    else:
        hidden = 0
    if as_json:
        click.echo(dumps({
            "route": route_name, "chosen": chosen,
            "at": (at or datetime.now(UTC)).isoformat(),
            "prompt_tokens": prompt_tokens, "max_tokens": max_tokens,
            "candidates": [{"model": c.key, "kept": c.kept, "reason": c.reason,
                            "expected_cost": c.expected_cost,
                            "currency": c.currency,
                            "base_cost": c.base_cost if c.base_cost is not None
                            else c.expected_cost,
                            "effective_cost": c.expected_cost,
                            "cached_tokens": c.cached_tokens,
                            "expected_cost_reference": c.expected_cost_ref,
                            "reference_currency": settings.server.reporting_currency}
                           for c in kept + missed]}, ensure_ascii=False, indent=2))
        return
    click.echo(f"route {route_name}: chosen {chosen or 'nothing fits'}")
    click.echo(f"  {'':1} {'candidate':<45} {'base':>20} {'effective':>20}  why")
    for c in kept + missed:
        mark = "+" if c.kept else "-"
        base = c.base_cost if c.base_cost is not None else c.expected_cost
        cost = f"{base:.6f} {c.currency}" if base is not None else ""
        eff = f"{c.expected_cost:.6f} {c.currency}" if c.expected_cost is not None else ""
        click.echo(f"  {mark} {c.key:<45} {cost:>20} {eff:>20}  {c.reason}")
    if hidden:
        click.echo(f"  ... {hidden} more excluded, further off (--all lists every candidate)")


@click.command()
@click.option("--gateway", "gateway_url", default="http://127.0.0.1:8000", show_default=True,
              help="The running gateway's URL.")
@click.option("--url", "old_url", default=None, hidden=True)  # the old name of --gateway
@click.option("--api-key-env", default="KANJIA_MASTER_KEY", show_default=True,
              help="The environment variable holding the gateway's master key.")
@click.option("--admin-key-env", "old_key_env", default=None, hidden=True)  # its old name
@click.option("--json", "as_json", is_flag=True)
def status(gateway_url: str, old_url: str | None, api_key_env: str, old_key_env: str | None,
           as_json: bool) -> None:
    """Show every deployment's circuit breaker.

    Asks a running gateway: state, latency, recent failures and the reason."""
    import os

    url = old_url or gateway_url
    req = urllib.request.Request(url.rstrip("/") + "/status")
    key = os.environ.get(old_key_env or api_key_env)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            data = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"gateway answered {exc.code}: {exc.read()[:200]!r}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(_status_table(data["deployments"]))
    off = sorted(data.get("disabled_vendors") or {})
    if off:
        click.echo(f"\n{len(off)} vendors not configured (no key): {', '.join(off)}")


def _status_table(deployments: list[dict[str, Any]]) -> str:
    """One row per deployment under column headers; REASON is the error class that opened
    or disabled its breaker."""
    rows = [("DEPLOYMENT", "VENDOR", "STATE", "LATENCY", "FAILURES", "REASON")]
    for d in deployments:
        lat = f"{d['latency_ewma_ms']:.1f} ms" if d.get("latency_ewma_ms") is not None else "-"
        rows.append((str(d["deployment"]), str(d.get("vendor", "")), str(d["state"]), lat,
                     str(d.get("recent_failures", 0)), str(d.get("reason") or "-")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(w) if i in (3, 4) else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(r, widths, strict=True))
                               ).rstrip() for r in rows)
