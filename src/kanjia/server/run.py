"""Running the gateway: in the foreground (CLI), or in a thread (tests, demo)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from typing import Any

import uvicorn

from kanjia.config import Settings, load_settings
from kanjia.server._gc import tune_gc
from kanjia.server.app import KanjiaApp, build_app
from kanjia.server.wiring import wire_extras

__all__ = ["ServerThread", "app_from_env", "serve"]

_CONFIG_ENV = "KANJIA_CONFIG"
_OVERRIDES_ENV = "KANJIA_SETTINGS_JSON"


def _uvicorn_config(app: Any, host: str, port: int, workers: int = 1,
                    factory: bool = False) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, loop="uvloop", http="httptools",
                          lifespan="on", access_log=False, log_level="warning",
                          workers=workers, factory=factory, timeout_graceful_shutdown=10)


def make_app(settings: Settings) -> KanjiaApp:
    app = build_app(settings)
    wire_extras(app)
    # only a vendor that omits usage needs a tokenizer. The estimating one (o200k: every
    # model without an exact tokenizer, OpenAI's too) loads before serving, as loading holds
    # the GIL ~0.4 s; the exact families load on first need (all five cost ~230 MB RSS)
    counter = app.services.gateway.counter
    app.on_startup.append(lambda: asyncio.to_thread(counter.load_estimator))
    return app


def _own_process(app: KanjiaApp) -> KanjiaApp:
    """An app that has its process to itself: tune the collector once it has started
    (not for ServerThread, which shares its process with tests or the demo)."""
    threshold = app.services.settings.server.gc_threshold

    async def tune() -> None:
        tune_gc(threshold)

    app.on_startup.append(tune)
    return app


def app_from_env() -> KanjiaApp:
    """uvicorn factory for multi-worker mode: settings come from the environment."""
    import orjson

    overrides = orjson.loads(os.environ.get(_OVERRIDES_ENV, "{}"))
    return _own_process(make_app(load_settings(os.environ.get(_CONFIG_ENV) or None,
                                               **overrides)))


def serve(settings: Settings, config_path: str | None, workers: int = 1,
          overrides: dict[str, Any] | None = None, app: KanjiaApp | None = None) -> None:
    host, port = settings.server.host, settings.server.port
    if workers > 1:
        import orjson

        if config_path:
            os.environ[_CONFIG_ENV] = config_path
        os.environ[_OVERRIDES_ENV] = orjson.dumps(overrides or {}).decode()
        config = _uvicorn_config("kanjia.server.run:app_from_env", host, port, workers, True)
        uvicorn.Server(config).run()
        return
    uvicorn.Server(_uvicorn_config(_own_process(app or make_app(settings)), host, port)).run()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerThread:
    """The gateway in a background thread with its own event loop (tests, demo)."""

    def __init__(self, app: KanjiaApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        self._server = uvicorn.Server(_uvicorn_config(app, self.host, self.port))
        self._thread = threading.Thread(target=self._run, name="kanjia-gateway", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        import uvloop

        loop = uvloop.new_event_loop()
        try:
            loop.run_until_complete(self._server.serve())
        finally:
            loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("gateway failed to start")
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
