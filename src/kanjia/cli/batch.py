"""``kanjia batch``: submit deferrable work, sent when the chosen vendor is cheapest."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from kanjia.config import load_settings
from kanjia.errors import KanjiaError

_QUEUE_HELP = "Queue file (default: the config's batch_queue, kanjia-batch.db)."


def _queue_path(queue: str | None, config_path: str | None) -> str:
    return queue or load_settings(config_path).batch_queue


def _planner(config_path: str | None) -> Any:
    from kanjia.catalog import load_catalog
    from kanjia.routing.directory import ModelDirectory
    from kanjia.routing.health import HealthBoard
    from kanjia.routing.planner import Planner
    from kanjia.vendors import load_vendor_specs

    settings = load_settings(config_path, sandbox_url="http://plan.invalid")
    catalog = load_catalog()
    directory = ModelDirectory(settings, catalog, load_vendor_specs(), {})
    return Planner(settings, directory, catalog, HealthBoard())


_GATEWAY_HELP = "The gateway whose Batch API runs the batch (with --deadline)."


def _gateway_call(gateway_url: str, key: str, method: str, path: str,
                  form: dict[str, tuple[str | None, bytes]] | None = None,
                  body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One call to the gateway's Batch API; a ClickException with its error message."""
    import aiohttp

    async def go() -> tuple[int, Any]:
        data: aiohttp.FormData | None = None
        if form is not None:
            data = aiohttp.FormData()
            for name, (filename, value) in form.items():
                if filename is None:
                    data.add_field(name, value.decode())
                else:
                    data.add_field(name, value, filename=filename,
                                   content_type="application/jsonl")
        async with aiohttp.ClientSession() as session, session.request(
                method, gateway_url.rstrip("/") + path, data=data, json=body,
                headers={"Authorization": f"Bearer {key}"} if key else {}) as resp:
            return resp.status, await resp.json(content_type=None)

    try:
        status, out = asyncio.run(go())
    except OSError as exc:
        raise click.ClickException(f"cannot reach {gateway_url}: {exc}") from None
    if status >= 400:
        err = out.get("error") if isinstance(out, dict) else None
        msg = err.get("message") if isinstance(err, dict) else out
        raise click.ClickException(f"{method} {path}: HTTP {status}: {msg}")
    return dict(out)


def _submit_api(file: str, deadline: str, gateway_url: str, key: str, endpoint: str,
                route: str | None, as_json: bool) -> None:
    """Send FILE to the gateway's Batch API: each line goes the cheapest way that meets
    the deadline (now, an off-peak window, or the vendor's own batch API)."""
    from kanjia.batch._lines import parse_window

    try:
        parse_window(deadline)
    except KanjiaError as exc:
        raise click.ClickException(f"--deadline: {exc.message}") from None
    lines = []
    for n, line in enumerate(Path(file).read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            lines.append(line)  # the gateway rejects it with its line number
            continue
        if isinstance(item, dict) and "body" not in item:  # a bare chat body
            item = {"custom_id": f"line-{n}", "method": "POST", "url": endpoint, "body": item}
        if isinstance(item, dict) and route and isinstance(item.get("body"), dict):
            item["body"]["model"] = route
        lines.append(json.dumps(item, ensure_ascii=False))
    content = ("\n".join(lines) + "\n").encode()
    f = _gateway_call(gateway_url, key, "POST", "/v1/files",
                      form={"purpose": (None, b"batch"), "file": (Path(file).name, content)})
    b = _gateway_call(gateway_url, key, "POST", "/v1/batches",
                      body={"input_file_id": f["id"], "endpoint": endpoint,
                            "completion_window": deadline})
    rc = b.get("request_counts") or {}
    click.echo(json.dumps(b) if as_json else
               f"{b['id']}: {rc.get('total', 0)} requests ({rc.get('failed', 0)} rejected), "
               f"{b['status']}, results within {deadline}; "
               f"kanjia batch status --batch {b['id']}")


@click.group()
def batch() -> None:
    """Defer work to cheaper hours or vendor batches.

    Deferrable work: off-peak windows, and batches sent the cheapest way by a deadline."""


@batch.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--route", "route", default=None, help="Route (or model) for every request.")
@click.option("--deadline", default=None,
              help="How long results may take (24h, 90m, 2d): send FILE to the gateway's "
                   "Batch API, each line the cheapest way that meets it (now, off-peak, "
                   "or the vendor's batch API at its batch price).")
@click.option("--gateway", "gateway_url", default="http://127.0.0.1:8000", show_default=True,
              help=_GATEWAY_HELP)
@click.option("--api-key-env", default="KANJIA_API_KEY", show_default=True)
@click.option("--endpoint", default="/v1/chat/completions", show_default=True,
              type=click.Choice(["/v1/chat/completions", "/v1/embeddings"]))
@click.option("--queue", default=None, help=_QUEUE_HELP)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True)
def submit(file: str, route: str | None, deadline: str | None, gateway_url: str,
           api_key_env: str, endpoint: str, queue: str | None, config_path: str | None,
           as_json: bool) -> None:
    """Queue the requests of a JSONL file.

    Queue every request of FILE.jsonl (chat bodies, or OpenAI batch lines with "body")
    for the off-peak window; with --deadline, submit it to the gateway's Batch API."""
    if deadline is not None:
        _submit_api(file, deadline, gateway_url, os.environ.get(api_key_env, ""), endpoint,
                    route, as_json)
        return
    from kanjia.batch import JobQueue, schedule
    from kanjia.errors import KanjiaError
    from kanjia.server.validate import parse_chat

    planner = _planner(config_path)
    q = JobQueue(_queue_path(queue, config_path))
    batch_id = "batch-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    now = datetime.now(UTC)
    queued, saving, currency = 0, 0.0, None
    for n, line in enumerate(Path(file).read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            body = item.get("body", item) if isinstance(item, dict) else item
            if route:
                body["model"] = route
            body.pop("stream", None)
            parse_chat(json.dumps(body).encode())
            plan = schedule(planner, body, now)
        except (ValueError, AttributeError, TypeError) as exc:
            raise click.ClickException(f"{file}:{n}: not a chat request: {exc}") from None
        except KanjiaError as exc:
            raise click.ClickException(f"{file}:{n}: {exc.message}") from None
        when = plan.when
        send_at = when.at if when is not None else now
        q.add(batch_id=batch_id, model=body["model"], body=body, send_at=send_at.timestamp(),
              route=plan.route, target=plan.target,
              cost_now=format(when.cost_now, "f") if when else None,
              cost_then=format(when.cost_then, "f") if when else None,
              currency=when.currency if when else None)
        if when is not None:
            saving += float(when.cost_now - when.cost_then)
            currency = when.currency
        queued += 1
    summary = {"batch_id": batch_id, "queued": queued, "queue": str(q.path),
               "expected_saving": round(saving, 6), "currency": currency,
               "next_send_at": datetime.fromtimestamp(q.next_due() or now.timestamp(), UTC)
               .isoformat()}
    q.close()
    click.echo(json.dumps(summary) if as_json else
               f"{batch_id}: {queued} requests queued in {summary['queue']}; first send at "
               f"{summary['next_send_at']}; expected saving {saving:.6f} {currency or ''}")


@batch.command("status")
@click.option("--batch", "batch_id", default=None)
@click.option("--gateway", "gateway_url", default="http://127.0.0.1:8000", show_default=True,
              help="The gateway that runs Batch API batches (ids batch_...).")
@click.option("--api-key-env", default="KANJIA_API_KEY", show_default=True)
@click.option("--queue", default=None, help=_QUEUE_HELP)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True)
def status(batch_id: str | None, gateway_url: str, api_key_env: str, queue: str | None,
           config_path: str | None, as_json: bool) -> None:
    """Show how queued jobs or a batch are doing.

    Counts of queued, sent, done and failed jobs; for a Batch API batch (batch_...),
    its status and which way each line went (now, offpeak, vendor_batch)."""
    from kanjia.batch import JobQueue

    if batch_id is not None and batch_id.startswith("batch_"):
        key = os.environ.get(api_key_env, "")
        rep = _gateway_call(gateway_url, key, "GET", f"/v1/kanjia/batches/{batch_id}/lines")
        if as_json:
            click.echo(json.dumps(rep))
            return
        ways = " ".join(f"{k}={v}" for k, v in sorted(rep["ways"].items()))
        click.echo(f"{batch_id}: {rep['status']}  {ways}")
        for ln in rep["data"]:
            cost = f"{ln['cost']} {ln['currency']}" if ln["cost"] is not None else ""
            click.echo(f"  line {ln['line']:>5}  {ln['custom_id'] or '-':<16} "
                       f"{ln['way']:<12} {ln['target'] or '-':<40} {ln['status']:<9} {cost}")
        return

    path = _queue_path(queue, config_path)
    if not os.path.exists(path):
        raise click.ClickException(f"no queue at {path}")
    q = JobQueue(path)
    counts = q.counts(batch_id)
    nxt = q.next_due()
    q.close()
    out = {"counts": counts, "next_send_at":
           datetime.fromtimestamp(nxt, UTC).isoformat() if nxt else None}
    click.echo(json.dumps(out) if as_json else
               " ".join(f"{k}={v}" for k, v in sorted(counts.items())) +
               (f"  next send {out['next_send_at']}" if nxt else ""))


@batch.command("results")
@click.option("--batch", "batch_id", default=None)
@click.option("--queue", default=None, help=_QUEUE_HELP)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None)
def results(batch_id: str | None, queue: str | None, config_path: str | None,
            out_path: str | None) -> None:
    """Every job as a JSON line (status, result or error)."""
    from kanjia.batch import JobQueue

    path = _queue_path(queue, config_path)
    if not os.path.exists(path):
        raise click.ClickException(f"no queue at {path}")
    q = JobQueue(path)
    lines = [json.dumps(j.as_dict(), ensure_ascii=False) for j in q.jobs(batch_id)]
    q.close()
    text = "\n".join(lines) + ("\n" if lines else "")
    if out_path:
        Path(out_path).write_text(text, "utf-8")
    else:
        click.echo(text, nl=False)


@batch.command("run")
@click.option("--gateway", "gateway_url", default="http://127.0.0.1:8000", show_default=True)
@click.option("--api-key-env", default="KANJIA_MASTER_KEY", show_default=True)
@click.option("--queue", default=None, help=_QUEUE_HELP)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
def run(gateway_url: str, api_key_env: str, queue: str | None, config_path: str | None,
        once: bool) -> None:
    """Send the due jobs through a running gateway.

    kanjia serve also does this by itself."""
    import aiohttp

    from kanjia.batch import BatchRunner, JobQueue

    q = JobQueue(_queue_path(queue, config_path))
    key = os.environ.get(api_key_env, "")

    async def main() -> int:
        async with aiohttp.ClientSession() as session:
            async def send(body: dict[str, Any], key_id: str | None) -> dict[str, Any]:
                async with session.post(f"{gateway_url.rstrip('/')}/v1/chat/completions",
                                        json=body,
                                        headers={"Authorization": f"Bearer {key}"}) as r:
                    data: dict[str, Any] = await r.json(content_type=None)
                    if r.status >= 400:
                        raise RuntimeError(f"HTTP {r.status}: {data.get('error')}")
                    return data

            runner = BatchRunner(q, send, keyed=False)  # keys' jobs: their gateway sends
            if once:
                return await runner.run_once()
            await runner.run_forever()
            return 0

    try:
        sent = asyncio.run(main())
    finally:
        q.close()
    click.echo(f"sent {sent} due jobs")
