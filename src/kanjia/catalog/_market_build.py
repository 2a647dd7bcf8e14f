"""Build ``catalog/market/genai_prices.json`` from the installed genai-prices snapshot.

The rest of the market (every model kanjia's own sourced data does not have) comes
from the snapshot bundled in the ``genai-prices`` package, read offline. Importing that
snapshot takes about half a second, too slow for the gateway's start, so it is
converted once into a small JSON file that ``_market`` loads in milliseconds.

Rebuild it with one command after upgrading genai-prices or adding sourced models::

    kanjia catalog build-market

``tests/catalog/test_market.py`` fails when the file is not what this command writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timezone
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

from kanjia._extras import require
from kanjia.catalog._catalog import Catalog

__all__ = ["MARKET_FILE", "NOT_CALLABLE", "PROVIDER_VENDORS", "SKIPPED_PROVIDERS", "build_market",
           "market_json", "write_market"]

MARKET_FILE = Path(__file__).parent / "market" / "genai_prices.json"

#: genai-prices provider id -> kanjia vendor id (kanjia's own id where one matches)
PROVIDER_VENDORS: Mapping[str, str] = {
    "anthropic": "anthropic", "deepseek": "deepseek", "google": "gemini", "openai": "openai",
    "openrouter": "openrouter", "moonshotai": "moonshot", "zhipuai": "zhipu",
    "minimax": "minimax",
    "x-ai": "xai", "aws": "bedrock", "azure": "azure", "mistral": "mistral", "groq": "groq",
    "together": "together", "fireworks": "fireworks", "cerebras": "cerebras",
    "perplexity": "perplexity", "novita": "novita", "cohere": "cohere", "zai": "zai",
    "arcee": "arcee", "avian": "avian", "baseten": "baseten", "cloudflare": "cloudflare",
    "databricks": "databricks", "doubleword": "doubleword", "meta": "meta", "modal": "modal",
    "ovhcloud": "ovhcloud", "quicksilverpro": "quicksilverpro", "voyageai": "voyage",
    "typesafe": "typesafe",
}
#: providers left out, and why (prefix match for the Hugging Face router's resellers)
SKIPPED_PROVIDERS: Mapping[str, str] = {
    "huggingface_": "Hugging Face router resale of other providers' models (same ids, "
                    "prices of the underlying provider)",
    "github-copilot": "a subscription's premium-request multipliers, not an API price",
    "cursor": "an editor subscription's usage prices, not an API",
    "openai-decisions": "a per-decision product, not token-priced",
    "elevenlabs": "audio priced per character or hour, not per token",
}
_TOKEN_KEYS = {"input_mtok": "input_mtok", "cache_read_mtok": "cached_mtok",
               "cache_write_mtok": "cache_write_mtok", "output_mtok": "output_mtok"}


def _skipped(provider_id: str) -> bool:
    return any(provider_id == k or (k.endswith("_") and provider_id.startswith(k))
               for k in SKIPPED_PROVIDERS)


def _num(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _flat(prices: Any) -> dict[str, Any] | None:
    """Token prices of a genai-prices ModelPrice: {our field: Decimal | tiers}, or None
    when it has no token price at all."""
    out: dict[str, Any] = {}
    for theirs, ours in _TOKEN_KEYS.items():
        value = getattr(prices, theirs, None)
        if value is not None:
            out[ours] = value
    return out or None


def _split_tiers(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Base prices plus kanjia tiers (one threshold with every price; genai-prices tiers
    are per price, cliff rule, thresholds on the prompt's tokens like ours)."""
    from genai_prices.types import TieredPrices

    base: dict[str, Any] = {}
    starts: set[int] = set()
    for k, v in flat.items():
        if isinstance(v, TieredPrices):
            base[k] = _num(v.base)
            starts |= {t.start for t in v.tiers}
        else:
            base[k] = _num(v)
    tiers: list[dict[str, Any]] = []
    for start in sorted(starts):
        tier: dict[str, Any] = {"above_input_tokens": start}
        for k, v in flat.items():
            price = v
            if isinstance(v, TieredPrices):
                price = v.base
                for t in v.tiers:
                    if t.start <= start:
                        price = t.price
            tier[k] = _num(price)
        tiers.append(tier)
    if tiers:
        base["tiers"] = tiers
    return base


def _window(constraint: Any, flat: Mapping[str, Any], tz: timezone,
            n: int) -> dict[str, Any] | None:
    def local(t: time) -> str:
        aware = t if t.tzinfo is not None else t.replace(tzinfo=UTC)
        moment = datetime.combine(date(2024, 1, 1), aware).astimezone(tz)
        return f"{moment:%H:%M}"

    prices = _split_tiers(flat)
    if "input_mtok" not in prices or "output_mtok" not in prices or "tiers" in prices:
        return None
    start, end = local(constraint.start_time), local(constraint.end_time)
    if start == end:
        return None
    label = "offpeak" if n == 0 else f"window-{n + 1}"
    return {"label": label, "hours": [f"{start}-{'24:00' if end == '00:00' else end}"],
            **prices}


def _periods(info: Any, tz: timezone) -> list[dict[str, Any]] | None:
    from genai_prices.types import ModelPrice, StartDateConstraint, TimeOfDateConstraint

    dated: dict[date | None, dict[str, Any] | None] = {}
    windows: list[Any] = []
    items = [(None, info.prices)] if isinstance(info.prices, ModelPrice) else \
        [(cp.constraint, cp.prices) for cp in info.prices]
    for constraint, prices in items:
        flat = _flat(prices)
        if isinstance(constraint, TimeOfDateConstraint):
            if flat is not None:
                windows.append((constraint, flat))
        elif isinstance(constraint, StartDateConstraint):
            dated[constraint.start_date] = flat
        else:
            dated.pop(None, None)
            dated[None] = flat          # a later unconditional price wins (last active)
    order = sorted(dated, key=lambda d: (d is not None, d or date.min))
    periods: list[dict[str, Any]] = []
    for start in order:
        flat = dated[start]
        if flat is None:
            if periods:
                continue
            if not info.id.endswith(":free"):
                continue
            period: dict[str, Any] = {"free": True}
        else:
            period = _split_tiers(flat)
            if "input_mtok" not in period:
                continue
            if all(Decimal(v) == 0 for k, v in period.items() if k != "tiers") \
                    and "tiers" not in period:
                period = {"free": True}
        if start is not None:
            period["start"] = start.isoformat()
        periods.append(period)
    if not periods:
        return None
    if windows and not periods[-1].get("free") and "tiers" not in periods[-1]:
        built = [w for i, (c, f) in enumerate(windows) if (w := _window(c, f, tz, i))]
        if built:
            periods[-1]["windows"] = built
    return periods


#: id/name fragments of models kanjia cannot call (it proxies chat and embeddings only)
NOT_CALLABLE = ("tts", "whisper", "transcribe", "dall-e", "gpt-image", "imagen", "-image",
                "image-", "rerank", "moderation", "speech", "audio-preview", "realtime",
                "sora", "veo", "video")


def _capabilities(model_id: str, name: str | None) -> list[str] | None:
    """["embeddings"] or ["chat"] from the id and name; None for a model kanjia cannot
    call (image, audio, video, rerank, moderation)."""
    text = f"{model_id} {name or ''}".lower()
    if "embed" in text:
        return ["embeddings"]
    if any(marker in text for marker in NOT_CALLABLE):
        return None
    return ["chat"]


def build_market(catalog: Catalog, today: date | None = None) -> dict[str, Any]:
    """The market file's content for ``catalog`` (kanjia's own sourced data only)."""
    require("genai_prices", "catalog", "building the market file", "genai-prices")
    from genai_prices.data_snapshot import get_snapshot

    from kanjia.catalog._compare import GENAI_PROVIDERS

    snapshot = get_snapshot()
    pkg = version("genai-prices")
    # every genai-prices model that one of our sourced models already is
    covered: set[tuple[str, str]] = set()
    for m in catalog.models:
        ref = m.catalog_ids.get("genai_prices")
        if ref is not None:
            provider_id, _, model_ref = ref.partition("/")
        elif m.vendor in GENAI_PROVIDERS:
            provider_id, model_ref = GENAI_PROVIDERS[m.vendor], m.model
        else:
            continue
        try:
            provider, info = snapshot.find_provider_model(model_ref, None, provider_id, None)
        except LookupError:
            continue
        covered.add((provider.id, info.id))
    ours = {k.lower() for m in catalog.models for k in (m.key, *(f"{m.vendor}/{a}"
                                                                for a in m.aliases))}
    vendors: dict[str, Any] = {}
    models: list[dict[str, Any]] = []
    for provider in snapshot.providers:
        if _skipped(provider.id):
            continue
        vid = PROVIDER_VENDORS.get(provider.id)
        if vid is None:
            raise ValueError(f"genai-prices provider {provider.id!r} has no kanjia vendor id: "
                             "add it to PROVIDER_VENDORS or SKIPPED_PROVIDERS")
        known = catalog.vendors.get(vid)
        tz: timezone = known.tz if known is not None else UTC
        url = provider.pricing_urls[0] if provider.pricing_urls else None
        count = 0
        for info in provider.models:
            key = f"{vid}/{info.id}"
            if (provider.id, info.id) in covered or key.lower() in ours:
                continue
            periods = _periods(info, tz)
            capabilities = _capabilities(info.id, info.name)
            if periods is None or capabilities is None:
                continue
            entry: dict[str, Any] = {"vendor": vid, "id": info.id,
                                     "capabilities": capabilities, "periods": periods}
            if info.name:
                entry["name"] = info.name
            if info.context_window:
                entry["context_window"] = info.context_window
            if info.deprecated:
                entry["deprecated"] = True
            models.append(entry)
            count += 1
        if count:
            vendors[vid] = {"provider": provider.id, "source": f"genai-prices {pkg} "
                            f"{provider.id}" + (f"; {url}" if url else "")}
            if known is None:
                vendors[vid].update(name=provider.name,
                                    pricing_urls=list(provider.pricing_urls or []))
    return {
        "generated": "by `kanjia catalog build-market` from the genai-prices package; "
                     "do not edit (rebuild instead)",
        "package": "genai-prices", "version": pkg,
        "checked": (today or datetime.now(UTC).date()).isoformat(),
        "evidence": "S",
        "skipped_providers": dict(SKIPPED_PROVIDERS),
        "vendors": vendors, "models": models,
    }


def market_json(content: Mapping[str, Any]) -> str:
    return json.dumps(content, ensure_ascii=False, indent=None, separators=(",", ":"),
                      sort_keys=False) + "\n"


def write_market(catalog: Catalog, path: Path = MARKET_FILE,
                 today: date | None = None) -> tuple[int, int]:
    """Write the market file; (models, vendors) written. ``today`` defaults to the date
    already in the file when nothing else changed, so a rebuild is reproducible."""
    content = build_market(catalog, today)
    if today is None and path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict) and _same(old, content):
            content["checked"] = old.get("checked", content["checked"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(market_json(content), encoding="utf-8")
    return len(content["models"]), len(content["vendors"])


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in _keys(a, b) if k != "checked")


def _keys(*maps: Mapping[str, Any]) -> Iterable[str]:
    return {k for m in maps for k in m}
