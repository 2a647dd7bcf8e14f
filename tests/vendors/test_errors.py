"""Vendor error replies map onto the one error tree by status AND body code."""

from __future__ import annotations

import orjson
import pytest

from kanjia import errors as e
from kanjia.vendors import adapter_for, load_vendor_specs

SPECS = load_vendor_specs()


def _err(vendor: str, status: int, body: object, headers: dict[str, str] | None = None
         ) -> e.KanjiaError:
    return adapter_for(SPECS[vendor]).classify_error(status, orjson.dumps(body), headers or {})


@pytest.mark.parametrize(("vendor", "status", "body", "cls"), [
    ("deepseek", 402, {"error": {"message": "Insufficient Balance", "type": "unknown_error"}},
     e.BalanceExhausted),
    ("deepseek", 429, {"error": {"message": "Rate limit reached"}}, e.RateLimited),
    ("deepseek", 503, {"error": {"message": "Server overloaded"}}, e.Overloaded),
    ("zhipu", 429, {"error": {"code": "1113", "message": "您的账户已欠费"}}, e.BalanceExhausted),
    ("zhipu", 429, {"error": {"code": "1302", "message": "并发数过高"}}, e.RateLimited),
    ("zhipu", 400, {"error": {"code": "1301", "message": "不安全或敏感内容"}}, e.ContentFiltered),
    ("zhipu", 401, {"error": {"code": "1002", "message": "Authorization Token非法"}},
     e.VendorAuthFailed),
    ("qwen", 400, {"error": {"code": "Arrearage", "message": "Access denied"}},
     e.BalanceExhausted),
    ("qwen", 400, {"error": {"code": "data_inspection_failed", "message": "x"}},
     e.ContentFiltered),
    ("moonshot", 429, {"error": {"type": "exceeded_current_quota_error", "message": "x"}},
     e.BalanceExhausted),
    ("moonshot", 429, {"error": {"type": "engine_overloaded_error", "message": "x"}},
     e.Overloaded),
    ("minimax", 200, {"base_resp": {"status_code": 1008, "status_msg": "insufficient balance"}},
     e.BalanceExhausted),
    ("minimax", 200, {"base_resp": {"status_code": 1002, "status_msg": "rate limit"}},
     e.RateLimited),
    ("doubao", 403, {"error": {"code": "AccountOverdueError", "message": "x"}},
     e.BalanceExhausted),
    ("openai", 429, {"error": {"code": "insufficient_quota", "type": "insufficient_quota",
                               "message": "You exceeded your current quota"}}, e.BalanceExhausted),
    ("openai", 400, {"error": {"code": "context_length_exceeded", "message": "x"}},
     e.ContextTooLong),
    ("anthropic", 529, {"type": "error", "error": {"type": "overloaded_error", "message": "x"}},
     e.Overloaded),
    ("anthropic", 400, {"type": "error", "error": {
        "type": "invalid_request_error",
        "message": "Your credit balance is too low to access the Anthropic API."}},
     e.BalanceExhausted),
    ("gemini", 429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "q"}},
     e.RateLimited),
    ("spark", 200, {"error": {"code": "11200", "message": "授权错误"}}, e.BalanceExhausted),
])
def test_classification(vendor: str, status: int, body: object, cls: type) -> None:
    err = _err(vendor, status, body)
    assert type(err) is cls, (err, err.message)


def test_retry_after_is_kept() -> None:
    err = _err("openai", 429, {"error": {"code": "rate_limit_exceeded", "message": "slow"}},
               {"Retry-After": "3"})
    assert err.retry_after == 3.0


def test_secrets_never_in_messages() -> None:
    err = _err("openai", 401, {"error": {"message": "Incorrect API key provided: sk-abc123456789"}})
    assert "sk-abc123456789" not in err.message
    assert "sk-abc123456789" not in orjson.dumps(err.body()).decode()


def test_every_vendor_spec_loads() -> None:
    assert {"deepseek", "qwen", "zhipu", "moonshot", "minimax", "doubao", "qianfan", "hunyuan",
            "spark", "siliconflow", "openai", "openrouter", "vllm", "ollama", "llamacpp",
            "anthropic", "gemini"} <= set(SPECS)
