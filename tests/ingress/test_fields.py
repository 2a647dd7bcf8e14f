"""Fields of both APIs (as the official SDKs' types define them) whose translation had no
test of its own: what the chat form gets, and what only the native vendor may take."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlparse

import pytest

from kanjia.errors import BadRequest
from kanjia.ingress import (
    Untranslatable,
    messages_to_chat,
    native_only_form,
    responses_to_chat,
)
from kanjia.server import ServerThread

from .conftest import Ledger

M = "deepseek/deepseek-chat"
TOOLS = [{"name": "f", "input_schema": {"type": "object"}}]


def _msg(*content: Any, **kw: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": list(content) if content else "hi"}]
    return {"model": M, "max_tokens": 100, "messages": messages, **kw}


def _resp(**kw: Any) -> dict[str, Any]:
    return {"model": M, "input": "hi", **kw}


def _only_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    """The request is Anthropic's alone, yet admission can still read a stand-in of it."""
    with pytest.raises(Untranslatable):
        messages_to_chat(body)
    return messages_to_chat(native_only_form(body)).chat


# -- Messages ------------------------------------------------------------------------

def test_thinking_between_tools_is_accepted_and_maps_to_no_effort() -> None:
    chat = messages_to_chat(_msg(thinking={"type": "between_tools"}), lambda _m: True).chat
    assert "reasoning_effort" not in chat
    with pytest.raises(BadRequest, match=r"thinking\.type"):
        messages_to_chat(_msg(thinking={"type": "sometimes"}))


def test_max_tokens_zero_warms_anthropics_cache_only() -> None:
    """``max_tokens: 0`` (cache pre-warming) is Anthropic's alone: any other model gets
    a 400 naming max_tokens; admission reserves as for one token."""
    with pytest.raises(Untranslatable, match="max_tokens"):
        messages_to_chat(_msg(max_tokens=0))
    assert messages_to_chat(native_only_form(_msg(max_tokens=0))).chat["max_tokens"] == 1
    with pytest.raises(BadRequest, match="max_tokens"):
        messages_to_chat(_msg(max_tokens=-1))


def test_top_level_cache_control_marks_the_last_message() -> None:
    mark = {"type": "ephemeral", "ttl": "1h"}
    chat = messages_to_chat(_msg(cache_control=mark, system="sys")).chat
    assert chat["messages"][-1] == {"role": "user", "content": "hi", "cache_control": mark}
    assert "cache_control" not in chat["messages"][0]
    # a request that marks its own blocks keeps its marks; nothing is added
    own = {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}
    chat = messages_to_chat(_msg(own, cache_control=mark)).chat
    assert chat["messages"][-1] == {"role": "user", "content": [own]}
    with pytest.raises(BadRequest, match="cache_control"):
        messages_to_chat(_msg(cache_control="always"))


def test_document_with_a_content_source_is_translated() -> None:
    doc = {"type": "document", "title": "Notes", "context": "from the wiki",
           "source": {"type": "content", "content": [
               {"type": "text", "text": "first"},
               {"type": "image", "source": {"type": "url", "url": "https://x/p.png"}}]}}
    chat = messages_to_chat(_msg(doc, {"type": "text", "text": "sum up"})).chat
    assert chat["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "Notes\nfrom the wiki"}, {"type": "text", "text": "first"},
        {"type": "image_url", "image_url": {"url": "https://x/p.png"}},
        {"type": "text", "text": "sum up"}]}]
    plain = {"type": "document", "source": {"type": "content", "content": "just text"}}
    assert messages_to_chat(_msg(plain)).chat["messages"][0]["content"] == "just text"


def test_an_image_by_file_id_goes_only_to_anthropic() -> None:
    image = {"type": "image", "source": {"type": "file", "file_id": "file_011"}}
    stand_in = _only_anthropic(_msg(image, {"type": "text", "text": "what is it?"}))
    assert "file_011" in stand_in["messages"][0]["content"]  # counted as its JSON
    with pytest.raises(BadRequest, match=r"source\.type"):
        messages_to_chat(_msg({"type": "image", "source": {"type": "carrier-pigeon"}}))


def _tool_turns(*result: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "look it up"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": list(result)}]}]


def test_tool_results_with_search_results_and_documents_are_translated() -> None:
    found = {"type": "search_result", "source": "https://docs/x", "title": "X",
             "content": [{"type": "text", "text": "x is 4"}]}
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                          "data": "the appendix"}}
    chat = messages_to_chat(_msg(tools=TOOLS, messages=_tool_turns(found, doc))).chat
    assert chat["messages"][-1] == {"role": "tool", "tool_call_id": "toolu_1",
                                    "content": "X https://docs/x\nx is 4\nthe appendix"}


def test_tool_results_with_anthropic_only_blocks_go_only_to_anthropic() -> None:
    ref = {"type": "tool_reference", "tool_name": "f"}
    stand_in = _only_anthropic(_msg(tools=TOOLS, messages=_tool_turns(ref)))
    assert "tool_reference" in stand_in["messages"][-1]["content"]
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                          "data": "JVBE"}}
    _only_anthropic(_msg(tools=TOOLS, messages=_tool_turns(pdf)))


def _post(srv: ServerThread, body: dict[str, Any]) -> tuple[int, dict[str, str],
                                                             dict[str, Any]]:
    u = urlparse(srv.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    try:
        conn.request("POST", "/v1/messages", body=json.dumps(body).encode(),
                     headers={"x-api-key": "t", "content-type": "application/json"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, \
            json.loads(resp.read())
    finally:
        conn.close()


HAIKU = "anthropic/claude-3-5-haiku-20241022"


@pytest.mark.parametrize("extra", [
    {"max_tokens": 0},
    {"thinking": {"type": "between_tools"}},
    {"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "file", "file_id": "file_011"}},
        {"type": "text", "text": "what is it? [[sandbox:tokens=3]]"}]}]},
], ids=["max_tokens_0", "between_tools", "image_file"])
def test_anthropic_takes_what_only_it_reads(gw: ServerThread, ledger: Ledger,
                                            extra: dict[str, Any]) -> None:
    """Each reaches Anthropic (billed from its usage); DeepSeek refuses the two it cannot
    carry with a 400 naming the field, and ignores ``between_tools``."""
    body = {"model": HAIKU, "max_tokens": 20,
            "messages": [{"role": "user", "content": "hi [[sandbox:tokens=3]]"}], **extra}
    status, headers, data = _post(gw, body)
    assert status == 200, data
    assert data["type"] == "message" and headers["x-kanjia-vendor"] == "anthropic"
    rec = ledger.wait(headers["x-kanjia-request-id"])
    assert rec.status == 200 and rec.endpoint == "messages"
    assert rec.output_tokens == data["usage"]["output_tokens"]
    status, _, data = _post(gw, {**body, "model": M})
    if "thinking" in extra:
        assert status == 200, data
    else:
        assert status == 400 and data["error"]["type"] == "invalid_request_error"
        assert ("max_tokens" if "max_tokens" in extra else "source") in data["error"]["message"]


# -- Responses -----------------------------------------------------------------------

def test_safety_identifier_is_the_user_unless_user_is_given() -> None:
    assert responses_to_chat(_resp(safety_identifier="sid"), []).chat["user"] == "sid"
    both = responses_to_chat(_resp(safety_identifier="sid", user="u"), []).chat
    assert both["user"] == "u"


@pytest.mark.parametrize(("mode", "expected"), [
    ("required", "required"), ("auto", "auto"), ("none", "none"), ("sometimes", "auto")])
def test_allowed_tools_becomes_its_mode(mode: str, expected: str) -> None:
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}},
             {"type": "function", "name": "g", "parameters": {"type": "object"}}]
    choice = {"type": "allowed_tools", "mode": mode,
              "tools": [{"type": "function", "name": "f"}]}
    chat = responses_to_chat(_resp(tools=tools, tool_choice=choice), []).chat
    assert chat["tool_choice"] == expected
    assert [t["function"]["name"] for t in chat["tools"]] == ["f", "g"]  # not narrowed
    assert "tool_choice" not in responses_to_chat(_resp(tool_choice=choice), []).chat


@pytest.mark.parametrize("kind", ["function", "custom"])
def test_a_forced_function_or_custom_tool(kind: str) -> None:
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}},
             {"type": "custom", "name": "apply_patch"}]
    name = "f" if kind == "function" else "apply_patch"
    chat = responses_to_chat(_resp(tools=tools, tool_choice={"type": kind, "name": name}),
                             []).chat
    assert chat["tool_choice"] == {"type": "function", "function": {"name": name}}


def test_developer_and_system_items_are_system_messages() -> None:
    chat = responses_to_chat(_resp(instructions="be kind", input=[
        {"type": "message", "role": "developer",
         "content": [{"type": "input_text", "text": "rules"}]},
        {"role": "system", "content": "more rules"},
        {"role": "user", "content": "hi"}]), []).chat
    assert chat["messages"] == [{"role": "system", "content": "be kind"},
                                {"role": "developer", "content": "rules"},
                                {"role": "system", "content": "more rules"},
                                {"role": "user", "content": "hi"}]


# -- what is billed is what runs -------------------------------------------------------

def test_premium_speeds_and_tiers_are_not_sent() -> None:
    """Fast mode and non-default service tiers have prices the catalog does not hold: the
    native request runs at the standard speed and tier it is billed at (the vendor's own
    usage says which ran); the standard values, and everything else, go as they came."""
    from kanjia.ingress import native_body, native_request_body

    fast = _msg(speed="fast", service_tier="auto", inference_geo="us")
    assert native_request_body(fast) == {k: v for k, v in fast.items() if k != "speed"}
    standard = _msg(speed="standard")
    assert native_request_body(standard) is standard
    for tier in ("priority", "fast", "flex", "ultrafast", ["odd"]):
        assert "service_tier" not in native_body(_resp(service_tier=tier), [])
    for tier in ("auto", "default"):
        assert native_body(_resp(service_tier=tier), [])["service_tier"] == tier
    assert native_body(_resp(), []) == {**_resp(), "store": False}
