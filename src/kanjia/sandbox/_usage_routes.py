"""The sandbox's usage export, in the shape of OpenAI's organization usage and
costs APIs, for every vendor it simulates (relative to the vendor's base URL, as
OpenAI's are to ``https://api.openai.com/v1``):

- ``GET /{vendor}/organization/usage/completions`` and ``.../usage/embeddings``:
  ``start_time`` (required), ``end_time``, ``bucket_width`` (1m, 1h, 1d),
  ``group_by`` (``model``), ``models``, ``limit``, ``page``;
- ``GET /{vendor}/organization/costs``: ``start_time``, ``end_time``,
  ``bucket_width`` (1d), ``group_by`` (``line_item``), ``limit``, ``page``; amounts
  from the sandbox's own price list, in the vendor's currency (lower case);
- ``POST /_sandbox/usage/skew`` ``{"vendor", "model"?, "field", "factor"?, "add"?}``
  makes the export over-report (``GET`` lists the rules, ``DELETE`` clears them).

Buckets start at ``start_time`` rounded down to the bucket width (UTC), and every
bucket in range is listed, empty ones included. No key is checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from aiohttp import web

from kanjia.sandbox._state import SandboxState
from kanjia.sandbox._usage import Sums, parse_skew
from kanjia.sandbox._wire import Handler, json_response, read_json

__all__ = ["add_usage_routes"]

_WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
#: bucket_width -> (default, max) limit
_USAGE_LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}
_COST_LIMITS = (7, 180)


class _BadQuery(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def _error(exc: _BadQuery) -> web.Response:
    body = {"error": {"message": str(exc), "type": "invalid_request_error",
                      "param": exc.param, "code": None}}
    return json_response(body, status=400)


def _values(request: web.Request, name: str) -> list[str]:
    """``name=a&name=b``, ``name[]=a`` and ``name=a,b`` all give [a, b]."""
    raw = request.query.getall(name, []) + request.query.getall(f"{name}[]", [])
    return [v.strip() for item in raw for v in item.split(",") if v.strip()]


def _int(request: web.Request, name: str, default: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _BadQuery(f"{name} must be an integer", name) from None


class _Window:
    """The buckets one page lists."""

    def __init__(self, request: web.Request, widths: Iterable[str],
                 limits: Callable[[str], tuple[int, int]]) -> None:
        start = _int(request, "start_time")
        if start is None:
            raise _BadQuery("start_time is required", "start_time")
        end = _int(request, "end_time")
        end = int(time.time()) + 1 if end is None else end
        width_name = request.query.get("bucket_width", "1d")
        if width_name not in widths:
            raise _BadQuery(f"bucket_width must be one of {', '.join(widths)}", "bucket_width")
        default, most = limits(width_name)
        limit = _int(request, "limit", default)
        assert limit is not None
        if not 1 <= limit <= most:
            raise _BadQuery(f"limit must be between 1 and {most}", "limit")
        width = _WIDTHS[width_name]
        first = _int(request, "page", start - start % width)
        assert first is not None
        if end <= start:
            raise _BadQuery("end_time must be after start_time", "end_time")
        self.width = width
        self.starts = list(range(first, end, width))
        self.more = len(self.starts) > limit
        self.starts = self.starts[:limit]

    def page(self, buckets: list[dict[str, Any]]) -> dict[str, Any]:
        nxt = self.starts[-1] + self.width if self.more and self.starts else None
        return {"object": "page", "data": buckets, "has_more": self.more,
                "next_page": None if nxt is None else str(nxt)}

    def bucket(self, start: int, results: list[dict[str, Any]]) -> dict[str, Any]:
        return {"object": "bucket", "start_time": start, "end_time": start + self.width,
                "results": results}


def _grouped(state: SandboxState, vendor: str, kind: str, window: _Window, start: int,
             by_model: bool, models: list[str]) -> dict[str | None, Sums]:
    out: dict[str | None, Sums] = {}
    for _, _, model, sums in state.usage.select(vendor, (kind,), start, start + window.width):
        if models and model not in models:
            continue
        out.setdefault(model if by_model else None, Sums()).add(sums)
    return out


def _usage_handler(state: SandboxState, vendor: str, kind: str) -> Handler:
    book = state.usage

    def result(model: str | None, s: Sums) -> dict[str, Any]:
        def n(field: str, value: int) -> int:
            return round(book.skewed(vendor, model, field, value))

        if kind == "embeddings":
            return {"object": "organization.usage.embeddings.result",
                    "input_tokens": n("input_tokens", s.input_tokens),
                    "num_model_requests": n("requests", s.requests),
                    "project_id": None, "user_id": None, "api_key_id": None, "model": model}
        return {"object": "organization.usage.completions.result",
                "input_tokens": n("input_tokens", s.input_tokens),
                "output_tokens": n("output_tokens", s.output_tokens),
                "input_cached_tokens": n("cached_tokens", s.cached_tokens),
                "input_cache_write_tokens": s.cache_write_tokens,
                "input_audio_tokens": 0, "output_audio_tokens": 0,
                "num_model_requests": n("requests", s.requests),
                "project_id": None, "user_id": None, "api_key_id": None,
                "model": model, "batch": None}

    async def usage(request: web.Request) -> web.Response:
        try:
            window = _Window(request, ("1m", "1h", "1d"), _USAGE_LIMITS.__getitem__)
            group_by = _values(request, "group_by")
            bad = [g for g in group_by if g not in ("model", "project_id", "user_id",
                                                    "api_key_id", "batch")]
            if bad:
                raise _BadQuery(f"group_by does not support {bad[0]!r}", "group_by")
        except _BadQuery as exc:
            return _error(exc)
        models = _values(request, "models")
        buckets = []
        for start in window.starts:
            groups = _grouped(state, vendor, kind, window, start, "model" in group_by, models)
            buckets.append(window.bucket(start, [result(m, s) for m, s in sorted(
                groups.items(), key=lambda kv: kv[0] or "")]))
        return json_response(window.page(buckets))

    return usage


_LINES = (("input", "cost_input", "uncached_tokens"), ("cached input", "cost_cached",
          "cached_tokens"), ("cache write", "cost_cache_write", "cache_write_tokens"),
          ("output", "cost_output", "output_tokens"))


def _costs_handler(state: SandboxState, vendor: str) -> Handler:
    book = state.usage

    def amount(model: str | None, value: Decimal, currency: str) -> dict[str, Any]:
        return {"value": book.skewed(vendor, model, "cost", float(value)),
                "currency": currency.lower()}

    def results(sums: list[tuple[str, Sums]], by_line: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if by_line:
            for model, s in sums:
                if s.currency is None:
                    continue
                for label, cost_field, token_field in _LINES:
                    tokens = getattr(s, token_field)
                    if tokens <= 0:
                        continue
                    out.append({"object": "organization.costs.result",
                                "amount": amount(model, getattr(s, cost_field), s.currency),
                                "line_item": f"{model}, {label}", "project_id": None,
                                "quantity": tokens, "quantity_unit": "tokens"})
            return out
        totals: dict[str, Decimal] = {}
        for _, s in sums:
            if s.currency is not None:
                totals[s.currency] = totals.get(s.currency, Decimal(0)) + s.cost_input \
                    + s.cost_cached + s.cost_cache_write + s.cost_output
        return [{"object": "organization.costs.result", "amount": amount(None, v, c),
                 "line_item": None, "project_id": None} for c, v in sorted(totals.items())]

    async def costs(request: web.Request) -> web.Response:
        try:
            window = _Window(request, ("1d",), lambda _: _COST_LIMITS)
            group_by = _values(request, "group_by")
            bad = [g for g in group_by if g not in ("line_item", "project_id")]
            if bad:
                raise _BadQuery(f"group_by does not support {bad[0]!r}", "group_by")
        except _BadQuery as exc:
            return _error(exc)
        buckets = []
        for start in window.starts:
            per_model: dict[str, Sums] = {}
            for _, _, model, s in state.usage.select(vendor, ("completions", "embeddings"),
                                                     start, start + window.width):
                per_model.setdefault(model, Sums()).add(s)
            buckets.append(window.bucket(start, results(sorted(per_model.items()),
                                                        "line_item" in group_by)))
        return json_response(window.page(buckets))

    return costs


def add_usage_routes(app: web.Application, state: SandboxState,
                     vendors: tuple[str, ...]) -> None:
    for vendor in vendors:
        for kind in ("completions", "embeddings"):
            app.router.add_get(f"/{vendor}/organization/usage/{kind}",
                               _usage_handler(state, vendor, kind))
        app.router.add_get(f"/{vendor}/organization/costs", _costs_handler(state, vendor))

    async def add_skew(request: web.Request) -> web.Response:
        try:
            skew = parse_skew(await read_json(request), vendors)
        except ValueError as exc:
            return json_response({"error": str(exc)}, status=400)
        state.usage.skews.append(skew)
        return json_response({"skew": skew.as_json(), "skews": len(state.usage.skews)})

    async def list_skews(request: web.Request) -> web.Response:
        return json_response({"skews": [s.as_json() for s in state.usage.skews]})

    async def clear_skews(request: web.Request) -> web.Response:
        cleared = len(state.usage.skews)
        state.usage.skews.clear()
        return json_response({"cleared": cleared})

    app.router.add_post("/_sandbox/usage/skew", add_skew)
    app.router.add_get("/_sandbox/usage/skew", list_skews)
    app.router.add_delete("/_sandbox/usage/skew", clear_skews)
