"""The vendors' batch APIs, simulated: OpenAI-style files + batches (OpenAI, Qwen/Bailian,
Kimi, GLM) and Anthropic Message Batches.

A batch ends ``delay_s`` after it was created (``POST /_sandbox/batches``
``{"delay_s": 0.2, "fail": ["custom-id", ...], "refuse": false}`` sets the delay, the
requests that fail, and whether creating a batch fails as a whole). Each request then
runs through this sandbox's own live endpoint, so directives
(``[[sandbox:fault=server_error]]``, ``[[sandbox:tokens=N]]``) and usage behave exactly
as they do live; a failed request lands in the error file (Anthropic: an ``errored``
result).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from kanjia.sandbox._vendors.openai_compat_vendors import OA_VENDORS
from kanjia.sandbox._wire import json_response, read_json

__all__ = ["OPENAI_STYLE_BATCH", "add_batch_routes"]

#: the OpenAI-compatible vendors whose docs describe files + batches (``batches = true``
#: in their ``openai_compat.toml`` row)
OPENAI_STYLE_BATCH: tuple[str, ...] = tuple(v.id for v in OA_VENDORS.values() if v.batches)


@dataclass
class _Batch:
    id: str
    vendor: str
    created: float
    requests: list[dict[str, Any]]      # {"custom_id", "body"}
    endpoint: str
    input_file_id: str | None = None
    status: str = "in_progress"
    results: list[tuple[str, int, Any]] = field(default_factory=list)  # id, status, body
    output_file_id: str | None = None
    error_file_id: str | None = None
    ended_at: float | None = None
    cancelled: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class BatchSim:
    delay_s: float = 1.0
    fail: set[str] = field(default_factory=set)
    #: refuse to create batches (HTTP 500), as a vendor batch API that is down
    refuse: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, _Batch] = field(default_factory=dict)
    created: int = 0


_SIM = web.AppKey("kanjia_sandbox_batches", BatchSim)


def _oa_batch(b: _Batch) -> dict[str, Any]:
    ok = sum(1 for _, s, _ in b.results if s == 200)
    return {"id": b.id, "object": "batch", "endpoint": b.endpoint, "errors": None,
            "input_file_id": b.input_file_id, "completion_window": "24h", "status": b.status,
            "output_file_id": b.output_file_id, "error_file_id": b.error_file_id,
            "created_at": int(b.created), "in_progress_at": int(b.created),
            "expires_at": int(b.created) + 86400, "finalizing_at": None,
            "completed_at": int(b.ended_at) if b.ended_at and not b.cancelled else None,
            "failed_at": None, "expired_at": None, "cancelling_at": None,
            "cancelled_at": int(b.ended_at) if b.ended_at and b.cancelled else None,
            "request_counts": {"total": len(b.requests), "completed": ok,
                               "failed": len(b.results) - ok},
            "metadata": None}


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat().replace(
        "+00:00", "Z")


def _ant_batch(b: _Batch, base: str) -> dict[str, Any]:
    ended = b.ended_at is not None
    counts = {"processing": 0 if ended else len(b.requests), "succeeded": 0, "errored": 0,
              "canceled": 0, "expired": 0}
    for _, status, _ in b.results:
        counts["succeeded" if status == 200 else "canceled" if status == 0 else "errored"] += 1
    return {"id": b.id, "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": counts, "ended_at": _iso(b.ended_at),
            "created_at": _iso(b.created), "expires_at": _iso(b.created + 86400),
            "archived_at": None, "cancel_initiated_at": _iso(b.ended_at) if b.cancelled else None,
            "results_url": f"{base}/anthropic/v1/messages/batches/{b.id}/results"
            if ended else None}


async def _run(sim: BatchSim, b: _Batch, request: web.Request) -> None:
    """Run the batch's requests through the live endpoint, once, when its time has come."""
    async with b.lock:
        if b.ended_at is not None or time.time() < b.created + sim.delay_s:
            return
        origin = f"{request.scheme}://{request.host}"
        if b.vendor == "anthropic":
            url = f"{origin}/anthropic/v1/messages"
            headers = {"anthropic-version": request.headers.get("anthropic-version",
                                                                "2023-06-01")}
            for name in ("x-api-key", "Authorization"):
                if request.headers.get(name):
                    headers[name] = request.headers[name]
        else:
            path = "embeddings" if b.endpoint.endswith("/embeddings") else "chat/completions"
            url = f"{origin}/{b.vendor}/{path}"
            headers = {"Authorization": request.headers.get("Authorization", "")}
        async with aiohttp.ClientSession() as session:
            for req in b.requests:
                cid = req["custom_id"]
                if cid in sim.fail:
                    b.results.append((cid, 500, {"error": {
                        "message": "simulated batch failure", "type": "server_error"}}))
                    continue
                async with session.post(url, json=req["body"], headers=headers) as resp:
                    b.results.append((cid, resp.status, orjson.loads(await resp.read())))
        b.ended_at = time.time()
        b.status = "completed"
        if b.vendor != "anthropic":
            ok = [_oa_line(c, s, body) for c, s, body in b.results if s == 200]
            bad = [_oa_line(c, s, body) for c, s, body in b.results if s != 200]
            if ok:
                b.output_file_id = _put(sim, b"".join(orjson.dumps(x) + b"\n" for x in ok))
            if bad:
                b.error_file_id = _put(sim, b"".join(orjson.dumps(x) + b"\n" for x in bad))


def _oa_line(cid: str, status: int, body: Any) -> dict[str, Any]:
    return {"id": "batch_req_" + uuid.uuid4().hex[:16], "custom_id": cid,
            "response": {"status_code": status, "request_id": "req_" + uuid.uuid4().hex[:16],
                         "body": body}, "error": None}


def _put(sim: BatchSim, content: bytes) -> str:
    fid = "file-" + uuid.uuid4().hex[:20]
    sim.files[fid] = content
    return fid


def _auth_ok(request: web.Request, vendor: str) -> bool:
    bearer = request.headers.get("Authorization", "").startswith("Bearer ")
    if vendor == "anthropic":  # x-api-key, or a bearer token as the newer SDKs send
        return bool(request.headers.get("x-api-key")) or bearer
    return bearer


def add_batch_routes(app: web.Application) -> None:
    sim = BatchSim()
    app[_SIM] = sim
    r = app.router

    async def control(request: web.Request) -> web.Response:
        data = await read_json(request)
        if not isinstance(data, dict):
            return json_response({"error": "a JSON object is required"}, status=400)
        if "delay_s" in data:
            sim.delay_s = float(data["delay_s"])
        if "fail" in data:
            sim.fail = {str(x) for x in data["fail"]}
        if "refuse" in data:
            sim.refuse = bool(data["refuse"])
        return json_response({"delay_s": sim.delay_s, "fail": sorted(sim.fail),
                              "refuse": sim.refuse,
                              "batches": len(sim.batches)})

    r.add_post("/_sandbox/batches", control)
    for vendor in OPENAI_STYLE_BATCH:
        _openai_routes(r, sim, vendor)
    _anthropic_routes(r, sim)


def _err(status: int, message: str) -> web.Response:
    return json_response({"error": {"message": message, "type": "invalid_request_error",
                                    "code": None, "param": None}}, status=status)


def _openai_routes(r: web.UrlDispatcher, sim: BatchSim, vendor: str) -> None:
    async def upload(request: web.Request) -> web.Response:
        if not _auth_ok(request, vendor):
            return _err(401, "invalid api key")
        form = await request.post()
        file = form.get("file")
        if form.get("purpose") != "batch" or not isinstance(file, web.FileField):
            return _err(400, "purpose=batch and a file are required")
        content = file.file.read()
        fid = _put(sim, content)
        return json_response({"id": fid, "object": "file", "bytes": len(content),
                              "created_at": int(time.time()), "filename": file.filename,
                              "purpose": "batch", "status": "processed"})

    async def content(request: web.Request) -> web.Response:
        data = sim.files.get(request.match_info["fid"])
        if data is None:
            return _err(404, "no such file")
        return web.Response(body=data, content_type="application/octet-stream")

    async def create(request: web.Request) -> web.Response:
        if not _auth_ok(request, vendor):
            return _err(401, "invalid api key")
        if sim.refuse:
            return json_response({"error": {"message": "batch service unavailable",
                                            "type": "server_error", "code": None,
                                            "param": None}}, status=500)
        data = await read_json(request)
        raw = sim.files.get(str(data.get("input_file_id")))
        if raw is None:
            return _err(400, "input_file_id does not name an uploaded file")
        endpoint = str(data.get("endpoint", ""))
        requests = []
        for line in raw.splitlines():
            if line.strip():
                item = orjson.loads(line)
                if item.get("url") != endpoint:
                    return _err(400, f"line url {item.get('url')!r} is not {endpoint!r}")
                requests.append({"custom_id": item["custom_id"], "body": item["body"]})
        b = _Batch("batch_" + uuid.uuid4().hex[:20], vendor, time.time(), requests, endpoint,
                   str(data["input_file_id"]))
        sim.batches[b.id] = b
        sim.created += 1
        return json_response(_oa_batch(b))

    async def retrieve(request: web.Request) -> web.Response:
        b = sim.batches.get(request.match_info["bid"])
        if b is None or b.vendor != vendor:
            return _err(404, "no such batch")
        await _run(sim, b, request)
        return json_response(_oa_batch(b))

    async def cancel(request: web.Request) -> web.Response:
        b = sim.batches.get(request.match_info["bid"])
        if b is None or b.vendor != vendor:
            return _err(404, "no such batch")
        if b.ended_at is None:
            b.cancelled, b.ended_at, b.status = True, time.time(), "cancelled"
        return json_response(_oa_batch(b))

    r.add_post(f"/{vendor}/files", upload)
    r.add_get(f"/{vendor}/files/{{fid}}/content", content)
    r.add_post(f"/{vendor}/batches", create)
    r.add_get(f"/{vendor}/batches/{{bid}}", retrieve)
    r.add_post(f"/{vendor}/batches/{{bid}}/cancel", cancel)


def _anthropic_routes(r: web.UrlDispatcher, sim: BatchSim) -> None:
    base = "/anthropic/v1/messages/batches"

    def origin(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def create(request: web.Request) -> web.Response:
        if not _auth_ok(request, "anthropic"):
            return json_response({"type": "error", "error": {
                "type": "authentication_error", "message": "x-api-key header is required"}},
                status=401)
        if sim.refuse:
            return json_response({"type": "error", "error": {
                "type": "api_error", "message": "batch service unavailable"}}, status=500)
        data = await read_json(request)
        reqs = data.get("requests") if isinstance(data, dict) else None
        if not isinstance(reqs, list) or not reqs:
            return json_response({"type": "error", "error": {
                "type": "invalid_request_error", "message": "requests: a non-empty list"}},
                status=400)
        b = _Batch("msgbatch_" + uuid.uuid4().hex[:20], "anthropic", time.time(),
                   [{"custom_id": q["custom_id"], "body": q["params"]} for q in reqs],
                   "/v1/messages")
        sim.batches[b.id] = b
        sim.created += 1
        return json_response(_ant_batch(b, origin(request)))

    def find(request: web.Request) -> _Batch | None:
        b = sim.batches.get(request.match_info["bid"])
        return b if b is not None and b.vendor == "anthropic" else None

    async def retrieve(request: web.Request) -> web.Response:
        b = find(request)
        if b is None:
            return json_response({"type": "error", "error": {
                "type": "not_found_error", "message": "no such batch"}}, status=404)
        await _run(sim, b, request)
        return json_response(_ant_batch(b, origin(request)))

    async def results(request: web.Request) -> web.Response:
        b = find(request)
        if b is None or b.ended_at is None:
            return json_response({"type": "error", "error": {
                "type": "not_found_error", "message": "no results yet"}}, status=404)
        lines = []
        for cid, status, body in b.results:
            if status == 200:
                result: dict[str, Any] = {"type": "succeeded", "message": body}
            elif status == 0:
                result = {"type": "canceled"}
            else:
                inner = body.get("error") if isinstance(body, dict) else None
                result = {"type": "errored", "error": {"type": "error", "error": inner or {
                    "type": "api_error", "message": "failed"}}}
            lines.append(orjson.dumps({"custom_id": cid, "result": result}) + b"\n")
        return web.Response(body=b"".join(lines), content_type="application/binary")

    async def cancel(request: web.Request) -> web.Response:
        b = find(request)
        if b is None:
            return json_response({"type": "error", "error": {
                "type": "not_found_error", "message": "no such batch"}}, status=404)
        if b.ended_at is None:
            b.cancelled, b.ended_at = True, time.time()
            b.results = [(q["custom_id"], 0, None) for q in b.requests]
        return json_response(_ant_batch(b, origin(request)))

    r.add_post(base, create)
    r.add_get(f"{base}/{{bid}}", retrieve)
    r.add_get(f"{base}/{{bid}}/results", results)
    r.add_post(f"{base}/{{bid}}/cancel", cancel)
