"""Every error fault of every vendor: status, body shape and code, Retry-After.

``EXPECTED`` is the contract the vendor adapters are tested against: vendor ->
fault -> (HTTP status, the vendor's code as found at ``CODE_PATH``).
"""

from __future__ import annotations

from typing import Any

import pytest
from sandbox_helpers import Client, user

ERROR_FAULTS = (
    "rate_limit",
    "server_error",
    "overloaded",
    "balance",
    "auth",
    "context_too_long",
    "content_filter",
)

#: where each vendor's body keeps the code the adapter classifies by
CODE_PATH: dict[str, tuple[str, ...]] = {
    "openai": ("error", "code"),
    "deepseek": ("error", "type"),
    "qwen": ("error", "code"),
    "zhipu": ("error", "code"),
    "moonshot": ("error", "type"),
    "minimax": ("base_resp", "status_code"),
    "doubao": ("error", "code"),
    "qianfan": ("error", "code"),
    "hunyuan": ("error", "code"),
    "spark": ("error", "code"),
    "siliconflow": ("code",),
    "openrouter": ("error", "code"),
    "vllm": ("error", "type"),
    "ollama": ("error", "message"),
    "llamacpp": ("error", "type"),
    "anthropic": ("error", "type"),
    "gemini": ("error", "status"),
}

#: a tuple is (status, code); a string is the finish/stop reason of an HTTP 200 answer
EXPECTED: dict[str, dict[str, Any]] = {
    "openai": {
        "rate_limit": (429, "rate_limit_exceeded"),
        "server_error": (500, None),
        "overloaded": (503, None),
        "balance": (429, "insufficient_quota"),
        "auth": (401, "invalid_api_key"),
        "context_too_long": (400, "context_length_exceeded"),
        "content_filter": (400, "invalid_prompt"),
    },
    "deepseek": {
        "rate_limit": (429, "rate_limit_error"),
        "server_error": (500, "server_error"),
        "overloaded": (503, "server_overloaded"),
        "balance": (402, "unknown_error"),
        "auth": (401, "authentication_error"),
        "context_too_long": (400, "invalid_request_error"),
        "content_filter": (400, "invalid_request_error"),
    },
    "qwen": {
        "rate_limit": (429, "Throttling.RateQuota"),
        "server_error": (500, "InternalError"),
        "overloaded": (503, "ServiceUnavailable"),
        "balance": (400, "Arrearage"),
        "auth": (401, "invalid_api_key"),
        "context_too_long": (400, "InvalidParameter"),
        "content_filter": (400, "data_inspection_failed"),
    },
    "zhipu": {
        "rate_limit": (429, "1302"),
        "server_error": (500, "500"),
        "overloaded": (429, "1305"),
        "balance": (429, "1113"),
        "auth": (401, "1000"),
        "context_too_long": (400, "1261"),
        "content_filter": (400, "1301"),
    },
    "moonshot": {
        "rate_limit": (429, "rate_limit_reached_error"),
        "server_error": (500, "server_error"),
        "overloaded": (429, "engine_overloaded_error"),
        "balance": (403, "exceeded_current_quota_error"),
        "auth": (401, "invalid_authentication_error"),
        "context_too_long": (400, "invalid_request_error"),
        "content_filter": (400, "content_filter"),
    },
    "minimax": {
        "rate_limit": (200, 1002),
        "server_error": (200, 1024),
        "overloaded": (200, 1033),
        "balance": (200, 1008),
        "auth": (200, 1004),
        "context_too_long": (200, 2013),
        "content_filter": (200, 1026),
    },
    "doubao": {
        "rate_limit": (429, "RateLimitExceeded.EndpointRPMExceeded"),
        "server_error": (500, "InternalServiceError"),
        "overloaded": (429, "ServerOverloaded"),
        "balance": (403, "AccountOverdueError"),
        "auth": (401, "AuthenticationError"),
        "context_too_long": (400, "InvalidParameter"),
        "content_filter": (400, "SensitiveContentDetected"),
    },
    "qianfan": {
        "rate_limit": (429, "rpm_rate_limit_exceeded"),
        "server_error": (500, "internal_error"),
        "overloaded": (503, "server_high_load"),
        "balance": (429, "BILLING_INSUFFICIENT_BALANCE"),
        "auth": (401, "invalid_iam_token"),
        "context_too_long": (400, "336103"),
        "content_filter": "content_filter",
    },
    "hunyuan": {
        "rate_limit": (429, "LimitExceeded"),
        "server_error": (500, "InternalError"),
        "overloaded": (503, "FailedOperation.EngineServerLimitExceeded"),
        "balance": (403, "ResourceInsufficient.ChargeResourceExhaust"),
        "auth": (401, "AuthFailure"),
        "context_too_long": (400, "InvalidParameterValue"),
        "content_filter": "sensitive",
    },
    "spark": {
        "rate_limit": (429, "11202"),
        "server_error": (500, "10012"),
        "overloaded": (429, "10007"),
        "balance": (403, "11200"),
        "auth": (401, "10313"),
        "context_too_long": (400, "10907"),
        "content_filter": (400, "10013"),
    },
    "siliconflow": {
        "rate_limit": (429, 50603),
        "server_error": (500, 50500),
        "overloaded": (503, 50505),
        "balance": (403, 30001),
        "auth": (401, None),
        "context_too_long": (400, 20015),
        "content_filter": "content_filter",
    },
    "openrouter": {
        "rate_limit": (429, 429),
        "server_error": (500, 500),
        "overloaded": (503, 503),
        "balance": (402, 402),
        "auth": (401, 401),
        "context_too_long": (400, 400),
        "content_filter": (403, 403),
    },
    "vllm": {
        "rate_limit": (429, "RateLimitError"),
        "server_error": (500, "InternalServerError"),
        "overloaded": (503, "ServiceUnavailableError"),
        "balance": (402, "PaymentRequiredError"),
        "auth": (401, None),
        "context_too_long": (400, "BadRequestError"),
        "content_filter": "content_filter",
    },
    "ollama": {
        "rate_limit": (429, "too many requests"),
        "server_error": (500, "llama runner process has terminated: exit status 2"),
        "overloaded": (503, "server busy, please try again.  maximum pending requests exceeded"),
        "balance": (402, "payment required"),
        "auth": (401, "unauthorized"),
        "context_too_long": (400, "the input length exceeds the context length"),
        "content_filter": "content_filter",
    },
    "llamacpp": {
        "rate_limit": (429, "unavailable_error"),
        "server_error": (500, "server_error"),
        "overloaded": (503, "unavailable_error"),
        "balance": (402, "server_error"),
        "auth": (401, "authentication_error"),
        "context_too_long": (400, "exceed_context_size_error"),
        "content_filter": "content_filter",
    },
    "anthropic": {
        "rate_limit": (429, "rate_limit_error"),
        "server_error": (500, "api_error"),
        "overloaded": (529, "overloaded_error"),
        "balance": (400, "invalid_request_error"),
        "auth": (401, "authentication_error"),
        "context_too_long": (400, "invalid_request_error"),
        "content_filter": "refusal",
    },
    "gemini": {
        "rate_limit": (429, "RESOURCE_EXHAUSTED"),
        "server_error": (500, "INTERNAL"),
        "overloaded": (503, "UNAVAILABLE"),
        "balance": (429, "RESOURCE_EXHAUSTED"),
        "auth": (400, "INVALID_ARGUMENT"),
        "context_too_long": (400, "INVALID_ARGUMENT"),
        "content_filter": "SAFETY",
    },
}

CASES = [(v, f) for v in EXPECTED for f in ERROR_FAULTS]


def dig(body: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        body = body.get(key) if isinstance(body, dict) else None
    return body


async def ask(client: Client, vendor: str, text: str, stream: bool = False) -> Any:
    if vendor == "anthropic":
        return await client.messages({**user(text), "stream": stream})
    if vendor == "gemini":
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return await client.gemini(
            f"gemini-2.0-flash:{action}", {"contents": [{"parts": [{"text": text}]}]}
        )
    return await client.chat(vendor, {**user(text), "stream": stream})


def finish_of(vendor: str, body: Any) -> Any:
    if vendor == "anthropic":
        return body["stop_reason"]
    if vendor == "gemini":
        return body["promptFeedback"]["blockReason"]
    return body["choices"][0]["finish_reason"]


@pytest.mark.parametrize(("vendor", "fault"), CASES)
async def test_fault_by_directive(client: Client, vendor: str, fault: str) -> None:
    expected = EXPECTED[vendor][fault]
    reply = await ask(client, vendor, f"hello [[sandbox:fault={fault}]]")
    if isinstance(expected, str):
        assert reply.status == 200
        assert finish_of(vendor, reply.json) == expected
        return
    status, code = expected
    assert reply.status == status
    if vendor in ("siliconflow", "vllm") and fault == "auth":
        assert reply.text in ("Invalid token", '{"error":"Unauthorized"}')
    else:
        assert dig(reply.json, CODE_PATH[vendor]) == code
    if vendor == "anthropic":
        assert reply.json["type"] == "error"
    if vendor == "gemini":
        assert reply.json["error"]["code"] == status
    has_retry = status == 429 and fault != "balance"
    assert ("Retry-After" in reply.headers) == has_retry
    if has_retry:
        assert int(reply.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("vendor", ["deepseek", "anthropic", "gemini", "minimax"])
async def test_errors_answer_streams_before_any_event(client: Client, vendor: str) -> None:
    reply = await ask(client, vendor, "hello [[sandbox:fault=rate_limit]]", stream=True)
    assert reply.events == []
    assert reply.headers["Content-Type"].startswith(("application/json", "text/plain"))


async def test_filtered_stream_ends_with_filter_reason(client: Client) -> None:
    reply = await client.chat(
        "hunyuan", {**user("x [[sandbox:fault=content_filter]]"), "stream": True}
    )
    finishes = [c["choices"][0]["finish_reason"] for c in reply.data if c["choices"]]
    assert finishes[-1] == "sensitive"


async def test_human_readable_messages_where_vendors_have_them(client: Client) -> None:
    deepseek = await ask(client, "deepseek", "x [[sandbox:fault=balance]]")
    assert deepseek.json["error"]["message"] == "Insufficient Balance"
    zhipu = await ask(client, "zhipu", "x [[sandbox:fault=balance]]")
    assert "欠费" in zhipu.json["error"]["message"]
    anthropic = await ask(client, "anthropic", "x [[sandbox:fault=balance]]")
    assert anthropic.json["error"]["message"].startswith("Your credit balance is too low")
    gemini = await ask(client, "gemini", "x [[sandbox:fault=balance]]")
    assert "prepayment credits are depleted" in gemini.json["error"]["message"]
    assert "Retry-After" not in gemini.headers
