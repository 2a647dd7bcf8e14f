"""Per-request price controls in OpenRouter's shape: ``provider`` and ``:floor``/``:nitro``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner

from kanjia.catalog import load_catalog
from kanjia.cli.route import explain
from kanjia.config import load_settings
from kanjia.errors import BadRequest
from kanjia.routing.directory import ModelDirectory
from kanjia.routing.health import HealthBoard
from kanjia.routing.planner import Planner, take_controls
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app
from kanjia.tokens import rough_prompt_tokens
from kanjia.vendors import load_vendor_specs

CATALOG = load_catalog()
SPECS = load_vendor_specs()
#: four priced models; "ordered" keeps them in this (not cheapest-first) order
ROUTE = {"models": ["openai/gpt-4o", "deepseek/deepseek-chat", "qwen/qwen-plus",
                    "moonshot/moonshot-v1-8k"], "objective": "ordered"}
CONFIG = """
[routes.ord]
models = ["openai/gpt-4o", "deepseek/deepseek-chat", "qwen/qwen-plus", "moonshot/moonshot-v1-8k"]
objective = "ordered"
"""
MESSAGES = [{"role": "user", "content": "What does a price war do for the buyer?"}]


def _planner(health: HealthBoard | None = None) -> Planner:
    settings = load_settings(None, sandbox_url="http://sb.invalid", routes={"ord": ROUTE})
    directory = ModelDirectory(settings, CATALOG, SPECS, {})
    return Planner(settings, directory, CATALOG, health or HealthBoard())


def _plan(p: Planner, model: str, provider: dict[str, Any] | None = None) -> list[str]:
    body: dict[str, Any] = {"model": model, "messages": MESSAGES, "max_tokens": 100}
    if provider is not None:
        body["provider"] = provider
    controls = take_controls(body, SPECS)
    assert "provider" not in body  # never forwarded to a vendor
    return [t.key for t in p.plan(body["model"], body, "chat", controls).targets]


def test_no_controls_keeps_the_route_order() -> None:
    assert _plan(_planner(), "ord") == ROUTE["models"]


def test_max_price_below_every_candidate_is_refused_naming_max_price() -> None:
    with pytest.raises(BadRequest) as err:
        _plan(_planner(), "ord", {"max_price": {"prompt": "0.01", "completion": 0.01}})
    assert err.value.status == 400
    assert "provider.max_price" in str(err.value)
    assert "every candidate" in str(err.value)


def test_max_price_keeps_the_cheap_ones_in_usd_or_cny() -> None:
    p = _planner()
    # gpt-4o is $2.50 / $10 per million; the others are well under $1 / $3
    kept = _plan(p, "ord", {"max_price": {"prompt": 1, "completion": 3}})
    assert "openai/gpt-4o" not in kept and kept
    # the same cap in CNY (about 7x): gpt-4o is still out, the rest still in
    in_cny = _plan(p, "ord", {"max_price": {"prompt": "7", "completion": "21",
                                            "currency": "CNY"}})
    assert in_cny == kept


def test_max_price_on_a_plain_model() -> None:
    with pytest.raises(BadRequest, match=r"provider\.max_price"):
        _plan(_planner(), "openai/gpt-4o", {"max_price": {"completion": 1}})
    assert _plan(_planner(), "openai/gpt-4o", {"max_price": {"completion": 20}}) == \
        ["openai/gpt-4o"]


def test_only_and_ignore() -> None:
    p = _planner()
    assert _plan(p, "ord", {"only": ["qwen", "moonshot"]}) == ["qwen/qwen-plus",
                                                             "moonshot/moonshot-v1-8k"]
    assert _plan(p, "ord", {"ignore": ["openai", "QWEN"]}) == ["deepseek/deepseek-chat",
                                                             "moonshot/moonshot-v1-8k"]
    with pytest.raises(BadRequest, match=r"provider\.only"):
        _plan(p, "ord", {"only": ["anthropic"]})
    with pytest.raises(BadRequest, match=r"provider\.ignore"):
        _plan(p, "deepseek/deepseek-chat", {"ignore": ["deepseek"]})


def test_unknown_vendor_is_a_400_naming_it() -> None:
    for field in ("only", "ignore", "order"):
        with pytest.raises(BadRequest, match="unknown vendor 'nosuchvendor'") as err:
            _plan(_planner(), "ord", {field: ["deepseek", "nosuchvendor"]})
        assert f"provider.{field}" in str(err.value)


def test_order_and_allow_fallbacks() -> None:
    p = _planner()
    assert _plan(p, "ord", {"order": ["moonshot", "qwen"]}) == [
        "moonshot/moonshot-v1-8k", "qwen/qwen-plus", "openai/gpt-4o", "deepseek/deepseek-chat"]
    assert _plan(p, "ord", {"order": ["moonshot", "qwen"], "allow_fallbacks": False}) == [
        "moonshot/moonshot-v1-8k", "qwen/qwen-plus"]
    assert _plan(p, "ord", {"allow_fallbacks": False}) == ["openai/gpt-4o"]


def test_bad_shapes_are_400s() -> None:
    p = _planner()
    for provider, what in [({"sort": "cheap"}, "provider.sort"),
                           ({"max_price": {"prompt": "x"}}, "max_price.prompt"),
                           ({"max_price": {"prompt": -1}}, "max_price.prompt"),
                           ({"max_price": {"currency": "EUR"}}, "max_price.currency"),
                           ({"allow_fallbacks": "no"}, "allow_fallbacks"),
                           ({"data_collection": "maybe"}, "data_collection"),
                           ({"bogus": 1}, "provider.bogus")]:
        with pytest.raises(BadRequest, match=what):
            _plan(p, "ord", provider)
    # OpenRouter fields kanjia accepts without using
    assert _plan(p, "ord", {"data_collection": "deny", "require_parameters": True,
                            "quantizations": ["fp8"], "zdr": False}) == ROUTE["models"]


def _cheapest_explained(tmp_path: Path, prompt_tokens: int, max_tokens: int) -> str:
    cfg = tmp_path / "kanjia.toml"
    cfg.write_text(CONFIG)
    result = CliRunner().invoke(explain, ["ord", "--prompt-tokens", str(prompt_tokens),
                                          "--max-tokens", str(max_tokens), "--config",
                                          str(cfg), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    kept = [c for c in json.loads(result.output)["candidates"] if c["kept"]]
    return str(min(kept, key=lambda c: float(c["expected_cost_reference"]))["model"])


def test_floor_picks_the_cheapest_candidate_route_explain_shows(tmp_path: Path) -> None:
    cheapest = _cheapest_explained(tmp_path, rough_prompt_tokens(MESSAGES), 100)
    assert cheapest != ROUTE["models"][0]  # the route's own order starts elsewhere
    plan = _plan(_planner(), "ord:floor")
    assert plan[0] == cheapest
    # and so does sort: "price"
    assert _plan(_planner(), "ord", {"sort": "price"})[0] == cheapest


def test_nitro_picks_the_fastest_observed() -> None:
    health = HealthBoard()
    p = _planner(health)
    latencies = {"openai": 900.0, "deepseek": 400.0, "qwen": 120.0, "moonshot": 2500.0}
    for t in p.directory.targets:
        if t.key in ROUTE["models"]:
            for d in t.deployments:
                health.get(d.id).success(latencies[t.vendor])
    assert _plan(p, "ord:nitro") == ["qwen/qwen-plus", "deepseek/deepseek-chat",
                                     "openai/gpt-4o", "moonshot/moonshot-v1-8k"]
    assert _plan(p, "ord", {"sort": {"by": "latency"}})[0] == "qwen/qwen-plus"


def test_suffix_needs_a_name_and_is_removed() -> None:
    body: dict[str, Any] = {"model": "deepseek/deepseek-chat:floor"}
    controls = take_controls(body, SPECS)
    assert body["model"] == "deepseek/deepseek-chat"
    assert controls is not None and controls.sort == "price"
    body = {"model": "ollama/llama3:8b"}
    assert take_controls(body, SPECS) is None and body["model"] == "ollama/llama3:8b"


# -- through the gateway, with the openai SDK ------------------------------------------
@pytest.fixture(scope="module")
def gw(sandbox: SandboxThread) -> Iterator[ServerThread]:
    settings = load_settings(None, sandbox_url=sandbox.url, routes={"ord": ROUTE},
                             server={"upstream_timeout_s": 5.0, "first_byte_timeout_s": 5.0})
    with ServerThread(build_app(settings, env={})) as srv:
        yield srv


@pytest.fixture()
def sdk(gw: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="test", max_retries=0,
                       timeout=20) as c:
        yield c


def test_sdk_extra_body_provider_max_price_refused(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        sdk.chat.completions.create(model="ord", messages=MESSAGES,  # type: ignore[arg-type]
                                    extra_body={"provider": {"max_price": {"prompt": 0.01}}})
    assert err.value.status_code == 400
    assert "max_price" in str(err.value)


def test_sdk_floor_and_provider_controls(sdk: openai.OpenAI, tmp_path: Path) -> None:
    raw = sdk.chat.completions.with_raw_response.create(
        model="ord:floor", messages=MESSAGES, max_tokens=100)  # type: ignore[arg-type]
    cheapest = _cheapest_explained(tmp_path, rough_prompt_tokens(MESSAGES), 100)
    assert f"{raw.headers['x-kanjia-vendor']}/{raw.headers['x-kanjia-model']}" == cheapest
    assert raw.parse().choices[0].message.content
    raw = sdk.chat.completions.with_raw_response.create(
        model="ord", messages=MESSAGES,  # type: ignore[arg-type]
        extra_body={"provider": {"only": ["qwen", "deepseek"], "order": ["qwen"],
                                 "allow_fallbacks": False}})
    assert raw.headers["x-kanjia-vendor"] == "qwen"
    assert raw.headers["x-kanjia-candidates"] == "qwen/qwen-plus"
    with pytest.raises(openai.BadRequestError, match="unknown vendor 'acme'"):
        sdk.chat.completions.create(model="ord", messages=MESSAGES,  # type: ignore[arg-type]
                                    extra_body={"provider": {"ignore": ["acme"]}})
