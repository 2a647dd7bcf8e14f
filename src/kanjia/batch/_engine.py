"""Runs the Batch API's batches: reserves at submission, sends each line the way chosen
for it (now, in an off-peak window, or through the vendor's batch API), bills every
line in the ledger at the price it was really sent at, writes the output files."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from kanjia.access import Principal, Reservation
from kanjia.batch._billing import line_record, release
from kanjia.batch._lines import ENDPOINTS, error_line, output_line, parse_input, parse_window
from kanjia.batch._store import BatchStore, LineRow
from kanjia.batch._vendor_io import VendorIO
from kanjia.batch._ways import choose_way
from kanjia.catalog import Usage
from kanjia.errors import BadRequest, KanjiaError, ModelNotFound, UpstreamError
from kanjia.routing.directory import Target
from kanjia.vendors import BatchItem, Deployment, ItemResult, batch_adapter_for

if TYPE_CHECKING:
    from kanjia.server.app import Services

__all__ = ["BatchEngine", "BatchNotFound"]

log = logging.getLogger("kanjia.batch")

#: how long after its completion window a batch may still collect results
_GRACE_S = 600.0


class BatchNotFound(ModelNotFound):
    code = "not_found"


class BatchEngine:
    def __init__(self, services: Services, store: BatchStore, *, poll_s: float = 10.0,
                 concurrency: int = 8, clock: Callable[[], float] = time.time) -> None:
        self.s = services
        self.store = store
        self.poll_s = poll_s
        #: the time (unix s) lines are planned, sent, billed and expired by (tests fix it)
        self.clock = clock
        self.io = VendorIO()
        self._sem = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: budget holds of lines not yet billed, and who they belong to (in memory:
        #: after a restart the holds have expired on their own)
        self._holds: dict[tuple[str, int], Reservation | None] = {}
        self._principals: dict[str, Principal] = {}
        self._cancel_sent: set[str] = set()
        self._busy: set[tuple[str, int]] = set()

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.io.close()

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # one bad pass must not stop the batches
                log.exception("batch: a pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()

    # -- the API -------------------------------------------------------------------
    async def create(self, api_key: str | None, owner: str, principal: Principal,
                     req: dict[str, Any]) -> dict[str, Any]:
        fid = req.get("input_file_id")
        endpoint = req.get("endpoint")
        if not isinstance(fid, str) or not fid:
            raise BadRequest("input_file_id is required")
        if endpoint not in ENDPOINTS:
            raise BadRequest(f"endpoint must be one of {', '.join(ENDPOINTS)}")
        window = req.get("completion_window", "24h")
        deadline_s = parse_window(window)
        metadata = req.get("metadata")
        if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > 16 or
                                     not all(isinstance(v, str) for v in metadata.values())):
            raise BadRequest("metadata must be an object of at most 16 string values")
        content = self.store.content(owner, fid)
        if content is None:
            raise BatchNotFound(f"no file {fid!r}")
        good, bad = parse_input(content, endpoint)
        now = datetime.fromtimestamp(self.clock(), UTC)
        bid = "batch_" + uuid.uuid4().hex[:24]
        rows: list[tuple[int, str, dict[str, Any], str, str, float]] = []
        holds: list[tuple[int, Reservation | None]] = []
        checked: set[str] = set()
        try:
            for n, cid, body in good:
                try:
                    if body["model"] not in checked:
                        principal = await self.s.access.authenticate(api_key, body["model"])
                        checked.add(body["model"])
                    way = choose_way(self.s.planner, body, endpoint, deadline_s, now)
                except (ModelNotFound, BadRequest) as exc:
                    bad.append((n, cid, exc.message))
                    continue
                hold = None
                if principal.metered:
                    hold = await self.s.access.reserve(principal, way.target.key, way.max_cost,
                                                       way.currency, way.tokens)
                holds.append((n, hold))
                rows.append((n, cid, body, way.way, way.target.key, way.send_at.timestamp()))
        except KanjiaError:
            for _, h in holds:  # the batch is refused: give back what it held
                self._release(h, bid)
            raise
        for n, bad_cid, _ in bad:
            rows.append((n, bad_cid or "", {}, "rejected", "", 0.0))
        ts = int(now.timestamp())
        doc: dict[str, Any] = {
            "id": bid, "object": "batch", "endpoint": endpoint, "errors": None,
            "input_file_id": fid, "completion_window": window,
            "status": "in_progress" if holds else "failed", "output_file_id": None,
            "error_file_id": None, "created_at": ts, "in_progress_at": ts if holds else None,
            "expires_at": ts + int(deadline_s), "finalizing_at": None, "completed_at": None,
            "failed_at": None if holds else ts, "expired_at": None, "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": len(rows), "completed": 0, "failed": len(bad)},
            "metadata": metadata, "model": None, "usage": None}
        if bad:
            doc["errors"] = {"object": "list", "data": [
                {"code": "invalid_request", "line": n, "message": f"line {n}: {why}",
                 "param": None} for n, _, why in sorted(bad)]}
        self.store.add_batch(owner, doc, now.timestamp() + deadline_s, rows)
        for n, bad_cid, why in bad:
            self.store.finish_line(bid, n, "failed",
                                   error_line(bad_cid, "invalid_request", f"line {n}: {why}",
                                              n), False)
        self._principals[bid] = principal
        for n, hold in holds:
            self._holds[(bid, n)] = hold
        if not holds:
            doc = self._finalize(bid, "failed")
        self._wake.set()
        return _public(doc)

    def get(self, owner: str, bid: str) -> dict[str, Any]:
        row = self.store.batch(bid, owner)
        if row is None:
            raise BatchNotFound(f"no batch {bid!r}")
        return _public(row.doc)

    def lines(self, owner: str, bid: str) -> dict[str, Any]:
        """kanjia's view of a batch: which way each line went, its target and cost."""
        row = self.store.batch(bid, owner)
        if row is None:
            raise BatchNotFound(f"no batch {bid!r}")
        lines = self.store.lines(bid)
        data = [{"line": ln.n, "custom_id": ln.custom_id or None, "way": ln.way,
                 "target": ln.target or None, "status": ln.status,
                 "send_at": int(ln.send_at) if ln.way == "offpeak" else None,
                 "cost": ln.cost, "currency": ln.currency}
                for ln in lines]
        ways: dict[str, int] = defaultdict(int)
        for ln in lines:
            ways[ln.way] += 1
        return {"object": "kanjia.batch_lines", "batch_id": bid,
                "status": row.doc["status"], "ways": dict(ways), "data": data}

    async def cancel(self, owner: str, bid: str) -> dict[str, Any]:
        row = self.store.batch(bid, owner)
        if row is None:
            raise BatchNotFound(f"no batch {bid!r}")
        doc = row.doc
        if doc["status"] in ("validating", "in_progress", "finalizing"):
            doc["status"] = "cancelling"
            doc["cancelling_at"] = int(self.clock())
            self.store.save_batch(doc)
            self._wake.set()
        return _public(doc)

    # -- one pass ------------------------------------------------------------------
    async def tick(self) -> None:
        for row in self.store.open_batches():
            await self._advance(row.id, row.doc, row.deadline)

    async def _advance(self, bid: str, doc: dict[str, Any], deadline: float) -> None:
        now = self.clock()
        pending = self.store.lines(bid, "pending")
        submitted = self.store.lines(bid, "submitted")
        if now > deadline + _GRACE_S and (pending or submitted):
            # past its completion window: what has not come back expires (OpenAI's
            # "expired"); a vendor batch still running is cancelled
            await self._cancel_vendor(bid, submitted)
            for line in pending + submitted:
                self.store.finish_line(bid, line.n, "failed", error_line(
                    line.custom_id, "batch_expired",
                    "the request did not finish within the completion window"), False)
                self._release(self._holds.pop((bid, line.n), None), bid)
            self._finalize(bid, "expired")
            return
        if doc["status"] == "cancelling":
            for line in pending:
                self.store.finish_line(bid, line.n, "cancelled", error_line(
                    line.custom_id, "batch_cancelled", "the batch was cancelled"), False)
                self._release(self._holds.pop((bid, line.n), None), bid)
            await self._cancel_vendor(bid, submitted)
            pending = []
        due = [ln for ln in pending if ln.way in ("now", "offpeak") and ln.send_at <= now
               and (bid, ln.n) not in self._busy]
        if due:
            await asyncio.gather(*(self._direct(bid, doc["endpoint"], ln) for ln in due))
        groups: dict[str, list[LineRow]] = defaultdict(list)
        for ln in pending:
            if ln.way == "vendor_batch":
                groups[ln.target].append(ln)
        for key, lines in groups.items():
            await self._submit(bid, doc["endpoint"], key, lines)
        by_vendor: dict[tuple[str, str], list[LineRow]] = defaultdict(list)
        for ln in submitted:
            by_vendor[(ln.target, ln.vendor_batch or "")].append(ln)
        for (key, vbid), lines in by_vendor.items():
            await self._poll(bid, doc["endpoint"], key, vbid, lines)
        if not self.store.lines(bid, "pending") and not self.store.lines(bid, "submitted"):
            self._finalize(bid, "cancelled" if doc["status"] == "cancelling" else "completed")

    def _finalize(self, bid: str, status: str) -> dict[str, Any]:
        row = self.store.batch(bid)
        assert row is not None
        doc = row.doc
        lines = self.store.lines(bid)
        ok = [ln.out for ln in lines if ln.ok and ln.out is not None]
        errs = [ln.out for ln in lines if not ln.ok and ln.out is not None]
        now = int(self.clock())
        if ok:
            doc["output_file_id"] = self.store.add_file(
                row.owner, "batch_output", f"{bid}_output.jsonl", _jsonl(ok)).id
        if errs:
            doc["error_file_id"] = self.store.add_file(
                row.owner, "batch_output", f"{bid}_error.jsonl", _jsonl(errs)).id
        doc["request_counts"] = {"total": len(lines), "completed": len(ok),
                                 "failed": len(lines) - len(ok)}
        doc["status"] = status
        doc["finalizing_at"] = doc.get("finalizing_at") or now
        doc[{"completed": "completed_at", "cancelled": "cancelled_at",
             "failed": "failed_at", "expired": "expired_at"}[status]] = now
        self.store.save_batch(doc)
        self._principals.pop(bid, None)
        return doc

    # -- sending now ---------------------------------------------------------------
    async def _direct(self, bid: str, endpoint: str, line: LineRow) -> None:
        self._busy.add((bid, line.n))
        try:
            async with self._sem:
                await self._direct_one(bid, endpoint, line)
        finally:
            self._busy.discard((bid, line.n))

    async def _direct_one(self, bid: str, endpoint: str, line: LineRow) -> None:
        s = self.s
        emb = endpoint == "/v1/embeddings"
        body = line.body
        ts = self.clock()
        t0 = time.perf_counter()
        last: KanjiaError | None = None
        try:
            plan = s.planner.plan(body["model"], body, "embeddings" if emb else "chat")
        except KanjiaError as exc:
            self._fail(bid, line, exc)
            return
        targets = [t for t in plan.targets if t.key == line.target] or plan.targets
        for target in targets:
            for dep in target.deployments:
                try:
                    req = target.adapter.embeddings_request(dep, body, target.model) if emb \
                        else target.adapter.chat_request(dep, body, target.model, False)
                    status, data, resp = await s.upstream.send_read(req)
                    if status >= 400:
                        raise target.adapter.classify_error(status, data, resp.headers)
                    result = target.adapter.parse_embeddings(data, target.model) if emb \
                        else target.adapter.parse_chat(data, target.model)
                except UpstreamError as exc:
                    last = exc
                    continue
                except KanjiaError as exc:
                    self._fail(bid, line, exc, target, dep)
                    return
                rid = "req_" + uuid.uuid4().hex[:24]
                cost, cur = self._bill(bid, line, target, dep, result.usage, ts, t0,
                                       batch=False, rid=rid, route=plan.route,
                                       output_text=result.output_text)
                self.store.finish_line(bid, line.n, "done", output_line(
                    line.custom_id, 200, rid, orjson.loads(result.body)), True, cost, cur)
                return
        self._fail(bid, line, last or UpstreamError("no deployment answered"))

    def _fail(self, bid: str, line: LineRow, exc: KanjiaError, target: Target | None = None,
              dep: Deployment | None = None) -> None:
        self.store.finish_line(bid, line.n, "failed", output_line(
            line.custom_id, exc.status, "", exc.body()), False)
        self._release(self._holds.pop((bid, line.n), None), bid)

    # -- the vendor's batch API ----------------------------------------------------
    def _target(self, key: str) -> Target:
        return self.s.directory.resolve(key)

    async def _submit(self, bid: str, endpoint: str, key: str, lines: list[LineRow]) -> None:
        target = self._target(key)
        adapter = batch_adapter_for(target.vendor, target.adapter)
        assert adapter is not None
        dep = target.deployments[0]
        items = [BatchItem(f"{bid}-{ln.n}", ln.body) for ln in lines]
        try:
            file_id = None
            up = adapter.upload(dep, items, target.model, endpoint)
            if up is not None:
                file_id = adapter.parse_upload(await self.io.call(up))
            vb = adapter.parse_batch(await self.io.call(
                adapter.create(dep, items, target.model, endpoint, file_id)))
        except KanjiaError as exc:
            # the vendor's batch API refused: the lines go now, at the standard price
            # (billed as sent), rather than fail
            log.warning("batch %s: %s batch API refused (%s); sending %d lines now", bid,
                        target.vendor, exc.message, len(lines))
            await asyncio.gather(*(self._direct(bid, endpoint, ln) for ln in lines))
            return
        self.store.set_submitted(bid, [ln.n for ln in lines], vb.id)

    async def _poll(self, bid: str, endpoint: str, key: str, vbid: str,
                    lines: list[LineRow]) -> None:
        target = self._target(key)
        adapter = batch_adapter_for(target.vendor, target.adapter)
        assert adapter is not None
        dep = target.deployments[0]
        try:
            vb = adapter.parse_batch(await self.io.call(adapter.retrieve(dep, vbid)))
            if not vb.ended:
                return
            results: dict[str, ItemResult] = {}
            for call in adapter.results(dep, vb):
                for item in adapter.parse_results(await self.io.call(call), target.model,
                                                  endpoint):
                    results[item.custom_id] = item
        except UpstreamError as exc:
            log.warning("batch %s: polling %s batch %s failed: %s", bid, target.vendor, vbid,
                        exc.message)
            return
        ts = self.clock()
        for ln in lines:
            r = results.get(f"{bid}-{ln.n}")
            if r is None:
                self._fail(bid, ln, UpstreamError(
                    f"the {target.vendor} batch ended ({vb.status}) without this request"))
            elif r.error is not None:
                self.store.finish_line(bid, ln.n, "failed", output_line(
                    ln.custom_id, r.status_code, r.request_id, _json_or_text(r.body)), False)
                self._release(self._holds.pop((bid, ln.n), None), bid)
            else:
                rid = r.request_id or "req_" + uuid.uuid4().hex[:24]
                cost, cur = self._bill(bid, ln, target, dep, r.usage, ts, None, batch=True,
                                       rid=rid, route=None, output_text=r.output_text)
                self.store.finish_line(bid, ln.n, "done", output_line(
                    ln.custom_id, 200, rid, orjson.loads(r.body)), True, cost, cur)

    async def _cancel_vendor(self, bid: str, submitted: list[LineRow]) -> None:
        for key, vbid in {(ln.target, ln.vendor_batch) for ln in submitted}:
            if not vbid or vbid in self._cancel_sent:
                continue
            self._cancel_sent.add(vbid)
            target = self._target(key)
            adapter = batch_adapter_for(target.vendor, target.adapter)
            if adapter is None:
                continue
            with contextlib.suppress(UpstreamError):
                await self.io.call(adapter.cancel(target.deployments[0], vbid))

    # -- billing -------------------------------------------------------------------
    def _bill(self, bid: str, line: LineRow, target: Target, dep: Deployment,
              usage: Usage | None, ts: float, t0: float | None, *, batch: bool, rid: str,
              route: str | None, output_text: str = "") -> tuple[str | None, str | None]:
        """The line's ledger row (at the batch price when ``batch``), its hold settled."""
        rec = line_record(self.s, self._principals.get(bid) or Principal(), line.body,
                          target, dep, usage, ts, t0, batch=batch, rid=rid, route=route,
                          output_text=output_text)
        hold = self._holds.pop((bid, line.n), None)
        if hold is not None:
            self.s.access.settle(hold, rec)
        if rec.price_period == "unpriced":
            return None, None
        return format(rec.cost, "f"), rec.currency  # plain: never "3E-8"

    def _release(self, hold: Reservation | None, bid: str) -> None:
        release(self.s.access, hold, bid, self.clock())


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc)


def _jsonl(items: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(i) + b"\n" for i in items)


def _json_or_text(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data.decode("utf-8", "replace")
