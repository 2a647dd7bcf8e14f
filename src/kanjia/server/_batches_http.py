"""The OpenAI-compatible Files and Batches endpoints on kanjia itself:

``POST /v1/files`` (multipart, purpose=batch), ``GET /v1/files/{id}``,
``GET /v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches``,
``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel`` — the shapes of OpenAI's
API, so the ``openai`` SDK's batch code works unchanged — and kanjia's own
``GET /v1/kanjia/batches/{id}/lines`` (which way each line went). Files and batches belong to
the key that created them: another key gets a 404.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import orjson

from kanjia.batch import BatchEngine, BatchNotFound, BatchStore, store_path
from kanjia.errors import BadRequest
from kanjia.server import _asgi
from kanjia.server._asgi import Receive, Scope, Send

if TYPE_CHECKING:
    from kanjia.access import Principal
    from kanjia.server.app import KanjiaApp

__all__ = ["register"]

_PURPOSES = ("batch",)


def register(app: KanjiaApp) -> None:
    app.routes[("POST", "/v1/files")] = _upload
    app.routes[("POST", "/v1/batches")] = _create
    app.routes[("GET", "/v1/batches")] = _list
    app.mount("/v1/files/", _file)
    app.mount("/v1/batches/", _batch)
    app.mount("/v1/kanjia/batches/", _lines)

    async def startup() -> None:
        if store_path(app.services.settings.batch_queue).exists():
            await _engine(app)  # resume the batches a previous run left open

    async def shutdown() -> None:
        engine, app.services.batch_engine = app.services.batch_engine, None
        if engine is not None:
            await engine.stop()
            engine.store.close()

    app.on_startup.append(startup)
    app.on_shutdown.append(shutdown)


async def _engine(app: KanjiaApp) -> BatchEngine:
    s = app.services
    engine = s.batch_engine
    if engine is None:
        store = await asyncio.to_thread(BatchStore, store_path(s.settings.batch_queue))
        # the app's clock, read late: a test may set ``app.clock`` after the build
        engine = s.batch_engine = BatchEngine(s, store, poll_s=s.batch_poll_s,
                                              clock=lambda: app.clock())
        engine.start()
    return engine


async def _who(app: KanjiaApp, scope: Scope) -> tuple[str | None, str, Principal]:
    key = _asgi.bearer(scope)
    principal = await app.services.access.authenticate(key, "")
    return key, principal.key_id or "", principal


async def _upload(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    _, owner, _ = await _who(app, scope)
    raw = await _asgi.read_body(scope, receive, app._max_body)
    fields = _multipart(_asgi.header(scope, b"content-type") or "", raw)
    purpose = fields.get("purpose")
    upload = fields.get("file")
    if purpose is None or purpose[1].decode() not in _PURPOSES:
        raise BadRequest("purpose must be 'batch'")
    if upload is None:
        raise BadRequest("a 'file' part is required")
    engine = await _engine(app)
    row = engine.store.add_file(owner, "batch", upload[0] or "upload.jsonl", upload[1])
    await _asgi.send_json(send, 200, row.as_openai())


async def _file(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    _, owner, _ = await _who(app, scope)
    rest = scope["path"][len("/v1/files/"):]
    fid, _, tail = rest.partition("/")
    if scope["method"] != "GET" or tail not in ("", "content"):
        raise BatchNotFound(f"the endpoint {scope['method']} {scope['path']} does not exist")
    engine = await _engine(app)
    if tail == "content":
        content = engine.store.content(owner, fid)
        if content is None:
            raise BatchNotFound(f"no file {fid!r}")
        await _asgi.send_bytes(send, 200, content, None, b"application/octet-stream")
        return
    row = engine.store.file(owner, fid)
    if row is None:
        raise BatchNotFound(f"no file {fid!r}")
    await _asgi.send_json(send, 200, row.as_openai())


async def _create(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    key, owner, principal = await _who(app, scope)
    raw = await _asgi.read_body(scope, receive, app._max_body)
    try:
        req = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(req, dict):
        raise BadRequest("the request body must be a JSON object")
    engine = await _engine(app)
    await _asgi.send_json(send, 200, await engine.create(key, owner, principal, req))


async def _list(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    _, owner, _ = await _who(app, scope)
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    after = (query.get("after") or [None])[0]
    try:
        limit = int((query.get("limit") or ["20"])[0])
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    if not 1 <= limit <= 100:
        raise BadRequest("limit must be between 1 and 100")
    engine = await _engine(app)
    rows = engine.store.batches(owner, after, limit + 1)
    data = [r.doc for r in rows[:limit]]
    await _asgi.send_json(send, 200, {
        "object": "list", "data": data, "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None, "has_more": len(rows) > limit})


async def _batch(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    _, owner, _ = await _who(app, scope)
    rest = scope["path"][len("/v1/batches/"):]
    bid, _, tail = rest.partition("/")
    engine = await _engine(app)
    if scope["method"] == "GET" and tail == "":
        await _asgi.send_json(send, 200, engine.get(owner, bid))
    elif scope["method"] == "POST" and tail == "cancel":
        await _asgi.send_json(send, 200, await engine.cancel(owner, bid))
    else:
        raise BatchNotFound(f"the endpoint {scope['method']} {scope['path']} does not exist")


async def _lines(app: KanjiaApp, scope: Scope, receive: Receive, send: Send) -> None:
    """``GET /v1/kanjia/batches/{id}/lines``: which way each line went (now, off-peak,
    the vendor's batch API), where, at what cost."""
    _, owner, _ = await _who(app, scope)
    bid, _, tail = scope["path"][len("/v1/kanjia/batches/"):].partition("/")
    if scope["method"] != "GET" or tail != "lines":
        raise BatchNotFound(f"the endpoint {scope['method']} {scope['path']} does not exist")
    engine = await _engine(app)
    await _asgi.send_json(send, 200, engine.lines(owner, bid))


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (filename, bytes)."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise BadRequest("POST /v1/files takes multipart/form-data (purpose, file)")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not msg.is_multipart():
        raise BadRequest("the multipart body could not be read")
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        out[str(name)] = (part.get_filename(), bytes(payload))
    return out
