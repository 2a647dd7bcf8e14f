"""Error answers of the OpenAI-compatible vendors, per vendor and fault.

Each vendor keeps its own body shape and codes (price-war.md section 3 and the
vendors' error-code pages). Entries marked [M] in the reference, and the
self-hosted servers' answers to faults they never produce themselves (a
balance error from vLLM), are the most plausible documented form; see the
sandbox report for the list. MiniMax answers HTTP 200 with ``base_resp``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kanjia.sandbox._errors import ErrorReply, error_reply as e

__all__ = ["OA_ERRORS"]

_CTX = (
    "This model's maximum context length is 131072 tokens. However, you requested 140000 "
    "tokens (139000 in the messages, 1000 in the completion). Please reduce the length of the "
    "messages or completion."
)
_REQ = "021700000000000sandbox0000000000000000000000000000"


def oai(message: str, type_: str, code: Any = None, param: Any = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def zhipu(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def dashscope(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {"code": code, "param": None, "message": message, "type": code},
        "request_id": "sandbox-0000-0000-0000-000000000000",
    }


def ark(code: str, type_: str, message: str) -> dict[str, Any]:
    body = {"code": code, "message": f"{message} Request id: {_REQ}", "param": "", "type": type_}
    return {"error": body}


def qianfan(code: str, type_: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "type": type_}, "id": "as-sandbox0000"}


def spark(code: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "api_error", "param": None, "code": code}}


def minimax(code: int, message: str) -> dict[str, Any]:
    return {
        "id": "sandbox",
        "choices": None,
        "created": 0,
        "model": "",
        "object": "chat.completion",
        "usage": {"total_tokens": 0},
        "input_sensitive": code == 1026,
        "output_sensitive": False,
        "input_sensitive_type": 1 if code == 1026 else 0,
        "output_sensitive_type": 0,
        "base_resp": {"status_code": code, "status_msg": message},
    }


def silicon(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "data": None}


def router(code: int, message: str, **metadata: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "code": code}
    if metadata:
        body["metadata"] = metadata
    return {"error": body, "user_id": "user_sandbox"}


def vllm(message: str, type_: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def llamacpp(code: int, message: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "type": type_, **extra}}


_OPENAI_RATE = (
    "Rate limit reached for gpt-4o in organization org-sandbox on requests per min (RPM): "
    "Limit 500, Used 500, Requested 1. Please try again in 120ms. Visit "
    "https://platform.openai.com/account/rate-limits to learn more."
)
_OPENAI_QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
_ROUTER_MODERATION = (
    'openai/gpt-4o requires moderation on OpenAI. Your input was flagged for "harassment". '
    "No credits were charged."
)

OA_ERRORS: Mapping[str, Mapping[str, ErrorReply]] = {
    "openai": {
        "rate_limit": e(429, oai(_OPENAI_RATE, "requests", "rate_limit_exceeded")),
        "server_error": e(500, oai("The server had an error while processing your request. Sorry about that!", "server_error")),
        "overloaded": e(503, oai("The engine is currently overloaded, please try again later", "server_error")),
        "balance": e(429, oai(_OPENAI_QUOTA, "insufficient_quota", "insufficient_quota"), retry=False),
        "auth": e(401, oai("Incorrect API key provided: bad-key. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key")),
        "context_too_long": e(400, oai("This model's maximum context length is 128000 tokens. However, your messages resulted in 140000 tokens. Please reduce the length of the messages.", "invalid_request_error", "context_length_exceeded", "messages")),
        "content_filter": e(400, oai("Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt.", "invalid_request_error", "invalid_prompt")),
    },
    "deepseek": {
        "rate_limit": e(429, oai("Rate Limit Reached", "rate_limit_error", "invalid_request_error")),
        "server_error": e(500, oai("Server Error", "server_error", "internal_error")),
        "overloaded": e(503, oai("Server overloaded, please try again later.", "server_overloaded", "service_unavailable")),
        "balance": e(402, oai("Insufficient Balance", "unknown_error", "invalid_request_error")),
        "auth": e(401, oai("Authentication Fails, Your api key: ****-key is invalid", "authentication_error", "invalid_request_error")),
        "context_too_long": e(400, oai(_CTX, "invalid_request_error", "invalid_request_error")),
        "content_filter": e(400, oai("Content Exists Risk", "invalid_request_error", "invalid_request_error")),
    },
    "qwen": {
        "rate_limit": e(429, dashscope("Throttling.RateQuota", "Requests rate limit exceeded, please try again later.")),
        "server_error": e(500, dashscope("InternalError", "An internal error has occured, please try again later or contact service support.")),
        "overloaded": e(503, dashscope("ServiceUnavailable", "The service is temporarily unavailable due to high load, please try again later.")),
        "balance": e(400, dashscope("Arrearage", "Access denied, please make sure your account is in good standing.")),
        "auth": e(401, oai("Incorrect API key provided. ", "invalid_request_error", "invalid_api_key")),
        "context_too_long": e(400, dashscope("InvalidParameter", "<400> InternalError.Algo.InvalidParameter: Range of input length should be [1, 129024]")),
        "content_filter": e(400, dashscope("data_inspection_failed", "Input data may contain inappropriate content.")),
    },
    "zhipu": {
        "rate_limit": e(429, zhipu("1302", "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。")),
        "server_error": e(500, zhipu("500", "内部错误。")),
        "overloaded": e(429, zhipu("1305", "当前API请求过多，请稍后重试。")),
        "balance": e(429, zhipu("1113", "您的账户已欠费，请充值后重试。"), retry=False),
        "auth": e(401, zhipu("1000", "身份验证失败。")),
        "context_too_long": e(400, zhipu("1261", "Prompt 超长")),
        "content_filter": e(400, zhipu("1301", "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。")),
    },
    "moonshot": {
        "rate_limit": e(429, oai("Your account org-sandbox<ak-sandbox> request reached organization max RPM: 3, please try again after 1 seconds", "rate_limit_reached_error")),
        "server_error": e(500, oai("An unexpected error occurred, please try again later", "server_error")),
        "overloaded": e(429, oai("The engine is currently overloaded, please try again later", "engine_overloaded_error")),
        "balance": e(403, oai("Your account org-sandbox<ak-sandbox> is suspended, please check your plan and billing details", "exceeded_current_quota_error")),
        "auth": e(401, oai("Invalid Authentication", "invalid_authentication_error")),
        "context_too_long": e(400, oai("Invalid request: Your request exceeded model token limit: 131072", "invalid_request_error")),
        "content_filter": e(400, oai("The request was rejected because it was considered high risk", "content_filter")),
    },
    "minimax": {
        "rate_limit": e(200, minimax(1002, "rate limit exceeded(RPM)")),
        "server_error": e(200, minimax(1024, "internal error")),
        "overloaded": e(200, minimax(1033, "system error")),
        "balance": e(200, minimax(1008, "insufficient balance")),
        "auth": e(200, minimax(1004, "login fail: Please carry the API secret key in the 'Authorization' field of the request header")),
        "context_too_long": e(200, minimax(2013, "invalid params, context window exceeds limit")),
        "content_filter": e(200, minimax(1026, "input new_sensitive")),
    },
    "doubao": {
        "rate_limit": e(429, ark("RateLimitExceeded.EndpointRPMExceeded", "TooManyRequests", "The Requests Per Minute (RPM) limit of the associated endpoint for your account has been exceeded.")),
        "server_error": e(500, ark("InternalServiceError", "InternalServerError", "The service encountered an unexpected internal error.")),
        "overloaded": e(429, ark("ServerOverloaded", "TooManyRequests", "The service is currently unable to handle additional requests due to server overload.")),
        "balance": e(403, ark("AccountOverdueError", "Forbidden", "The request failed because your account has an overdue balance.")),
        "auth": e(401, ark("AuthenticationError", "Unauthorized", "The API key or AK/SK in the request is missing or invalid.")),
        "context_too_long": e(400, ark("InvalidParameter", "BadRequest", "One or more parameters specified in the request are not valid: the input exceeds the model's context window.")),
        "content_filter": e(400, ark("SensitiveContentDetected", "BadRequest", "The request failed because the input text may contain sensitive information.")),
    },
    "qianfan": {
        "rate_limit": e(429, qianfan("rpm_rate_limit_exceeded", "rate_limit_exceeded", "Rate limit reached for RPM")),
        "server_error": e(500, qianfan("internal_error", "internal_error", "Internal error")),
        "overloaded": e(503, qianfan("server_high_load", "server_error", "Server is under high load, please try again later")),
        "balance": e(429, qianfan("BILLING_INSUFFICIENT_BALANCE", "insufficient_balance", "Your account balance is insufficient, please recharge"), retry=False),
        "auth": e(401, qianfan("invalid_iam_token", "access_denied", "IAM Certification failed")),
        "context_too_long": e(400, qianfan("336103", "invalid_request_error", "the sum of prompt tokens and max_output_tokens exceeds the model's context limit")),
    },
    "hunyuan": {
        "rate_limit": e(429, oai("请求并发数超出限制，请稍后重试。", "api_error", "LimitExceeded")),
        "server_error": e(500, oai("内部错误。", "api_error", "InternalError")),
        "overloaded": e(503, oai("引擎层并发超限，请稍后重试。", "api_error", "FailedOperation.EngineServerLimitExceeded")),
        "balance": e(403, oai("计费资源已耗尽。", "api_error", "ResourceInsufficient.ChargeResourceExhaust")),
        "auth": e(401, oai("API Key 无效或已被禁用。", "api_error", "AuthFailure")),
        "context_too_long": e(400, oai("输入长度超过模型上下文上限。", "api_error", "InvalidParameterValue")),
    },
    "spark": {
        "rate_limit": e(429, spark("11202", "授权错误：秒级流控超限。秒级并发超过授权路数限制")),
        "server_error": e(500, spark("10012", "EngineInternalError: 引擎内部错误")),
        "overloaded": e(429, spark("10007", "用户流量受限：服务正在处理用户当前的问题，需等待处理完成后再发送新的请求。")),
        "balance": e(403, spark("11200", "授权错误：该appId没有相关功能的授权 或者 业务量超过限制")),
        "auth": e(401, spark("10313", "appid和apikey不匹配")),
        "context_too_long": e(400, spark("10907", "token数量超过上限。对话历史+问题的字数太多，需要精简输入")),
        "content_filter": e(400, spark("10013", "输入内容审核不通过，涉嫌违规，请重新调整输入内容")),
    },
    "siliconflow": {
        "rate_limit": e(429, silicon(50603, "Request was rejected due to rate limiting. If you want more, please contact contact@siliconflow.cn. Details:TPM limit reached.")),
        "server_error": e(500, silicon(50500, "Internal Server Error")),
        "overloaded": e(503, silicon(50505, "Model service overloaded. Please try again later.")),
        "balance": e(403, silicon(30001, "Sorry, your account balance is insufficient")),
        "auth": e(401, "Invalid token"),
        "context_too_long": e(400, silicon(20015, "length of prompt_tokens (140000) must be less than max_seq_len (131072).")),
    },
    "openrouter": {
        "rate_limit": e(429, router(429, "Rate limit exceeded: limit_rpm/openai/gpt-4o")),
        "server_error": e(500, router(500, "Internal Server Error")),
        "overloaded": e(503, router(503, "No allowed providers are available for the selected model.")),
        "balance": e(402, router(402, "Insufficient credits. Add more using https://openrouter.ai/settings/credits")),
        "auth": e(401, router(401, "User not found.")),
        "context_too_long": e(400, router(400, "This endpoint's maximum context length is 131072 tokens. However, you requested about 140000 tokens (139000 of text input, 1000 in the output). Please reduce the length of either one, or use the \"middle-out\" transform to compress your prompt automatically.")),
        "content_filter": e(403, router(403, _ROUTER_MODERATION, reasons=["harassment"], flagged_input="...", provider_name="OpenAI", model_slug="openai/gpt-4o")),
    },
    "vllm": {
        "rate_limit": e(429, vllm("Too many requests, please try again later.", "RateLimitError", 429)),
        "server_error": e(500, vllm("EngineCore encountered an issue. See stack trace (above) for the root cause.", "InternalServerError", 500)),
        "overloaded": e(503, vllm("The server is overloaded, please try again later.", "ServiceUnavailableError", 503)),
        "balance": e(402, vllm("Payment required: the upstream account has no remaining credit.", "PaymentRequiredError", 402)),
        "auth": e(401, {"error": "Unauthorized"}),
        "context_too_long": e(400, vllm("This model's maximum context length is 32768 tokens. However, you requested 40000 tokens (39000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.", "BadRequestError", 400)),
    },
    "ollama": {
        "rate_limit": e(429, oai("too many requests", "api_error")),
        "server_error": e(500, oai("llama runner process has terminated: exit status 2", "api_error")),
        "overloaded": e(503, oai("server busy, please try again.  maximum pending requests exceeded", "api_error")),
        "balance": e(402, oai("payment required", "api_error")),
        "auth": e(401, oai("unauthorized", "api_error")),
        "context_too_long": e(400, oai("the input length exceeds the context length", "invalid_request_error")),
    },
    "llamacpp": {
        "rate_limit": e(429, llamacpp(429, "Too many requests", "unavailable_error")),
        "server_error": e(500, llamacpp(500, "Internal server error", "server_error")),
        "overloaded": e(503, llamacpp(503, "Loading model", "unavailable_error")),
        "balance": e(402, llamacpp(402, "Payment required", "server_error")),
        "auth": e(401, llamacpp(401, "Invalid API Key", "authentication_error")),
        "context_too_long": e(400, llamacpp(400, "the request exceeds the available context size, try increasing it", "exceed_context_size_error", n_prompt_tokens=40000, n_ctx=32768)),
    },
}
