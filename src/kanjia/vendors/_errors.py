"""Classify a vendor's error reply (status AND body code/message) into the error tree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from kanjia import errors as e
from kanjia.vendors._spec import ErrorClass

__all__ = ["classify", "extract_code_message", "make_error", "retry_after"]

_CLASSES: dict[ErrorClass, type[e.KanjiaError]] = {
    "rate_limited": e.RateLimited,
    "balance": e.BalanceExhausted,
    "auth": e.VendorAuthFailed,
    "overloaded": e.Overloaded,
    "timeout": e.UpstreamTimeout,
    "context": e.ContextTooLong,
    "content_filter": e.ContentFiltered,
    "bad_request": e.BadRequest,
    "server": e.UpstreamError,
}

_KEYWORDS: tuple[tuple[tuple[str, ...], ErrorClass], ...] = (
    (("insufficient balance", "insufficient_quota", "credit balance", "arrearage", "欠费",
      "余额不足", "overdue",
      "balance is insufficient", "account balance", "credits are depleted",
      "prepayment credits", "insufficient credits", "spending limit", "available credits",
      "invalid_payment_instrument", "payment instrument"),
     "balance"),
    (("api key not valid", "invalid api key", "incorrect api key", "invalid_api_key",
      "authentication fails", "authentication failed", "unauthorized", "鉴权失败",
      "api_key_invalid"), "auth"),
    (("context length", "context_length", "maximum context", "too many tokens",
      "prompt is too long", "input length", "too long", "超过最大长度", "context window",
      "token limit", "max_seq_len", "maximum number of tokens", "maximum prompt length",
      "上下文", "exceeds the limit"),
     "context"),
    (("content_filter", "sensitive", "data_inspection", "high risk", "inappropriate", "敏感",
      "safety", "exists risk", "flagged", "usage policy", "moderation", "审核"), "content_filter"),
    (("rate limit", "rate_limit", "too many requests", "throttl", "频率", "并发"), "rate_limited"),
    (("overloaded", "busy", "unavailable", "capacity"), "overloaded"),
)
#: a keyword in the message may refine these coarse classes (e.g. a 400 that is really a
#: context-length error, a 429 RESOURCE_EXHAUSTED that is really an empty balance)
_REFINABLE: frozenset[ErrorClass] = frozenset({"bad_request", "server", "rate_limited"})

_BY_STATUS: dict[int, ErrorClass] = {
    400: "bad_request", 401: "auth", 402: "balance", 403: "auth", 404: "bad_request",
    408: "timeout", 413: "context", 422: "bad_request", 429: "rate_limited",
    500: "server", 502: "server", 503: "overloaded", 504: "timeout", 529: "overloaded",
}


def extract_code_message(data: bytes) -> tuple[list[str], str]:
    """Pull every code-like field and the message out of a vendor error body."""
    try:
        body: Any = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        return [], data[:300].decode("utf-8", "replace")
    codes: list[str] = []
    message = ""
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return codes, str(body)[:300] if body is not None else ""
    err = body.get("error")
    sources = [err] if isinstance(err, dict) else []
    if isinstance(body.get("base_resp"), dict):
        br = body["base_resp"]
        sources.append({"code": br.get("status_code"), "message": br.get("status_msg")})
    sources.append(body)
    for src in sources:
        for key in ("code", "status", "type", "error_code", "Code", "reason"):
            val = src.get(key)
            if val not in (None, "", 0) and not isinstance(val, dict | list):
                codes.append(str(val))
        for key in ("message", "msg", "error_msg", "Message", "status_msg"):
            val = src.get(key)
            if isinstance(val, str) and val and not message:
                message = val
    if not message and isinstance(err, str):
        message = err
    return codes, message


def retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after") or headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def _keyword(message: str, status: int) -> ErrorClass | None:
    lowered = message.lower()
    for words, cls in _KEYWORDS:
        if any(w in lowered for w in words):
            if cls == "rate_limited" and status not in (429, 200):
                continue
            return cls
    return None


def classify(table: Mapping[str, ErrorClass], status: int, codes: list[str],
             message: str) -> ErrorClass:
    """Vendor code table first, then message keywords, then the HTTP status."""
    found = next((table[c] for c in codes if c in table), None)
    if found is not None and found not in _REFINABLE:
        return found
    keyword = _keyword(message, status)
    if keyword is not None and (found is None or keyword not in ("rate_limited", "overloaded")):
        return keyword
    if found is not None:
        return found
    for code in codes:
        if code.isdigit() and int(code) in _BY_STATUS:
            return _BY_STATUS[int(code)]
    return _BY_STATUS.get(status, "server" if status >= 500 or status == 200 else "bad_request")


def make_error(vendor: str, table: Mapping[str, ErrorClass], status: int, data: bytes,
               headers: Mapping[str, str]) -> e.KanjiaError:
    codes, message = extract_code_message(data)
    cls = _CLASSES[classify(table, status, codes, message)]
    code = codes[0] if codes else str(status)
    said = f"{message or 'HTTP ' + str(status)} (vendor status {status}, code {code})"
    text = f"{vendor}: {said}"
    if cls is e.VendorAuthFailed:
        text = (f"{vendor} refused the gateway's credentials for it (your API key is fine; "
                f"the gateway's operator must fix its {vendor} key or account): {said}")
    return cls(text, retry_after=retry_after(headers), vendor=vendor)
