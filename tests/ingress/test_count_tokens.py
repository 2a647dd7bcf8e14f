"""POST /v1/messages/count_tokens through the official anthropic SDK: Anthropic's own count
when the model is Anthropic's (the sandbox's count comes back, the client's body and beta
headers reach it), kanjia's estimate, marked ``x-kanjia-estimate: true``, for any other
vendor or when Anthropic's count fails. Also: which of the client's headers reach
Anthropic (on a count and on a message)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from kanjia.config import load_settings
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread

from .conftest import Sent, spied_gateway

HAIKU = "anthropic/claude-3-5-haiku-20241022"
WIRE_MODEL = "claude-3-5-haiku-20241022"
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}
PROMPT = {"system": "Be brief. " * 40, "tools": [WEATHER],
          "messages": [{"role": "user", "content": "What is the weather in Paris? " * 30}]}


@pytest.fixture(scope="module")
def counted(sandbox: SandboxThread) -> Iterator[tuple[ServerThread, Sent]]:
    settings = load_settings(None, sandbox_url=sandbox.url, routes={
        "claude-first": {"models": [HAIKU, "deepseek/deepseek-chat"], "objective": "ordered"},
        "deepseek-first": {"models": ["deepseek/deepseek-chat", HAIKU],
                           "objective": "ordered"}})
    with spied_gateway(settings) as gw:
        yield gw


@pytest.fixture()
def client(counted: tuple[ServerThread, Sent]) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=counted[0].url, api_key="test", max_retries=0,
                             timeout=20) as c:
        yield c


@pytest.fixture()
def vendor(sandbox: SandboxThread) -> Iterator[anthropic.Anthropic]:
    """The sandbox's Anthropic, called directly: the oracle's own count."""
    with anthropic.Anthropic(base_url=f"{sandbox.url}/anthropic", api_key="sk-ant-direct",
                             max_retries=0, timeout=20) as c:
        yield c


@pytest.mark.parametrize("model", [HAIKU, "claude-first"])
def test_anthropic_counts_for_an_anthropic_model(counted: tuple[ServerThread, Sent],
                                                 client: anthropic.Anthropic,
                                                 vendor: anthropic.Anthropic,
                                                 model: str) -> None:
    _, sent = counted
    before = len(sent.to("/count_tokens"))
    raw = client.messages.with_raw_response.count_tokens(model=model, **PROMPT)
    got = raw.parse()
    expected = vendor.messages.count_tokens(model=WIRE_MODEL, **PROMPT).input_tokens
    assert got.input_tokens == expected
    assert "x-kanjia-estimate" not in raw.headers and "x-kanjia-usage" not in raw.headers
    assert raw.headers["x-kanjia-model"] == HAIKU
    calls = sent.to("/count_tokens")[before:]
    assert len(calls) == 1 and calls[0].url.endswith("/anthropic/v1/messages/count_tokens")
    assert json.loads(calls[0].body) == {"model": WIRE_MODEL, **PROMPT}


def test_anthropics_count_is_what_a_message_bills(client: anthropic.Anthropic,
                                                  vendor: anthropic.Anthropic) -> None:
    """The sandbox's count is the prompt its messages bill (the oracle agrees with itself),
    and differs from kanjia's estimate for the same prompt: the number that came back is
    Anthropic's, not a guess that happens to match."""
    counted = client.messages.count_tokens(model=HAIKU, **PROMPT).input_tokens
    msg = vendor.messages.create(model=WIRE_MODEL, max_tokens=5, **PROMPT)
    u = msg.usage
    assert counted == u.input_tokens + (u.cache_read_input_tokens or 0) \
        + (u.cache_creation_input_tokens or 0)
    estimate = client.messages.with_raw_response.count_tokens(
        model="deepseek/deepseek-chat", **PROMPT)
    assert estimate.headers["x-kanjia-estimate"] == "true"


def test_beta_headers_and_query_reach_anthropic(counted: tuple[ServerThread, Sent],
                                                client: anthropic.Anthropic) -> None:
    """Claude Code's count: ``?beta=true``, ``anthropic-beta`` and its version header."""
    _, sent = counted
    before = len(sent.to("/count_tokens"))
    raw = client.beta.messages.with_raw_response.count_tokens(
        model=HAIKU, betas=["interleaved-thinking-2025-05-14"], extra_query={"beta": "true"},
        messages=[{"role": "user", "content": "hi there"}])
    assert raw.parse().input_tokens > 0
    asked = raw.http_request.headers
    (call,) = sent.to("/count_tokens")[before:]
    assert call.url.endswith("/v1/messages/count_tokens?beta=true")
    assert "interleaved-thinking-2025-05-14" in call.headers["anthropic-beta"].split(",")
    assert call.headers["anthropic-beta"] == asked["anthropic-beta"]
    assert call.headers["anthropic-version"] == asked["anthropic-version"]
    assert call.headers["x-api-key"] != "test"  # the vendor's key, never the client's


@pytest.mark.parametrize("model", ["deepseek/deepseek-chat", "deepseek-first"])
def test_other_vendors_get_the_marked_estimate(counted: tuple[ServerThread, Sent],
                                               client: anthropic.Anthropic,
                                               model: str) -> None:
    _, sent = counted
    before = len(sent.to("/count_tokens"))
    raw = client.messages.with_raw_response.count_tokens(model=model, **PROMPT)
    short = client.messages.count_tokens(model=model,
                                         messages=[{"role": "user", "content": "hi"}])
    assert 0 < short.input_tokens < raw.parse().input_tokens
    assert raw.headers["x-kanjia-estimate"] == "true"
    assert raw.headers["x-kanjia-usage"] == "estimated"
    assert raw.headers["x-kanjia-model"] == "deepseek/deepseek-chat"
    assert sent.to("/count_tokens")[before:] == []  # no vendor call


@pytest.mark.parametrize("fault", ["overloaded", "server_error", "rate_limit", "auth"])
def test_a_failed_anthropic_count_falls_back_to_the_estimate(
        client: anthropic.Anthropic, vendor: anthropic.Anthropic, fault: str) -> None:
    messages = [{"role": "user", "content": f"count me [[sandbox:fault={fault}]]"}]
    with pytest.raises(anthropic.APIStatusError):  # the vendor did fail
        vendor.messages.count_tokens(model=WIRE_MODEL, messages=messages)
    raw = client.messages.with_raw_response.count_tokens(model=HAIKU, messages=messages)
    assert raw.status_code == 200 and raw.parse().input_tokens > 0
    assert raw.headers["x-kanjia-estimate"] == "true"
    assert raw.headers["x-kanjia-model"] == HAIKU


def test_a_body_anthropic_refuses_is_the_clients_error(counted: tuple[ServerThread, Sent],
                                                      client: anthropic.Anthropic) -> None:
    """The body goes as it came: a field count_tokens does not take is Anthropic's 400,
    not an estimate that hides the mistake."""
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.count_tokens(model=HAIKU, extra_body={"max_tokens": 10},
                                     messages=[{"role": "user", "content": "hi"}])
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]


def test_what_only_anthropic_takes_is_counted_by_anthropic(
        client: anthropic.Anthropic, vendor: anthropic.Anthropic) -> None:
    """A PDF cannot be translated: Anthropic counts it; for any other vendor it is the
    same 400 as /v1/messages gives (no estimate of a request that could not be sent)."""
    messages: Any = [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "JVBERi0xLjQK"}},
        {"type": "text", "text": "Summarise this."}]}]
    got = client.messages.count_tokens(model=HAIKU, messages=messages)
    assert got.input_tokens == vendor.messages.count_tokens(
        model=WIRE_MODEL, messages=messages).input_tokens
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.count_tokens(model="deepseek/deepseek-chat", messages=messages)
    assert "document" in str(info.value) or "source" in str(info.value)


def test_anthropics_refusal_never_carries_the_vendor_key(counted: tuple[ServerThread, Sent],
                                                         client: anthropic.Anthropic) -> None:
    """A vendor that quotes the credential in its error message (``echo_key``): the
    relayed 400 names the field, never kanjia's key for the vendor."""
    _, sent = counted
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.count_tokens(model=HAIKU, extra_body={"max_tokens": 10}, messages=[
            {"role": "user", "content": "hi [[sandbox:echo_key]]"}])
    (call,) = sent.to("/count_tokens")[-1:]
    key = call.headers["x-api-key"]
    assert key and "max_tokens" in str(info.value.body)
    assert key not in json.dumps(info.value.body) and key not in info.value.response.text


@pytest.mark.parametrize("model", [HAIKU, "deepseek/deepseek-chat"])
def test_a_body_too_deep_is_a_400(counted: tuple[ServerThread, Sent],
                                             model: str) -> None:
    """A schema nested deeper than the gateway reads: a 400 naming why, never a 500."""
    import http.client
    from urllib.parse import urlparse

    schema: dict[str, Any] = {"type": "object"}
    for _ in range(300):
        schema = {"type": "object", "properties": {"x": schema}}
    body = {"model": model, "tools": [{"name": "deep", "input_schema": schema}],
            "messages": [{"role": "user", "content": "hi"}]}
    u = urlparse(counted[0].url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    try:
        conn.request("POST", "/v1/messages/count_tokens", body=json.dumps(body).encode(),
                     headers={"x-api-key": "t", "content-type": "application/json"})
        resp = conn.getresponse()
        status, data = resp.status, json.loads(resp.read())
    finally:
        conn.close()
    assert status == 400 and data["error"]["type"] == "invalid_request_error", data
    assert "nested" in data["error"]["message"]


def test_workspace_and_profile_headers_stay_with_the_client(
        counted: tuple[ServerThread, Sent], client: anthropic.Anthropic) -> None:
    """The SDK's ``workspace_id`` / ``user_profile_id`` name parts of the caller's own
    Anthropic organisation: kanjia calls with its own key and passes neither on, to a
    message or a count."""
    _, sent = counted
    before = len(sent.requests)
    msg = client.messages.create(model=HAIKU, max_tokens=10, workspace_id="wrkspc_client",
                                 user_profile_id="prof_client", messages=[
                                     {"role": "user", "content": "hi [[sandbox:tokens=2]]"}])
    assert msg.type == "message"
    client.messages.count_tokens(model=HAIKU, messages=[{"role": "user", "content": "hi"}],
                                 extra_headers={"anthropic-workspace-id": "wrkspc_client"})
    calls = sent.requests[before:]
    assert len(calls) == 2
    for call in calls:
        names = {k.lower() for k in call.headers}
        assert "anthropic-workspace-id" not in names
        assert "anthropic-user-profile-id" not in names
