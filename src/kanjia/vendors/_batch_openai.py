"""OpenAI-style batch APIs: ``POST /files`` (purpose=batch, JSONL), ``POST /batches``,
``GET /batches/{id}``, ``GET /files/{id}/content``, ``POST /batches/{id}/cancel``.

OpenAI and the Chinese vendors whose docs describe the same API (Alibaba Bailian's
OpenAI-compatible Batch, Kimi, Zhipu GLM) differ only in the ``url``/``endpoint``
written in each line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from kanjia.errors import KanjiaError, UpstreamProtocolError
from kanjia.vendors._batch import BatchCall, BatchItem, ItemResult, VendorBatch, jsonl_lines
from kanjia.vendors.base import Adapter, Deployment

__all__ = ["OPENAI_STYLE", "OpenAIBatch"]

#: vendor -> kanjia endpoint -> the path its batch lines and ``endpoint`` name
OPENAI_STYLE: Mapping[str, Mapping[str, str]] = {
    # https://platform.openai.com/docs/guides/batch
    "openai": {"/v1/chat/completions": "/v1/chat/completions",
               "/v1/embeddings": "/v1/embeddings"},
    # https://www.alibabacloud.com/help/en/model-studio/batch-interfaces-compatible-with-openai
    "qwen": {"/v1/chat/completions": "/v1/chat/completions",
             "/v1/embeddings": "/v1/embeddings"},
    # Kimi: files purpose=batch + /v1/batches (platform.moonshot.cn batch guide)
    "moonshot": {"/v1/chat/completions": "/v1/chat/completions"},
    # https://docs.bigmodel.cn/cn/guide/tools/batch
    "zhipu": {"/v1/chat/completions": "/v4/chat/completions",
              "/v1/embeddings": "/v4/embeddings"},
}

_ENDED = frozenset({"completed", "failed", "expired", "cancelled"})


class OpenAIBatch:
    def __init__(self, adapter: Adapter, paths: Mapping[str, str]) -> None:
        self.adapter = adapter
        self.paths = paths

    def _auth(self, dep: Deployment) -> dict[str, str]:
        probe = self.adapter.chat_request(dep, {"messages": []}, "probe", False)
        return {k: v for k, v in probe.headers.items() if k.lower() != "content-type"}

    def _line(self, dep: Deployment, item: BatchItem, model: str, endpoint: str) -> bytes:
        if endpoint == "/v1/embeddings":
            req = self.adapter.embeddings_request(dep, item.body, model)
        else:
            req = self.adapter.chat_request(dep, item.body, model, False)
        return orjson.dumps({"custom_id": item.custom_id, "method": "POST",
                             "url": self.paths[endpoint], "body": orjson.loads(req.body)})

    def upload(self, dep: Deployment, items: Sequence[BatchItem], model: str,
               endpoint: str) -> BatchCall | None:
        jsonl = b"\n".join(self._line(dep, i, model, endpoint) for i in items) + b"\n"
        return BatchCall("POST", f"{dep.base_url}/files", self._auth(dep),
                         form=(("purpose", None, b"batch"),
                               ("file", "kanjia-batch.jsonl", jsonl)))

    def parse_upload(self, data: bytes) -> str:
        body = _object(data, "file")
        fid = body.get("id")
        if not isinstance(fid, str) or not fid:
            raise UpstreamProtocolError("batch: the file upload returned no id")
        return fid

    def create(self, dep: Deployment, items: Sequence[BatchItem], model: str,
               endpoint: str, file_id: str | None) -> BatchCall:
        body = {"input_file_id": file_id, "endpoint": self.paths[endpoint],
                "completion_window": "24h"}
        return BatchCall("POST", f"{dep.base_url}/batches",
                         {**self._auth(dep), "Content-Type": "application/json"},
                         orjson.dumps(body))

    def retrieve(self, dep: Deployment, batch_id: str) -> BatchCall:
        return BatchCall("GET", f"{dep.base_url}/batches/{_safe(batch_id)}", self._auth(dep))

    def cancel(self, dep: Deployment, batch_id: str) -> BatchCall:
        return BatchCall("POST", f"{dep.base_url}/batches/{_safe(batch_id)}/cancel",
                         self._auth(dep))

    def parse_batch(self, data: bytes) -> VendorBatch:
        body = _object(data, "batch")
        bid, status = body.get("id"), body.get("status")
        if not isinstance(bid, str) or not isinstance(status, str):
            raise UpstreamProtocolError("batch: the batch object has no id or status")
        refs = tuple(r for r in (body.get("output_file_id"), body.get("error_file_id"))
                     if isinstance(r, str) and r)
        return VendorBatch(bid, status in _ENDED, refs, status)

    def results(self, dep: Deployment, batch: VendorBatch) -> list[BatchCall]:
        return [BatchCall("GET", f"{dep.base_url}/files/{_safe(ref)}/content", self._auth(dep))
                for ref in batch.refs]

    def parse_results(self, data: bytes, model: str, endpoint: str) -> list[ItemResult]:
        out: list[ItemResult] = []
        for line in jsonl_lines(data, "batch"):
            cid = str(line.get("custom_id", ""))
            resp = line.get("response") if isinstance(line.get("response"), dict) else None
            err = line.get("error")
            if resp is None:
                msg = err.get("message") if isinstance(err, dict) else None
                out.append(ItemResult(cid, 500, orjson.dumps({"error": err}),
                                      error=str(msg or "the vendor reported no response")))
                continue
            status = int(resp.get("status_code") or 0)
            rid = str(resp.get("request_id") or "")
            body = orjson.dumps(resp.get("body"))
            if status != 200:
                out.append(ItemResult(cid, status, body, error=_message(resp.get("body")),
                                      request_id=rid))
                continue
            try:
                parsed = self.adapter.parse_embeddings(body, model) \
                    if endpoint == "/v1/embeddings" else self.adapter.parse_chat(body, model)
            except KanjiaError as exc:
                out.append(ItemResult(cid, exc.status, body, error=exc.message,
                                      request_id=rid))
                continue
            out.append(ItemResult(cid, 200, parsed.body, parsed.usage, request_id=rid,
                                  output_text=parsed.output_text))
        return out


def _object(data: bytes, what: str) -> dict[str, Any]:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError(f"batch: the {what} answer is not JSON") from None
    if not isinstance(body, dict):
        raise UpstreamProtocolError(f"batch: the {what} answer is not a JSON object")
    return body


def _message(body: Any) -> str:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return "the vendor refused the request"


def _safe(ident: str) -> str:
    from urllib.parse import quote

    return quote(ident, safe="")
