"""GET /v1/models: OpenAI's list shape for the SDK, each model priced in OpenRouter's shape."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from kanjia.catalog import Catalog, Override, write_overrides
from kanjia.config import load_settings
from kanjia.errors import ConfigError
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app
from kanjia.server.models_list import ModelsList, model_object

#: the fields of one model in OpenRouter's GET /api/v1/models (openrouter.ai/docs/models)
OPENROUTER_PRICING = {"prompt", "completion", "request", "image", "web_search",
                      "internal_reasoning", "input_cache_read", "input_cache_write"}


def _get(gateway: ServerThread) -> dict[str, Any]:
    with urllib.request.urlopen(gateway.url + "/v1/models", timeout=20) as r:
        body: dict[str, Any] = json.loads(r.read())
    return body


def test_the_openai_sdk_lists_the_models(client: openai.OpenAI) -> None:
    page = client.models.list()
    ids = [m.id for m in page.data]
    assert "deepseek/deepseek-chat" in ids
    first = page.data[0]
    assert first.object == "model" and isinstance(first.created, int) and first.owned_by


def test_each_priced_model_carries_openrouter_fields(gateway: ServerThread,
                                                     catalog: Catalog) -> None:
    body = _get(gateway)
    assert body["object"] == "list"
    by_id = {m["id"]: m for m in body["data"]}
    m = by_id["deepseek/deepseek-chat"]
    assert set(m["pricing"]) == OPENROUTER_PRICING
    for name in ("prompt", "completion", "input_cache_read"):
        assert isinstance(m["pricing"][name], str)       # strings, as OpenRouter sends
        Decimal(m["pricing"][name])
    assert m["context_length"] == catalog.get("deepseek", "deepseek-chat").context_window
    assert set(m["architecture"]) >= {"input_modalities", "output_modalities", "tokenizer"}
    assert set(m["top_provider"]) == {"context_length", "max_completion_tokens",
                                      "is_moderated"}
    # the price as billed: CNY per token, the period in force now
    entry = catalog.get("deepseek", "deepseek-chat")
    assert entry is not None
    now = datetime.now(UTC)
    period = entry.price_at(now)
    assert period is not None
    window = period.window_at(now)
    src = window if window is not None else period
    billed = m["kanjia_pricing"]
    assert billed["currency"] == "CNY"
    assert Decimal(billed["prompt"]) * 1_000_000 == src.input_mtok
    assert Decimal(billed["input_cache_read"]) * 1_000_000 == src.cached_mtok
    usd = catalog.fx.convert(src.input_mtok, "CNY", "USD", now.date())
    assert Decimal(m["pricing"]["prompt"]) == (usd / 1_000_000).normalize()


def test_a_usd_model_is_priced_per_token_exactly(catalog: Catalog) -> None:
    entry = catalog.get("openai", "gpt-4o-mini")
    assert entry is not None
    at = datetime(2026, 6, 1, tzinfo=UTC)
    period = entry.price_at(at)
    assert period is not None and period.currency == "USD"
    item = model_object(entry.key, "openai", entry.model, entry, catalog, at)
    assert Decimal(item["pricing"]["prompt"]) * 1_000_000 == period.input_mtok
    assert Decimal(item["pricing"]["completion"]) * 1_000_000 == period.output_mtok
    assert item["architecture"]["input_modalities"] == ["text", "image"]


def test_an_unpriced_model_says_so(catalog: Catalog) -> None:
    item = model_object("x/unknown", "x", "unknown", None, catalog, datetime.now(UTC))
    assert item["pricing"] is None and item["object"] == "model"


def test_the_body_is_rendered_once_an_hour(catalog: Catalog) -> None:
    entry = catalog.get("openai", "gpt-4o")
    listing = ModelsList(catalog)
    calls = 0

    def targets():  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        yield ("openai/gpt-4o", "openai", "gpt-4o", entry)

    t0 = datetime(2026, 6, 1, 10, 5, tzinfo=UTC)
    a = listing.body(targets(), {}, t0)
    b = listing.body(targets(), {}, t0.replace(minute=55))
    assert a is b and calls == 1
    listing.body(targets(), {}, t0.replace(hour=11))
    assert calls == 2


def test_the_gateway_loads_the_override_file_at_start(sandbox: SandboxThread,
                                                      tmp_path: Path) -> None:
    overrides = tmp_path / "price-overrides.toml"
    start = datetime.now(UTC).date() - timedelta(days=1)
    write_overrides(overrides, [Override(
        model="openai/gpt-4o", start=start, currency="USD", input_mtok=Decimal("1.5"),
        output_mtok=Decimal(6), source="test: accepted change", checked=start,
        evidence="S")])
    settings = load_settings(None, sandbox_url=sandbox.url, price_overrides=str(overrides),
                             batch_queue=str(tmp_path / "q.db"))
    with ServerThread(build_app(settings, env={})) as srv:
        body = _get(srv)
    gpt = next(m for m in body["data"] if m["id"] == "openai/gpt-4o")
    assert gpt["pricing"]["prompt"] == "0.0000015"
    assert gpt["kanjia_pricing"]["source"] == "test: accepted change"
    broken = tmp_path / "broken.toml"
    broken.write_text('[[prices]]\nmodel = "openai/gpt-4o"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"prices\[0\] \(openai/gpt-4o\)"):
        build_app(load_settings(None, sandbox_url=sandbox.url, price_overrides=str(broken)),
                  env={})


def test_a_market_model_passing_through_is_priced(client: openai.OpenAI,
                                                   catalog: Catalog) -> None:
    """A model only the market knows is billed at its genai-prices price, not at zero."""
    entry = catalog.get("openrouter", "01-ai/yi-large")
    assert entry is not None and entry.source_file.startswith("catalog/market/")
    raw = client.chat.completions.with_raw_response.create(
        model="openrouter/01-ai/yi-large", max_tokens=20,
        messages=[{"role": "user", "content": "hello there"}])
    usage = raw.parse().usage
    assert usage is not None
    period = entry.price_at(datetime.now(UTC))
    assert period is not None and period.output_mtok is not None
    amount, currency = raw.headers["x-kanjia-cost"].split()
    assert currency == "USD"
    expected = (usage.prompt_tokens * period.input_mtok
                + usage.completion_tokens * period.output_mtok) / 1_000_000
    assert Decimal(amount) == pytest.approx(expected, rel=Decimal("0.001"))
    assert Decimal(amount) > 0
