"""Fuzzing: hypothesis on request parsing (only BadRequest or a parsed body, never another
exception), schemathesis against the running gateway's /openapi.json (no 500s, documented
statuses, OpenAI-style error bodies), and hypothesis-made bodies through the whole request
path of each adapter kind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from kanjia.errors import BadRequest
from kanjia.server.validate import parse_chat, parse_embeddings

from ._util import FALLBACK_ROUTE, Gw, gateway, request

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

_scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(
    _scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                               max_size=4),
    max_leaves=20,
)
# any JSON value: unhashable roles (lists, objects) too, see also the test below
_roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function",
                          "wizard", ""]) | json_values
_parts = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]) | json_values},
                               optional={"text": json_values, "image_url": json_values})
_content = st.text(max_size=30) | st.none() | st.lists(_parts | json_values, max_size=3) \
    | json_values
_message = st.fixed_dictionaries({"role": _roles}, optional={
    "content": _content, "name": json_values, "tool_calls": json_values,
    "tool_call_id": json_values})
_models = st.sampled_from(["openai/gpt-4o-mini", "deepseek/deepseek-chat", "x", ""]) \
    | st.text(max_size=300) | json_values
chat_bodies = st.fixed_dictionaries(
    {"model": _models, "messages": st.lists(_message, max_size=3) | json_values},
    optional={k: json_values for k in (
        "stream", "temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "stop",
        "tools", "tool_choice", "response_format", "stream_options", "user")},
)
embedding_bodies = st.fixed_dictionaries(
    {"model": _models},
    optional={"input": json_values | st.lists(st.text(max_size=10), max_size=3)
              | st.lists(st.integers(0, 100_000), max_size=5), "dimensions": json_values},
)


def _parses_or_bad_request(fn: Any, raw: bytes) -> None:
    try:
        out = fn(raw)
    except BadRequest:
        return
    assert isinstance(out, dict) and "model" in out


@FUZZ
@given(st.binary(max_size=300))
def test_parse_chat_random_bytes(raw: bytes) -> None:
    _parses_or_bad_request(parse_chat, raw)
    _parses_or_bad_request(parse_embeddings, raw)


@FUZZ
@given(json_values)
def test_parse_any_json(value: Any) -> None:
    raw = json.dumps(value).encode()  # big integers too (orjson cannot write them)
    _parses_or_bad_request(parse_chat, raw)
    _parses_or_bad_request(parse_embeddings, raw)


@FUZZ
@given(chat_bodies)
def test_parse_chat_shaped_bodies(body: dict[str, Any]) -> None:
    _parses_or_bad_request(parse_chat, json.dumps(body).encode())


@FUZZ
@given(embedding_bodies)
def test_parse_embeddings_shaped_bodies(body: dict[str, Any]) -> None:
    _parses_or_bad_request(parse_embeddings, json.dumps(body).encode())


@pytest.mark.parametrize("role", [[], {}, ["user"], {"a": 1}])
def test_unhashable_role_is_a_bad_request(role: Any) -> None:
    raw = json.dumps({"model": "m", "messages": [{"role": role, "content": "hi"}]}).encode()
    with pytest.raises(BadRequest, match=r"messages\[0\]\.role must be one of"):
        parse_chat(raw)


@FUZZ
@given(st.text(max_size=60), st.sampled_from(["{", "[", '"', "\\", "\ud800", "\x00"]))
def test_parse_broken_text(text: str, junk: str) -> None:
    raw = ('{"model": "m", "messages": [{"role": "user", "content": "' + text + junk).encode(
        "utf-8", "surrogatepass")
    _parses_or_bad_request(parse_chat, raw)


# -- through the running gateway ------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_gateway(rel_sandbox: Any) -> Iterator[Gw]:
    # a breaker opened by one example must not turn the next ones into 503s
    with gateway(rel_sandbox.url, routes={"fb": FALLBACK_ROUTE}) as g:
        yield g


@pytest.fixture(scope="module")
def api_schema(fuzz_gateway: Gw) -> Any:
    doc = request(fuzz_gateway.url, "GET", "/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc)
    schema.config.update(base_url=fuzz_gateway.url)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


# one pytest item fuzzes every operation of the document (19, each a subtest: ~2,500
# requests), so it gets a hang guard sized for all of them, not pyproject's 120 s for one
# test: on a loaded 2-core machine beside another xdist worker it took 115 s and more
@pytest.mark.timeout(600)
@schema.parametrize()
@settings(max_examples=50, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_openapi_document_fuzz(case: Any, fuzz_gateway: Gw) -> None:
    """Every operation, positive and negative examples: never a 500; every error an
    OpenAI-style body; only statuses the document lists."""
    response = case.call(base_url=fuzz_gateway.url, timeout=15)
    assert response.status_code != 500, response.text[:300]
    case.validate_response(response, checks=[not_a_server_error], excluded_checks=[])
    if response.status_code >= 400:
        body = json.loads(response.content)
        err = body["error"]
        if case.path.startswith("/v1/messages"):  # the Anthropic API: Anthropic's shape
            assert body["type"] == "error" and {"message", "type"} <= set(err)
        else:
            assert {"message", "type", "code"} <= set(err)


_valid_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool"]),
     "content": st.text(max_size=20) | st.lists(_parts, min_size=1, max_size=3)},
    optional={"name": json_values, "tool_calls": json_values, "tool_call_id": json_values})


def _content_bodies(model: str) -> Any:
    return st.fixed_dictionaries(
        {"model": st.just(model),
         "messages": st.lists(_valid_message, min_size=1, max_size=3)},
        optional={"max_tokens": st.integers(1, 8) | json_values, "stop": json_values,
                  "tools": json_values, "response_format": json_values},
    )


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "anthropic/claude-3-haiku-20240307",
                                   "gemini/gemini-2.0-flash"])
def test_fuzzed_bodies_through_each_adapter_kind(fuzz_gateway: Gw, model: str) -> None:
    # no shrinking: each example is an HTTP round trip, and the first failure says enough
    @settings(max_examples=60, deadline=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(_content_bodies(model))
    def run(body: dict[str, Any]) -> None:
        r = request(fuzz_gateway.url, "POST", "/v1/chat/completions",
                    json.dumps(body).encode(), timeout=15)
        assert r.status != 500, (body, r.body[:300])
        if r.status >= 400:
            assert {"message", "type", "code"} <= set(r.error)

    run()
