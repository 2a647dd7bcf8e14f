"""The llamacpp vendor: enabled by a base URL alone, priced 0 as open weights, routable."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import openai
import pytest

from kanjia.catalog import load_catalog
from kanjia.config import load_settings
from kanjia.routing.directory import ModelDirectory
from kanjia.sandbox import SandboxSettings, SandboxThread
from kanjia.server import ServerThread, build_app
from kanjia.vendors import load_vendor_specs


def _directory(env: dict[str, str], **overrides: object) -> ModelDirectory:
    return ModelDirectory(load_settings(None, **overrides), load_catalog(),
                          load_vendor_specs(), env)


def test_catalog_lists_smollm2_as_free_open_weights() -> None:
    catalog = load_catalog()
    entry = catalog.get("llamacpp", "smollm2-135m")
    assert entry is not None and entry.open_weights and entry.region == "self-hosted"
    assert catalog.get("llamacpp", "SmolLM2-135M-Instruct") is entry
    period = entry.price_at(datetime.now(UTC))
    assert period is not None and period.free and period.input_mtok == 0
    assert period.output_mtok in (None, 0)


def test_self_hosted_vendor_needs_a_base_url_not_a_key() -> None:
    assert "llamacpp" not in _directory({}).enabled_vendors()
    assert "base_url" in _directory({}).disabled_reason["llamacpp"]
    by_env = _directory({"LLAMACPP_BASE_URL": "http://127.0.0.1:9/v1"})
    assert by_env.deployments["llamacpp"][0].base_url == "http://127.0.0.1:9/v1"
    by_config = _directory({}, vendors={"llamacpp": {"base_url": "http://127.0.0.1:7/v1/"}})
    assert by_config.deployments["llamacpp"][0].base_url == "http://127.0.0.1:7/v1"
    assert by_config.resolve("llamacpp/smollm2-135m").entry is not None
    off = _directory({"LLAMACPP_BASE_URL": "http://x/v1"},
                     vendors={"llamacpp": {"enabled": False}})
    assert "llamacpp" not in off.enabled_vendors()


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServerThread]:
    with SandboxThread(SandboxSettings(port=0)) as sandbox:
        settings = load_settings(
            None, vendors={"llamacpp": {"base_url": sandbox.base_url("llamacpp")}},
            routes={"local-chat": {"models": ["llamacpp/smollm2-135m"]}})
        with ServerThread(build_app(settings, env={})) as srv:
            yield srv


@pytest.mark.parametrize(("model", "route"), [("llamacpp/smollm2-135m", None),
                                              ("llamacpp/SmolLM2-135M-Instruct", None),
                                              ("local-chat", "local-chat")])
def test_chat_through_the_gateway(gateway: ServerThread, model: str, route: str | None) -> None:
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="t", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=model, max_tokens=20, messages=[{"role": "user", "content": "Hello"}])
    reply = raw.parse()
    assert raw.headers["x-kanjia-vendor"] == "llamacpp"
    assert raw.headers["x-kanjia-cost"].startswith("0 ")
    assert raw.headers.get("x-kanjia-route") == route
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_builtin_routes_do_not_pick_the_tiny_local_model(gateway: ServerThread) -> None:
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="t", max_retries=0) as client:
        for route in ("cheap-chat", "code", "long-doc", "cn-only"):
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model=route, max_tokens=5, messages=[{"role": "user", "content": "x"}])
            except openai.APIStatusError:
                continue  # no other vendor is enabled here: nothing to route to
            assert raw.headers["x-kanjia-vendor"] != "llamacpp"
