"""The global market's OpenAI-compatible vendors: URLs, parameter quirks, error codes."""

from __future__ import annotations

import orjson
import pytest

from kanjia import errors as e
from kanjia.vendors import Deployment, adapter_for, load_vendor_specs

SPECS = load_vendor_specs()
MARKET = ("mistral", "xai", "groq", "together", "fireworks", "cerebras", "perplexity",
          "novita", "cohere")
BODY = {"messages": [{"role": "user", "content": "hi"}], "n": 1, "seed": 7,
        "max_completion_tokens": 9, "logit_bias": {"1": 2}, "frequency_penalty": 0.1,
        "stream_options": {"include_usage": True}, "store": False}


def _sent(vendor: str, stream: bool = True) -> tuple[str, dict[str, object]]:
    spec = SPECS[vendor]
    req = adapter_for(spec).chat_request(Deployment(spec, spec.base_url, "k"), dict(BODY),
                                         "m", stream)
    assert req.headers["Authorization"] == "Bearer k"
    return req.url, orjson.loads(req.body)


@pytest.mark.parametrize("vendor", MARKET)
def test_every_market_vendor_is_a_priced_catalog_vendor(vendor: str) -> None:
    from kanjia.catalog import load_catalog

    catalog = load_catalog()
    assert vendor in catalog.vendors
    assert catalog.every_of(vendor)  # priced by the market snapshot
    assert SPECS[vendor].kind == "openai" and SPECS[vendor].region == "global"


@pytest.mark.parametrize(("vendor", "url"), [
    ("mistral", "https://api.mistral.ai/v1/chat/completions"),
    ("xai", "https://api.x.ai/v1/chat/completions"),
    ("groq", "https://api.groq.com/openai/v1/chat/completions"),
    ("cohere", "https://api.cohere.ai/compatibility/v1/chat/completions"),
    ("perplexity", "https://api.perplexity.ai/chat/completions"),
    ("fireworks", "https://api.fireworks.ai/inference/v1/chat/completions"),
])
def test_urls(vendor: str, url: str) -> None:
    assert _sent(vendor)[0] == url


def test_mistral_strict_validation_gets_only_its_fields() -> None:
    body = _sent("mistral")[1]
    assert body["random_seed"] == 7 and "seed" not in body
    assert body["max_tokens"] == 9 and "max_completion_tokens" not in body
    assert not {"logit_bias", "stream_options", "store"} & set(body)
    assert body["n"] == 1  # Mistral honours n


def test_usage_option_only_where_the_vendor_takes_it() -> None:
    assert _sent("groq")[1]["stream_options"] == {"include_usage": True}
    assert "stream_options" not in _sent("perplexity")[1]  # usage rides on every chunk
    assert "n" not in _sent("groq")[1] and "logit_bias" not in _sent("groq")[1]
    cerebras = _sent("cerebras")[1]
    assert "frequency_penalty" not in cerebras and "logit_bias" not in cerebras
    cohere = _sent("cohere")[1]
    assert not {"n", "store", "logit_bias"} & set(cohere) and cohere["max_tokens"] == 9


@pytest.mark.parametrize(("vendor", "status", "body", "cls"), [
    ("mistral", 429, {"object": "error", "message": "Service tier capacity exceeded",
                      "type": "service_tier_capacity_exceeded", "code": "3505"}, e.Overloaded),
    ("xai", 403, {"code": "The caller does not have permission to execute the specified "
                          "operation", "error": "Your team has either used all available "
                          "credits or reached its monthly spending limit."},
     e.BalanceExhausted),
    ("xai", 400, {"code": "Client specified an invalid argument",
                  "error": "Incorrect API key provided: xa***"}, e.VendorAuthFailed),
    ("xai", 400, {"code": "Client specified an invalid argument", "error": "This model's "
                  "maximum prompt length is 131072 but the request contains 140000 tokens."},
     e.ContextTooLong),
    ("groq", 498, {"error": {"message": "Flex tier capacity exceeded",
                             "type": "capacity_exceeded", "code": "capacity_exceeded"}},
     e.Overloaded),
    ("cerebras", 429, {"message": "We're experiencing high traffic right now!",
                       "type": "too_many_requests_error", "code": "queue_exceeded"},
     e.Overloaded),
    ("cerebras", 429, {"message": "Tokens per minute limit exceeded",
                       "type": "too_many_requests_error", "code": "token_quota_exceeded"},
     e.RateLimited),
    ("novita", 403, {"code": 403, "reason": "NOT_ENOUGH_BALANCE", "message": "x"},
     e.BalanceExhausted),
    ("together", 402, {"error": {"message": "Credit limit exceeded", "type": "credit_limit"}},
     e.BalanceExhausted),
    ("perplexity", 429, {"error": {"message": "You exceeded your current quota",
                                   "type": "insufficient_quota", "code": 429}},
     e.BalanceExhausted),
    ("cohere", 429, {"id": "x", "message": "You are using a Trial key, which is limited to "
                     "20 API calls / minute."}, e.RateLimited),
])
def test_errors(vendor: str, status: int, body: object, cls: type[e.KanjiaError]) -> None:
    err = adapter_for(SPECS[vendor]).classify_error(status, orjson.dumps(body), {})
    assert type(err) is cls


def test_perplexity_html_401_is_an_auth_failure() -> None:
    page = b"<html><head><title>401 Authorization Required</title></head></html>"
    err = adapter_for(SPECS["perplexity"]).classify_error(401, page, {})
    assert type(err) is e.VendorAuthFailed


def test_fireworks_gets_its_account_model_path() -> None:
    spec = SPECS["fireworks"]
    adapter = adapter_for(spec)
    dep = Deployment(spec, spec.base_url, "k")
    sent = orjson.loads(adapter.chat_request(dep, {"messages": []}, "deepseek-v3-0324",
                                             False).body)
    assert sent["model"] == "accounts/fireworks/models/deepseek-v3-0324"
    own = "accounts/me/models/my-lora"
    assert orjson.loads(adapter.chat_request(dep, {"messages": []}, own, False).body)[
        "model"] == own
