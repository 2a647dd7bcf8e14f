"""Compare our prices with other catalogs, without ever overwriting ours.

Two sources: the snapshot bundled in genai-prices (USD per 1M, with its own
start-date and time-of-day conditions) and a LiteLLM-format JSON file (USD per
token). For each of our models that the other catalog knows, the prices in force
at the same instant are compared in USD (ours converted with the catalog's FX table);
differences above the tolerance are reported with both values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from kanjia._extras import require
from kanjia.catalog._catalog import Catalog
from kanjia.catalog._model import ModelEntry
from kanjia.errors import ConfigError

__all__ = ["Comparison", "Disagreement", "compare_genai_prices", "compare_litellm"]

#: relative difference below which two values agree (CNY prices converted at our FX
#: rate differ by a few percent from vendors' own USD lists)
TOLERANCE = Decimal("0.05")
PRICE_FIELDS = ("input_mtok", "cached_mtok", "cache_write_mtok", "output_mtok")

#: our vendor id -> genai-prices provider id (when the model has no explicit id)
GENAI_PROVIDERS = {"deepseek": "deepseek", "zhipu": "zhipuai", "moonshot": "moonshotai",
                   "minimax": "minimax", "openai": "openai", "anthropic": "anthropic",
                   "gemini": "google", "openrouter": "openrouter"}
#: our vendor id -> LiteLLM key prefix ("" = bare model id)
LITELLM_PREFIXES = {"deepseek": "deepseek/", "qwen": "dashscope/", "moonshot": "moonshot/",
                    "minimax": "minimax/", "doubao": "volcengine/", "hunyuan": "tencent/",
                    "gemini": "gemini/", "openrouter": "openrouter/", "openai": "",
                    "anthropic": ""}


@dataclass(frozen=True, slots=True)
class Disagreement:
    catalog: str                    # "genai-prices" | "litellm"
    key: str                        # our vendor/model
    their_id: str
    field: str                      # input_mtok, ..., context_window, max_output, price
    ours: Decimal | None            # in our billing currency (or tokens)
    ours_currency: str | None
    ours_usd: Decimal | None        # ours converted to USD (prices only)
    theirs_usd: Decimal | None      # theirs (USD, or tokens)
    period_id: str | None
    #: why ours differs, with the primary source backing it (from the model's data)
    explained: str | None = None

    @property
    def relative(self) -> Decimal | None:
        a, b = (self.ours_usd if self.ours_currency else self.ours), self.theirs_usd
        if a is None or b is None:
            return None
        top = max(abs(a), abs(b))
        return abs(a - b) / top if top else Decimal(0)


@dataclass(frozen=True, slots=True)
class Comparison:
    catalog: str
    at: datetime
    matched: tuple[str, ...]                  # our keys found there
    missing: tuple[str, ...]                  # our keys with an id there, not found
    disagreements: tuple[Disagreement, ...]


def _ours(model: ModelEntry, at: datetime) -> tuple[str | None, dict[str, Decimal | None]]:
    period = model.price_at(at)
    if period is None:
        return None, {}
    window = period.window_at(at)
    src: Any = window if window is not None else period
    values = {f: getattr(src, f) for f in PRICE_FIELDS}
    label = f"{period.id}+{window.label}" if window is not None else period.id
    return label, values


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _diff(catalog: Catalog, name: str, model: ModelEntry, their_id: str, at: datetime,
          theirs: Mapping[str, Decimal | None], limits: Mapping[str, int | None],
          tolerance: Decimal) -> Iterator[Disagreement]:
    key = name.replace("-", "_")
    for d in _raw_diff(catalog, name, model, their_id, at, theirs, limits, tolerance):
        why = model.differs.get(f"{key}.{d.field}") or (
            model.differs.get(key) if d.field in PRICE_FIELDS or d.field == "price" else None)
        yield replace(d, explained=why) if why else d


def _raw_diff(catalog: Catalog, name: str, model: ModelEntry, their_id: str, at: datetime,
              theirs: Mapping[str, Decimal | None], limits: Mapping[str, int | None],
              tolerance: Decimal) -> Iterator[Disagreement]:
    label, ours = _ours(model, at)
    period = model.price_at(at)
    if period is None:
        if any(v for v in theirs.values()):
            yield Disagreement(name, model.key, their_id, "price", None, None, None,
                               theirs.get("input_mtok"), None)
    else:
        for f in PRICE_FIELDS:
            mine, other = ours.get(f), theirs.get(f)
            if mine is None or other is None:
                continue
            usd = catalog.fx.convert(mine, period.currency, "USD", at.date())
            d = Disagreement(name, model.key, their_id, f, mine, period.currency, usd, other,
                             label)
            rel = d.relative
            if rel is not None and rel > tolerance:
                yield d
    for f, other_limit in limits.items():
        mine_limit = getattr(model, f)
        if mine_limit is None or other_limit is None:
            continue
        d = Disagreement(name, model.key, their_id, f, Decimal(mine_limit), None, None,
                         Decimal(other_limit), None)
        rel = d.relative
        if rel is not None and rel > tolerance:
            yield d


def compare_genai_prices(catalog: Catalog, at: datetime | None = None,
                         tolerance: Decimal = TOLERANCE) -> Comparison:
    """Our prices against the snapshot bundled in genai-prices (offline)."""
    require("genai_prices", "catalog", "comparing with genai-prices", "genai-prices")
    from genai_prices.data_snapshot import get_snapshot
    from genai_prices.types import TieredPrices

    at = at or datetime.now(UTC)
    snapshot = get_snapshot()
    matched: list[str] = []
    missing: list[str] = []
    found: list[Disagreement] = []
    for model in catalog.models:
        ref = model.catalog_ids.get("genai_prices")
        if ref is not None:
            provider_id, _, model_ref = ref.partition("/")
        elif model.vendor in GENAI_PROVIDERS:
            provider_id, model_ref = GENAI_PROVIDERS[model.vendor], model.model
        else:
            continue
        try:
            _, info = snapshot.find_provider_model(model_ref, None, provider_id, None)
        except LookupError:
            if ref is not None:
                missing.append(model.key)
            continue
        matched.append(model.key)
        price = info.get_prices(at)

        def base(v: Any) -> Decimal | None:
            return v.base if isinstance(v, TieredPrices) else v

        theirs = {"input_mtok": base(price.input_mtok), "cached_mtok": base(price.cache_read_mtok),
                  "cache_write_mtok": base(price.cache_write_mtok),
                  "output_mtok": base(price.output_mtok)}
        if all(v is None for v in theirs.values()):
            theirs = dict.fromkeys(PRICE_FIELDS, Decimal(0))   # an empty price is free
            theirs["cached_mtok"] = theirs["cache_write_mtok"] = None
        found += _diff(catalog, "genai-prices", model, f"{provider_id}/{info.id}", at, theirs,
                       {"context_window": info.context_window}, tolerance)
    return Comparison("genai-prices", at, tuple(matched), tuple(missing), tuple(found))


def compare_litellm(catalog: Catalog, path: Path, at: datetime | None = None,
                    tolerance: Decimal = TOLERANCE) -> Comparison:
    """Our prices against a LiteLLM ``model_prices_and_context_window.json`` file."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object of model -> prices")
    at = at or datetime.now(UTC)
    matched: list[str] = []
    missing: list[str] = []
    found: list[Disagreement] = []
    mega = Decimal(1_000_000)
    for model in catalog.models:
        explicit = model.catalog_ids.get("litellm")
        candidates = [explicit] if explicit else []
        prefix = LITELLM_PREFIXES.get(model.vendor)
        if prefix is not None:
            candidates += [prefix + model.model, *(prefix + a for a in model.aliases)]
        key = next((c for c in candidates if isinstance(raw.get(c), dict)), None)
        if key is None:
            if explicit:
                missing.append(model.key)
            continue
        entry: dict[str, Any] = raw[key]
        matched.append(model.key)

        def per_m(name: str, e: dict[str, Any] = entry) -> Decimal | None:
            v = _dec(e.get(name))
            return None if v is None else (v * mega).normalize()

        theirs = {"input_mtok": per_m("input_cost_per_token"),
                  "cached_mtok": per_m("cache_read_input_token_cost"),
                  "cache_write_mtok": per_m("cache_creation_input_token_cost"),
                  "output_mtok": per_m("output_cost_per_token")}
        limits = {"context_window": _int(entry.get("max_input_tokens")),
                  "max_output": _int(entry.get("max_output_tokens"))}
        found += _diff(catalog, "litellm", model, key, at, theirs, limits, tolerance)
    return Comparison("litellm", at, tuple(matched), tuple(missing), tuple(found))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
