"""``kanjia serve``: run the gateway."""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

import click

from kanjia.cli._common import BadInput, writable_ledger
from kanjia.config import load_settings


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML config file (default: built-in defaults).")
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Worker processes on one port (one per core); budgets, rate limits "
                   "and circuit breakers are shared between them only with --redis.")
@click.option("--sandbox", "sandbox_url", default=None,
              help="Send every vendor's traffic to a kanjia sandbox at this URL.")
@click.option("--db", "database", default=None,
              help="Ledger database: a SQLite path or postgresql://... URL.")
@click.option("--redis", "redis_url", default=None,
              help="Share budgets and rate limits across instances through Redis.")
def serve(config_path: str | None, host: str | None, port: int | None, workers: int,
          sandbox_url: str | None, database: str | None, redis_url: str | None) -> None:
    """Start the OpenAI-compatible gateway."""
    server: dict[str, Any] = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    overrides: dict[str, Any] = {"sandbox_url": sandbox_url, "database": database,
                                 "redis": redis_url}
    if server:
        overrides["server"] = server
    overrides = {k: v for k, v in overrides.items() if v is not None}
    settings = load_settings(config_path, **overrides)
    if settings.database:
        writable_ledger(settings.database)
    _check_address(settings.server.host, settings.server.port)
    if sandbox_url is None:  # a running `kanjia local start` is the llamacpp vendor
        from kanjia.local import gateway_overrides, state_dir

        local = gateway_overrides(settings, os.environ, state_dir())
        if local:
            overrides.update(local)
            settings = load_settings(config_path, **overrides)
    from kanjia.server.run import make_app
    from kanjia.server.run import serve as run

    app = None
    if workers > 1:
        click.echo(f"kanjia gateway on http://{settings.server.host}:{settings.server.port}/v1"
                   f"  {workers} workers", err=True)
        click.echo(_per_worker(settings.database, settings.redis), err=True)
    if workers <= 1:
        app = make_app(settings)
        enabled = ", ".join(app.services.directory.enabled_vendors()) or "none (set API keys)"
        click.echo(f"kanjia gateway on http://{settings.server.host}:{settings.server.port}/v1"
                   f"  vendors: {enabled}", err=True)
    run(settings, config_path, workers, overrides, app)


def _per_worker(database: str | None, redis: str | None) -> str:
    """What the workers share, and what each keeps to itself, said once at start."""
    always = ("\nper worker in any case: /metrics counts the requests of the worker a "
              "scrape reaches, and prompt-prefix affinity is each worker's own")
    if redis and database:
        return ("shared through Redis: budgets, rate limits and circuit breakers; "
                "each worker writes its records to the ledger database" + always)
    if redis:
        return ("shared through Redis: circuit breakers (no --db: no keys or budgets)"
                + always)
    if database:
        return ("per worker (no --redis): budgets, rate limits and circuit breakers; a key "
                "may spend its budget once per worker: add --redis to share them" + always)
    return "per worker (no --redis): circuit breakers and deployment health" + always


def _check_address(host: str, port: int) -> None:
    """Fail in one line, before printing that it listens, when the address is taken."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise BadInput(f"{host}:{port} is already in use (is another kanjia "
                               "running? choose another --port)") from None
            raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror}") from None
