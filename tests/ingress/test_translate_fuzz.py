"""Any JSON into the Messages and Responses translators: a translation or a BadRequest
naming the field, never another exception (which would be a 500)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kanjia.errors import BadRequest
from kanjia.ingress import count_input, messages_to_chat, responses_to_chat

FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

_scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
_json = st.recursive(_scalars, lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=12)


def _typed(kinds: list[str]) -> Any:
    """Objects shaped like blocks or items: a known ``type`` (or any value) and fields."""
    fields = ("text", "id", "name", "input", "content", "tool_use_id", "source", "role",
              "call_id", "arguments", "output", "signature", "thinking", "cache_control",
              "input_schema", "parameters", "mode", "effort", "budget_tokens")
    return st.fixed_dictionaries({"type": st.sampled_from(kinds) | _json},
                                 optional={f: _json for f in fields})


_blocks = ["text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking",
           "document", "search_result", "server_tool_use", "web_search_tool_result",
           "custom", "enabled", "adaptive", "auto", "any", "tool", "none"]
_messages_bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(["m", ""]) | _json},
    optional={"max_tokens": st.integers(-1, 5) | _json, "stream": _json,
              "messages": st.lists(st.fixed_dictionaries(
                  {"role": st.sampled_from(["user", "assistant", "system"]) | _json},
                  optional={"content": st.text(max_size=5)
                            | st.lists(_typed(_blocks), max_size=3) | _json}), max_size=3)
              | _json,
              "system": _json | st.lists(_typed(_blocks), max_size=2),
              "tools": st.lists(_typed(_blocks), max_size=2) | _json,
              "tool_choice": _typed(_blocks) | _json, "thinking": _typed(_blocks) | _json,
              "output_config": st.fixed_dictionaries({}, optional={
                  "effort": _json | st.sampled_from(["low", "max"]), "format": _json}) | _json,
              "metadata": _json, "stop_sequences": _json, "temperature": _json,
              "top_k": _json, "mcp_servers": _json})

_items = ["message", "function_call", "function_call_output", "reasoning", "custom_tool_call",
          "custom_tool_call_output", "web_search_call", "function", "custom", "allowed_tools",
          "web_search", "text", "json_schema", "input_text", "input_image", "output_text"]
_responses_bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(["m", ""]) | _json},
    optional={"input": st.text(max_size=5) | st.lists(_typed(_items), max_size=3) | _json,
              "instructions": _json, "tools": st.lists(_typed(_items), max_size=2) | _json,
              "tool_choice": _typed(_items) | _json | st.sampled_from(["auto", "x"]),
              "text": st.fixed_dictionaries({}, optional={"format": _typed(_items)}) | _json,
              "reasoning": st.fixed_dictionaries({}, optional={"effort": _json}) | _json,
              "max_output_tokens": _json, "store": _json, "stream": _json,
              "parallel_tool_calls": _json, "metadata": _json, "temperature": _json})


def _translates_or_refuses(fn: Any, body: Any) -> None:
    try:
        fn(body)
    except BadRequest:
        return


_ONE = [{"role": "user", "content": "x"}]


@FUZZ
@given(_messages_bodies)
@example({"model": "m", "max_tokens": 1, "messages": _ONE, "tool_choice": {"type": {}}})
@example({"model": "m", "max_tokens": 1, "messages": _ONE, "output_config": {"effort": []}})
def test_messages_translator_never_crashes(body: dict[str, Any]) -> None:
    _translates_or_refuses(messages_to_chat, body)
    _translates_or_refuses(count_input, body)


@FUZZ
@given(_responses_bodies)
@example({"model": "m", "input": [{"type": 1}]})
@example({"model": "m", "input": [{"role": []}]})
@example({"model": "m", "input": "x", "reasoning": {"effort": {}}})
@example({"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}],
          "tool_choice": {"type": "allowed_tools", "mode": []}})
def test_responses_translator_never_crashes(body: dict[str, Any]) -> None:
    _translates_or_refuses(lambda b: responses_to_chat(b, []), body)
