"""Anthropic Message Batches: ``POST /v1/messages/batches`` with the requests inline,
``GET /v1/messages/batches/{id}``, results as JSONL from its ``results_url``."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

import orjson

from kanjia.errors import KanjiaError, UpstreamProtocolError
from kanjia.vendors._batch import BatchCall, BatchItem, ItemResult, VendorBatch, jsonl_lines
from kanjia.vendors.base import Adapter, Deployment

__all__ = ["AnthropicBatch"]


class AnthropicBatch:
    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter

    def _headers(self, dep: Deployment) -> dict[str, str]:
        return dict(self.adapter.chat_request(dep, {"messages": []}, "probe", False).headers)

    def upload(self, dep: Deployment, items: Sequence[BatchItem], model: str,
               endpoint: str) -> BatchCall | None:
        return None

    def parse_upload(self, data: bytes) -> str:
        raise UpstreamProtocolError("anthropic: Message Batches take no file upload")

    def create(self, dep: Deployment, items: Sequence[BatchItem], model: str,
               endpoint: str, file_id: str | None) -> BatchCall:
        if endpoint != "/v1/chat/completions":
            raise UpstreamProtocolError("anthropic: Message Batches only run chat requests")
        requests = [{"custom_id": i.custom_id,
                     "params": orjson.loads(self.adapter.chat_request(dep, i.body, model,
                                                                      False).body)}
                    for i in items]
        return BatchCall("POST", f"{dep.base_url}/v1/messages/batches", self._headers(dep),
                         orjson.dumps({"requests": requests}))

    def retrieve(self, dep: Deployment, batch_id: str) -> BatchCall:
        return BatchCall("GET", f"{dep.base_url}/v1/messages/batches/{quote(batch_id, safe='')}",
                         self._headers(dep))

    def cancel(self, dep: Deployment, batch_id: str) -> BatchCall:
        return BatchCall(
            "POST", f"{dep.base_url}/v1/messages/batches/{quote(batch_id, safe='')}/cancel",
            self._headers(dep))

    def parse_batch(self, data: bytes) -> VendorBatch:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("anthropic: the batch answer is not JSON") from None
        if not isinstance(body, dict) or body.get("type") != "message_batch":
            raise UpstreamProtocolError("anthropic: the answer is not a message_batch")
        status = str(body.get("processing_status", ""))
        url = body.get("results_url")
        return VendorBatch(str(body.get("id", "")), status == "ended",
                           (url,) if isinstance(url, str) and url else (), status)

    def results(self, dep: Deployment, batch: VendorBatch) -> list[BatchCall]:
        return [BatchCall("GET", url, self._headers(dep)) for url in batch.refs]

    def parse_results(self, data: bytes, model: str, endpoint: str) -> list[ItemResult]:
        out: list[ItemResult] = []
        for line in jsonl_lines(data, "anthropic"):
            cid = str(line.get("custom_id", ""))
            result = line.get("result") or {}
            kind = result.get("type")
            if kind == "succeeded":
                message = orjson.dumps(result.get("message"))
                try:
                    parsed = self.adapter.parse_chat(message, model)
                except KanjiaError as exc:
                    out.append(ItemResult(cid, exc.status, message, error=exc.message))
                    continue
                out.append(ItemResult(cid, 200, parsed.body, parsed.usage,
                                      request_id=str((result.get("message") or {}).get("id", "")),
                                      output_text=parsed.output_text))
            else:
                err = result.get("error") if kind == "errored" else None
                inner = err.get("error") if isinstance(err, dict) else None
                msg = inner.get("message") if isinstance(inner, dict) else None
                status = 400 if isinstance(inner, dict) and \
                    inner.get("type") == "invalid_request_error" else 500
                out.append(ItemResult(cid, status, orjson.dumps(err or {"type": kind}),
                                      error=str(msg or f"the request was {kind}")))
        return out
