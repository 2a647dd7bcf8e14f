"""``kanjia sandbox``: serve the vendor simulator until interrupted."""

from __future__ import annotations

import click

from kanjia.sandbox import VENDORS, Sandbox, SandboxSettings, serve

__all__ = ["sandbox"]


def _announce(sb: Sandbox) -> None:
    click.echo(f"kanjia sandbox listening on {sb.url}")
    width = max(len(v) for v in VENDORS)
    for vendor in VENDORS:
        click.echo(f"  {vendor:<{width}}  {sb.base_url(vendor)}")
    click.echo(f"control API: {sb.url}/_sandbox/faults | /_sandbox/stats | /_sandbox/reset")
    click.echo("Ctrl-C to stop.")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=9000, show_default=True, type=int, help="Port (0 = any free).")
@click.option("--ttft-ms", default=0, show_default=True, type=int, help="Time to first token.")
@click.option("--chunk-ms", default=0, show_default=True, type=int, help="Gap between chunks.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of random faults.")
@click.option("--hang-s", default=30.0, show_default=True, type=float, help="Timeout fault hang.")
def sandbox(host: str, port: int, ttft_ms: int, chunk_ms: int, seed: int, hang_s: float) -> None:
    """Simulate every vendor's API locally.

    Wire formats, usage, errors and faults, as each vendor's own API."""
    settings = SandboxSettings(
        host=host, port=port, ttft_ms=ttft_ms, chunk_ms=chunk_ms, seed=seed, hang_s=hang_s
    )
    serve(settings, _announce)
