"""Reading a batch input file (OpenAI's JSONL: ``custom_id``, ``method``, ``url``,
``body``) and writing its output and error lines in OpenAI's batch output format."""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson

from kanjia.errors import BadRequest, KanjiaError
from kanjia.server.validate import parse_chat, parse_embeddings

__all__ = ["ENDPOINTS", "Line", "Rejected", "error_line", "output_line", "parse_input",
           "parse_window"]

ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")
_WINDOW = re.compile(r"^(\d{1,4})([mhd])$")
_UNIT = {"m": 60, "h": 3600, "d": 86400}

Line = tuple[int, str, dict[str, Any]]          # line number, custom_id, body
Rejected = tuple[int, str | None, str]          # line number, custom_id, why


def parse_window(text: object) -> float:
    """``completion_window`` ("24h", "90m", "2d") in seconds."""
    m = _WINDOW.match(text) if isinstance(text, str) else None
    if m is None or int(m.group(1)) == 0:
        raise BadRequest("completion_window must be a duration like '24h' (also 'm', 'd')")
    return int(m.group(1)) * _UNIT[m.group(2)]


def parse_input(content: bytes, endpoint: str) -> tuple[list[Line], list[Rejected]]:
    """Every line of the file, accepted or rejected with its 1-based line number."""
    good: list[Line] = []
    bad: list[Rejected] = []
    seen: set[str] = set()
    for n, raw in enumerate(content.splitlines(), 1):
        if not raw.strip():
            continue
        cid: str | None = None
        try:
            try:
                item = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise BadRequest("not valid JSON") from None
            if not isinstance(item, dict):
                raise BadRequest("a line must be a JSON object")
            c = item.get("custom_id")
            if not isinstance(c, str) or not c:
                raise BadRequest("custom_id must be a non-empty string")
            cid = c
            if cid in seen:
                raise BadRequest(f"custom_id {cid!r} is repeated")
            if item.get("method", "POST") != "POST":
                raise BadRequest("method must be 'POST'")
            if item.get("url", endpoint) != endpoint:
                raise BadRequest(f"url must be the batch's endpoint {endpoint!r}")
            body = item.get("body")
            if not isinstance(body, dict):
                raise BadRequest("body must be a JSON object")
            if body.get("stream"):
                raise BadRequest("a batch request cannot stream")
            raw_body = orjson.dumps(body)
            body = parse_embeddings(raw_body) if endpoint == "/v1/embeddings" \
                else parse_chat(raw_body)
        except KanjiaError as exc:
            bad.append((n, cid, exc.message))
            continue
        seen.add(cid)
        good.append((n, cid, body))
    return good, bad


def output_line(custom_id: str, status: int, request_id: str, body: Any) -> dict[str, Any]:
    return {"id": "batch_req_" + uuid.uuid4().hex[:24], "custom_id": custom_id,
            "response": {"status_code": status, "request_id": request_id, "body": body},
            "error": None}


def error_line(custom_id: str | None, code: str, message: str,
               line: int | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if line is not None:
        err["line"] = line
    return {"id": "batch_req_" + uuid.uuid4().hex[:24], "custom_id": custom_id,
            "response": None, "error": err}
