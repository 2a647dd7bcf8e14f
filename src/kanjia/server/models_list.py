"""``GET /v1/models``: OpenAI's model list, with each model's price in OpenRouter's shape.

The list keeps OpenAI's shape (``object: "list"``, ``data[].id/object/created/owned_by``)
so the OpenAI SDK's ``client.models.list()`` reads it, and adds OpenRouter's model
metadata so tools that read prices from the gateway find them: ``pricing.prompt``,
``pricing.completion``, ``pricing.input_cache_read``, ``pricing.input_cache_write``
(USD per token, as decimal strings, like OpenRouter), ``context_length``,
``architecture`` {input_modalities, output_modalities, tokenizer, instruct_type} and
``top_provider`` {context_length, max_completion_tokens, is_moderated}. CNY prices are
converted at the catalog's exchange rate of the day; ``kanjia_pricing`` keeps the
price as billed (currency, period, per token).

The rendered body is cached per hour (prices change at period starts, at most that
often in the catalog), so the endpoint costs one dictionary look-up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from kanjia.catalog import Catalog, ModelEntry

__all__ = ["ModelsList", "model_object"]

_TOKENIZERS = (("claude", "Claude"), ("gpt", "GPT"), ("o1", "GPT"), ("o3", "GPT"),
               ("o4", "GPT"), ("gemini", "Gemini"), ("qwen", "Qwen"), ("deepseek", "DeepSeek"),
               ("llama", "Llama3"), ("mistral", "Mistral"), ("glm", "GLM"), ("kimi", "Other"))


def _per_token(value: Decimal | None) -> str | None:
    if value is None:
        return None
    per = (value / 1_000_000).normalize()
    return "0" if per == 0 else format(per, "f")


def _tokenizer(model: str) -> str:
    low = model.lower()
    return next((name for key, name in _TOKENIZERS if key in low), "Other")


def model_object(key: str, vendor: str, model: str, entry: ModelEntry | None,
                 catalog: Catalog, at: datetime) -> dict[str, Any]:
    """One ``data[]`` item: OpenAI's four fields plus OpenRouter's metadata."""
    caps = entry.capabilities if entry is not None else frozenset()
    inputs = ["text", "image"] if "vision" in caps else ["text"]
    outputs = ["embeddings"] if caps == {"embeddings"} else ["text"]
    item: dict[str, Any] = {
        "id": key, "object": "model", "created": 0, "owned_by": vendor,
        "vendor": vendor, "name": model, "capabilities": sorted(caps),
        "context_window": entry.context_window if entry is not None else None,
        "context_length": entry.context_window if entry is not None else None,
        "architecture": {"input_modalities": inputs, "output_modalities": outputs,
                         "tokenizer": _tokenizer(model), "instruct_type": None},
        "top_provider": {"context_length": entry.context_window if entry else None,
                         "max_completion_tokens": entry.max_output if entry else None,
                         "is_moderated": False},
        "pricing": None, "kanjia_pricing": None,
    }
    period = entry.price_at(at) if entry is not None else None
    if period is None:
        return item
    window = period.window_at(at)
    src: Any = window if window is not None else period
    day = at.date()

    def usd(v: Decimal | None) -> Decimal | None:
        return None if v is None else catalog.fx.convert(v, period.currency, "USD", day)

    cached = src.cached_mtok if src.cached_mtok is not None else src.input_mtok
    write = src.cache_write_mtok if src.cache_write_mtok is not None else src.input_mtok
    item["pricing"] = {
        "prompt": _per_token(usd(src.input_mtok)),
        "completion": _per_token(usd(src.output_mtok)),
        "request": "0", "image": "0", "web_search": "0", "internal_reasoning": "0",
        "input_cache_read": _per_token(usd(cached)),
        "input_cache_write": _per_token(usd(write)),
    }
    item["kanjia_pricing"] = {
        "currency": period.currency,
        "period": period.id + (f"+{window.label}" if window is not None else ""),
        "prompt": _per_token(src.input_mtok), "completion": _per_token(src.output_mtok),
        "input_cache_read": _per_token(cached), "input_cache_write": _per_token(write),
        "tiered": bool(period.tiers), "source": period.source,
        "checked": period.checked.isoformat(),
    }
    return item


class ModelsList:
    """Renders the list once per hour; thread-safe, owned by one app."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._lock = threading.Lock()
        self._cached: tuple[str, bytes] | None = None

    def body(self, targets: Iterable[tuple[str, str, str, ModelEntry | None]],
             routes: Mapping[str, str], now: datetime | None = None) -> bytes:
        """``targets``: (key, vendor, model, catalog entry); ``routes``: name ->
        description. Both must be the same on every call (they are, for one app)."""
        now = now or datetime.now(UTC)
        hour = now.strftime("%Y-%m-%dT%H")
        cached = self._cached
        if cached is not None and cached[0] == hour:
            return cached[1]
        with self._lock:
            data = [model_object(k, v, m, e, self._catalog, now) for k, v, m, e in targets]
            data.extend({"id": name, "object": "model", "created": 0, "owned_by": "kanjia",
                         "vendor": "kanjia-route", "description": description}
                        for name, description in routes.items())
            body = orjson.dumps({"object": "list", "data": data})
            self._cached = (hour, body)
        return body
