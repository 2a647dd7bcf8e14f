"""F12: a client's model name cannot steer the gateway's upstream URL.

Gemini puts the model into the URL path (``/v1beta/models/{model}:generateContent``); on
commit 11a124a ``gemini/../cachedContents?`` and ``gemini/../../../../admin/secret`` reached
other paths with the operator's key. Now every ingress refuses such names with a 400
(nothing reaches any vendor), and the adapters escape the model as one path segment, so
even a name that bypasses ingress (an operator's alias) stays in its segment. Asserted
on the path the sandbox received, for every vendor kind."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote, unquote

import pytest

from kanjia.errors import BadRequest
from kanjia.server.model_ids import MAX_MODEL_ID, check_model_id
from kanjia.vendors._paths import path_segment

from ._util import Gw, gateway, request

ATTACKS = ["gemini/../cachedContents?", "gemini/../../../../admin/secret",
           "gemini/gemini-2.0-flash?key=x", "gemini/gemini-2.0-flash#frag",
           "gemini/gemini-2.0-flash%2F..%2Fx", "gemini/a\\..\\b", "gemini/a b",
           "gemini/a\tb", "gemini/a\x00b", "gemini/a\u2028b", "gemini/" + "x" * MAX_MODEL_ID,
           "anthropic/../v1/other", "deepseek/..", "vllm/../../admin", "../gemini/x", ""]
#: one vendor of each kind (and the self-hosted ones), with the path its chat goes to
KINDS = {"deepseek": "/deepseek/chat/completions", "openrouter": "/openrouter/chat/completions",
         "vllm": "/vllm/chat/completions", "anthropic": "/anthropic/v1/messages",
         "gemini": "/gemini/v1beta/models/{}:generateContent"}
#: model names that are legal and must reach the vendor exactly as themselves
ODD = ["some/org/model-v1", "model@2024+beta~1", "模型-7b", "qwen2.5:7b"]


def _received(sb: str) -> list[dict[str, str]]:
    return list(request(sb, "GET", "/_sandbox/requests").json()["requests"])


def _segments(raw: str) -> tuple[list[str], str]:
    """A raw request target as its decoded path segments and its raw query (an HTTP
    client may write ``@`` or ``%40``: the same segment)."""
    path, _, query = raw.partition("?")
    return [unquote(p) for p in path.split("/")], query


@pytest.fixture()
def paths(sb: str) -> Iterator[Gw]:
    aliases = {"evil": "gemini/../../../../admin/secret?x=1#y", "dots": "gemini/..",
               "colon": "gemini/gemini-2.0-flash:countTokens"}
    with gateway(sb, aliases=aliases) as g:
        request(sb, "DELETE", "/_sandbox/requests")
        yield g


def _chat(model: str, stream: bool = False) -> dict[str, object]:
    return {"model": model, "stream": stream, "max_tokens": 4,
            "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("model", ATTACKS)
def test_ingress_refuses_path_tricks_and_nothing_reaches_a_vendor(paths: Gw, sb: str,
                                                                   model: str) -> None:
    calls = [("/v1/chat/completions", _chat(model), {}),
             ("/v1/chat/completions", _chat(model, stream=True), {}),
             ("/v1/embeddings", {"model": model, "input": "hi"}, {}),
             ("/v1/chat/completions", _chat(model), {"x-kanjia-defer": "until-offpeak"})]
    for path, body, headers in calls:
        r = request(paths.url, "POST", path, body, headers=headers)
        assert r.status == 400, (path, r.status, r.body[:200])
        assert r.error["type"] == "invalid_request_error" and "'model'" in r.error["message"]
    assert _received(sb) == []


def test_every_vendor_kind_gets_the_model_in_its_own_place(paths: Gw, sb: str) -> None:
    for vendor, where in KINDS.items():
        for name in ODD:
            if vendor == "gemini" and ":" in name:
                continue  # a colon would start Gemini's action: refused, below
            for stream in (False, True):
                request(sb, "DELETE", "/_sandbox/requests")
                r = request(paths.url, "POST", "/v1/chat/completions",
                            _chat(f"{vendor}/{name}", stream))
                assert r.status == 200, (vendor, name, r.body[:200])
                got = [x["path"] for x in _received(sb)]
                want = where.format(quote(name, safe=""))
                if vendor == "gemini" and stream:
                    want = want.replace(":generateContent", ":streamGenerateContent?alt=sse")
                assert len(got) == 1 and _segments(got[0]) == _segments(want), \
                    (vendor, name, got, want)


def test_gemini_embeddings_escape_the_model_too(paths: Gw, sb: str) -> None:
    r = request(paths.url, "POST", "/v1/embeddings",
                {"model": "gemini/text-embedding-004", "input": "hi"})
    assert r.status == 200, r.body[:200]
    assert [x["path"] for x in _received(sb)] == \
        ["/gemini/v1beta/models/text-embedding-004:batchEmbedContents"]


def test_a_configured_alias_cannot_escape_the_model_segment_either(paths: Gw, sb: str) -> None:
    """An alias is operator config and bypasses ingress: the adapter's escaping holds."""
    r = request(paths.url, "POST", "/v1/chat/completions", _chat("evil"))
    got = [x["path"] for x in _received(sb)]
    assert got and all(p.startswith("/gemini/v1beta/models/") for p in got), got
    assert len(got) == 1 and _segments(got[0]) == (
        ["", "gemini", "v1beta", "models", "../../../../admin/secret?x=1#y:generateContent"],
        ""), got
    assert "?" not in got[0] and "#" not in got[0]
    assert r.status in (200, 400, 404), r.body[:200]  # whatever the vendor says of that name
    request(sb, "DELETE", "/_sandbox/requests")
    for alias in ("dots", "colon"):  # a dot segment or a second action: refused
        r = request(paths.url, "POST", "/v1/chat/completions", _chat(alias))
        assert r.status == 400, (alias, r.body[:200])
    assert _received(sb) == []


def test_model_id_rules() -> None:
    for ok in ("deepseek/deepseek-chat", "openai/gpt-4o:online", "@cf/meta/llama-3-8b",
               "qwen2.5:7b", "x" * MAX_MODEL_ID, "a.b", "v1.5"):
        assert check_model_id(ok) == ok
    for bad in [*ATTACKS, None, 3, "x" * (MAX_MODEL_ID + 1)]:
        with pytest.raises(BadRequest):
            check_model_id(bad)
    assert path_segment("a/../b?c#d e") == "a%2F..%2Fb%3Fc%23d%20e"
    for bad in ("", ".", ".."):
        with pytest.raises(BadRequest):
            path_segment(bad)
    with pytest.raises(BadRequest):
        path_segment("m:x", forbid=":")
