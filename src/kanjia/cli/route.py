"""``kanjia route explain`` and ``kanjia status``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime

import click

from kanjia.config import load_settings


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
@click.option("--json", "as_json", is_flag=True)
def explain(route_name: str, prompt_tokens: int, max_tokens: int, at_text: str | None,
            cached_tokens: int | None, config_path: str | None, as_json: bool) -> None:
    """Rank ROUTE's candidates for a request of this size, without sending anything.

    Every vendor is considered (as if every key were set)."""
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
    if as_json:
        click.echo(json.dumps({
            "route": route_name, "chosen": chosen,
            "at": (at or datetime.now(UTC)).isoformat(),
            "prompt_tokens": prompt_tokens, "max_tokens": max_tokens,
            "candidates": [{"model": c.key, "kept": c.kept, "reason": c.reason,
                            "expected_cost": str(c.expected_cost)
                            if c.expected_cost is not None else None,
                            "currency": c.currency,
                            "base_cost": _dec(c.base_cost if c.base_cost is not None
                                              else c.expected_cost),
                            "effective_cost": _dec(c.expected_cost),
                            "cached_tokens": c.cached_tokens,
                            "expected_cost_reference": str(c.expected_cost_ref)
                            if c.expected_cost_ref is not None else None,
                            "reference_currency": settings.server.reporting_currency}
                           for c in plan.candidates]}, ensure_ascii=False, indent=2))
        return
    click.echo(f"route {route_name}: chosen {chosen or 'nothing fits'}")
    click.echo(f"  {'':1} {'candidate':<45} {'base':>20} {'effective':>20}  why")
    for c in plan.candidates:
        mark = "+" if c.kept else "-"
        base = c.base_cost if c.base_cost is not None else c.expected_cost
        cost = f"{base:.6f} {c.currency}" if base is not None else ""
        eff = f"{c.expected_cost:.6f} {c.currency}" if c.expected_cost is not None else ""
        click.echo(f"  {mark} {c.key:<45} {cost:>20} {eff:>20}  {c.reason}")


def _dec(value: object) -> str | None:
    return None if value is None else str(value)


@click.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True,
              help="The running gateway.")
@click.option("--admin-key-env", default="KANJIA_MASTER_KEY", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def status(url: str, admin_key_env: str, as_json: bool) -> None:
    """Circuit-breaker state of every deployment of a running gateway."""
    import os

    req = urllib.request.Request(url.rstrip("/") + "/status")
    key = os.environ.get(admin_key_env)
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
    for d in data["deployments"]:
        lat = f"{d['latency_ewma_ms']:.1f} ms" if d["latency_ewma_ms"] is not None else "-"
        click.echo(f"{d['deployment']:<30} {d['state']:<10} {lat:>10}  {d['reason']}")
