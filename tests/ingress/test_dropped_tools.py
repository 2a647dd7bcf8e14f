"""Tools only the native vendor runs (Anthropic's server tools, OpenAI's hosted tools,
tool types kanjia does not know), on both APIs through the official SDKs: passed through
to the vendor that runs them; for any other upstream dropped from the offered tools and
named in ``x-kanjia-dropped-tools`` (plain and streamed), and a 400 naming the tool only
when ``tool_choice`` forces a dropped one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from kanjia.config import load_settings
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread

from .conftest import Sent, spied_gateway

HAIKU = "anthropic/claude-3-5-haiku-20241022"
MINI = "openai/gpt-4o-mini"
DEEPSEEK = "deepseek/deepseek-chat"
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}
SERVER_TOOLS = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
                {"type": "bash_20250124", "name": "bash"}]
FUNCTION = {"type": "function", "name": "get_weather", "description": "The weather.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
HOSTED = [{"type": "web_search"}, {"type": "namespace", "name": "codex_tools"}]


@pytest.fixture(scope="module")
def routed(sandbox: SandboxThread) -> Iterator[tuple[ServerThread, Sent]]:
    settings = load_settings(None, sandbox_url=sandbox.url, routes={
        "deepseek-first": {"models": [DEEPSEEK, HAIKU], "objective": "ordered"},
        "deepseek-then-gpt": {"models": [DEEPSEEK, MINI], "objective": "ordered"}})
    with spied_gateway(settings) as gw:
        yield gw


@pytest.fixture()
def claude(routed: tuple[ServerThread, Sent]) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=routed[0].url, api_key="t", max_retries=0,
                             timeout=20) as c:
        yield c


@pytest.fixture()
def oai(routed: tuple[ServerThread, Sent]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=routed[0].url + "/v1", api_key="t", max_retries=0,
                       timeout=20) as c:
        yield c


# -- Messages ------------------------------------------------------------------------

@pytest.mark.parametrize("choice", [None, {"type": "auto"}, {"type": "any"},
                                    {"type": "tool", "name": "get_weather"}])
def test_messages_server_tools_dropped_and_named(routed: tuple[ServerThread, Sent],
                                                 claude: anthropic.Anthropic,
                                                 choice: dict[str, Any] | None) -> None:
    _, sent = routed
    extra: Any = {"tool_choice": choice} if choice else {}
    raw = claude.messages.with_raw_response.create(
        model=DEEPSEEK, max_tokens=50, tools=[WEATHER, *SERVER_TOOLS],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Paris? [[sandbox:tokens=4]]"}], **extra)
    assert raw.parse().type == "message"
    assert raw.headers["x-kanjia-dropped-tools"] == "web_search,bash"
    upstream = sent.last("/deepseek/chat/completions")
    assert [t["function"]["name"] for t in upstream["tools"]] == ["get_weather"]


def test_messages_streamed_names_dropped_tools(claude: anthropic.Anthropic) -> None:
    with claude.messages.with_streaming_response.create(
            model=DEEPSEEK, max_tokens=50, stream=True,
            tools=[WEATHER, *SERVER_TOOLS],  # type: ignore[list-item]
            messages=[{"role": "user", "content": "Paris? [[sandbox:tokens=4]]"}]) as raw:
        assert raw.headers["x-kanjia-dropped-tools"] == "web_search,bash"
        events = [line for line in raw.iter_lines() if line.startswith("event: ")]
    assert events[0] == "event: message_start" and events[-1] == "event: message_stop"


@pytest.mark.parametrize("model", [DEEPSEEK, "deepseek-then-gpt"])
def test_messages_forcing_a_dropped_tool_is_a_400(claude: anthropic.Anthropic,
                                                  model: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(
            model=model, max_tokens=50, tools=[WEATHER, *SERVER_TOOLS],  # type: ignore[list-item]
            tool_choice={"type": "tool", "name": "web_search"},
            messages=[{"role": "user", "content": "news?"}])
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "web_search" in body["error"]["message"]


def test_messages_server_tools_reach_anthropic(routed: tuple[ServerThread, Sent],
                                               claude: anthropic.Anthropic) -> None:
    """Anthropic runs its server tools: nothing dropped, nothing named, and forcing one is
    fine; a route whose first candidate cannot run it goes to its Anthropic candidate."""
    _, sent = routed
    tools: Any = [WEATHER, *SERVER_TOOLS]
    for model in (HAIKU, "deepseek-first"):
        raw = claude.messages.with_raw_response.create(
            model=model, max_tokens=50, tools=tools,
            tool_choice={"type": "tool", "name": "web_search"},
            messages=[{"role": "user", "content": "news? [[sandbox:tokens=4]]"}])
        assert raw.parse().type == "message"
        assert "x-kanjia-dropped-tools" not in raw.headers
        assert raw.headers["x-kanjia-vendor"] == "anthropic"
        assert sent.last("/anthropic/v1/messages")["tools"] == tools


# -- Responses -----------------------------------------------------------------------

@pytest.mark.parametrize("choice", ["auto", "required", {"type": "function",
                                                         "name": "get_weather"}])
def test_responses_hosted_tools_dropped_and_named(routed: tuple[ServerThread, Sent],
                                                  oai: openai.OpenAI, choice: Any) -> None:
    _, sent = routed
    raw = oai.responses.with_raw_response.create(
        model=DEEPSEEK, tools=[FUNCTION, *HOSTED], tool_choice=choice,
        input="Paris? [[sandbox:tokens=4]]")
    assert raw.parse().status == "completed"
    assert raw.headers["x-kanjia-dropped-tools"] == "web_search,codex_tools"
    upstream = sent.last("/deepseek/chat/completions")
    assert [t["function"]["name"] for t in upstream["tools"]] == ["get_weather"]


def test_responses_required_with_every_tool_dropped_is_not_a_400(
        routed: tuple[ServerThread, Sent], oai: openai.OpenAI) -> None:
    """``required`` forces no particular tool: with every offered tool dropped there is
    nothing left to call, so the choice goes too and the model answers."""
    _, sent = routed
    raw = oai.responses.with_raw_response.create(
        model=DEEPSEEK, tools=HOSTED, tool_choice="required",  # type: ignore[arg-type]
        input="news? [[sandbox:tokens=4]]")
    assert raw.parse().status == "completed"
    assert raw.headers["x-kanjia-dropped-tools"] == "web_search,codex_tools"
    upstream = sent.last("/deepseek/chat/completions")
    assert "tools" not in upstream and "tool_choice" not in upstream


def test_responses_streamed_names_dropped_tools(oai: openai.OpenAI) -> None:
    with oai.responses.with_streaming_response.create(
            model=DEEPSEEK, stream=True, tools=[FUNCTION, *HOSTED],  # type: ignore[list-item]
            input="Paris? [[sandbox:tokens=4]]") as raw:
        assert raw.headers["x-kanjia-dropped-tools"] == "web_search,codex_tools"
        events = [line for line in raw.iter_lines() if line.startswith("event: ")]
    assert events[0] == "event: response.created"
    assert events[-1] == "event: response.completed"


@pytest.mark.parametrize("model", [DEEPSEEK, "deepseek-first"])
def test_responses_forcing_a_dropped_tool_is_a_400(oai: openai.OpenAI, model: str) -> None:
    """No candidate of the model speaks the Responses API: forcing a hosted tool is the
    translator's 400 naming it, in OpenAI's error shape."""
    with pytest.raises(openai.BadRequestError) as info:
        oai.responses.create(model=model, tools=[FUNCTION, *HOSTED],  # type: ignore[list-item]
                             tool_choice={"type": "web_search"}, input="news?")
    assert info.value.status_code == 400
    err = info.value.body
    assert isinstance(err, dict) and err["type"] == "invalid_request_error"
    assert "web_search" in err["message"]


def test_responses_hosted_tools_reach_openai(routed: tuple[ServerThread, Sent],
                                             oai: openai.OpenAI) -> None:
    _, sent = routed
    tools: Any = [FUNCTION, *HOSTED]
    for model in (MINI, "deepseek-then-gpt"):
        raw = oai.responses.with_raw_response.create(
            model=model, tools=tools, tool_choice={"type": "web_search"},
            input="news? [[sandbox:tokens=4]]")
        assert raw.parse().status == "completed"
        assert "x-kanjia-dropped-tools" not in raw.headers
        assert raw.headers["x-kanjia-vendor"] == "openai"
        assert sent.last("/openai/responses")["tools"] == tools
