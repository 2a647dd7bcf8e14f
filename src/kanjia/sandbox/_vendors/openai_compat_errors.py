"""Error answers of the OpenAI-compatible vendors, per vendor and fault.

Each vendor keeps its own body shape and codes (price-war.md section 3 and the
vendors' error-code pages). Rows are ``fault: (status, *shape arguments)``.
Details the reference marks [M], and the self-hosted servers' answers to faults
they never produce themselves (a balance error from vLLM), are the most
plausible documented form. MiniMax answers HTTP 200 with ``base_resp``. Vendors
without a ``content_filter`` row filter by finish_reason (see ``openai_compat_vendors``).
429s carry ``Retry-After`` except balance errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kanjia.sandbox._errors import ErrorReply, error_reply

__all__ = ["OA_ERRORS"]

_REQ = "021700000000000sandbox0000000000000000000000000000"


def oai(message: str, type_: str, code: Any = None, param: Any = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def zhipu(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def dashscope(code: str, message: str) -> dict[str, Any]:
    error = {"code": code, "param": None, "message": message, "type": code}
    return {"error": error, "request_id": "sandbox-0000-0000-0000-000000000000"}


def ark(code: str, type_: str, message: str) -> dict[str, Any]:
    message = f"{message} Request id: {_REQ}"
    return {"error": {"code": code, "message": message, "param": "", "type": type_}}


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


def plain(message: str) -> str:
    return message


def router(code: int, message: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "code": code}
    if metadata:
        body["metadata"] = metadata
    return {"error": body, "user_id": "user_sandbox"}


def vllm(message: str, type_: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def bare(message: str) -> dict[str, Any]:
    return {"error": message}


def llamacpp(code: int, message: str, type_: str, n_ctx: int = 0) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "type": type_}
    if n_ctx:
        error |= {"n_prompt_tokens": 40000, "n_ctx": n_ctx}
    return {"error": error}


def _rows(shape: Callable[..., Any], rows: dict[str, tuple[Any, ...]]) -> dict[str, ErrorReply]:
    replies = {}
    for fault, (status, *args) in rows.items():
        retry = status == 429 and fault != "balance"
        replies[fault] = error_reply(status, shape(*args), retry)
    return replies


def _openai_like(rows: dict[str, tuple[Any, ...]]) -> dict[str, ErrorReply]:
    return _rows(oai, rows)


_CTX = (
    "This model's maximum context length is 131072 tokens. However, you requested 140000 "
    "tokens (139000 in the messages, 1000 in the completion). Please reduce the length of the "
    "messages or completion."
)
_MOONSHOT = "Your account org-sandbox<ak-sandbox> "
_IR = "invalid_request_error"

_OPENAI = _openai_like(
    {
        "rate_limit": (
            429,
            "Rate limit reached for gpt-4o in organization org-sandbox on requests per min "
            "(RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.",
            "requests",
            "rate_limit_exceeded",
        ),
        "server_error": (
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
        ),
        "overloaded": (
            503,
            "The engine is currently overloaded, please try again later",
            "server_error",
        ),
        "balance": (
            429,
            "You exceeded your current quota, please check your plan and billing details. "
            "For more information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            "insufficient_quota",
        ),
        "auth": (
            401,
            "Incorrect API key provided: bad-key. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            _IR,
            "invalid_api_key",
        ),
        "context_too_long": (
            400,
            "This model's maximum context length is 128000 tokens. However, your messages "
            "resulted in 140000 tokens. Please reduce the length of the messages.",
            _IR,
            "context_length_exceeded",
            "messages",
        ),
        "content_filter": (
            400,
            "Invalid prompt: your prompt was flagged as potentially violating our usage "
            "policy. Please try again with a different prompt.",
            _IR,
            "invalid_prompt",
        ),
    }
)

_DEEPSEEK = _openai_like(
    {
        "rate_limit": (429, "Rate Limit Reached", "rate_limit_error", _IR),
        "server_error": (500, "Server Error", "server_error", "internal_error"),
        "overloaded": (503, "Server overloaded, please try again later.", "server_overloaded"),
        "balance": (402, "Insufficient Balance", "unknown_error", _IR),
        "auth": (
            401,
            "Authentication Fails, Your api key: ****-key is invalid",
            "authentication_error",
            _IR,
        ),
        "context_too_long": (400, _CTX, _IR, _IR),
        "content_filter": (400, "Content Exists Risk", _IR, _IR),
    }
)

_QWEN = _rows(
    dashscope,
    {
        "rate_limit": (
            429,
            "Throttling.RateQuota",
            "Requests rate limit exceeded, please try again later.",
        ),
        "server_error": (
            500,
            "InternalError",
            "An internal error has occured, please try again later or contact service support.",
        ),
        "overloaded": (
            503,
            "ServiceUnavailable",
            "The service is temporarily unavailable due to high load, please try again later.",
        ),
        "balance": (
            400,
            "Arrearage",
            "Access denied, please make sure your account is in good standing.",
        ),
        "context_too_long": (
            400,
            "InvalidParameter",
            "<400> InternalError.Algo.InvalidParameter: "
            "Range of input length should be [1, 129024]",
        ),
        "content_filter": (
            400,
            "data_inspection_failed",
            "Input data may contain inappropriate content.",
        ),
    },
) | _openai_like({"auth": (401, "Incorrect API key provided. ", _IR, "invalid_api_key")})

_ZHIPU = _rows(
    zhipu,
    {
        "rate_limit": (
            429,
            "1302",
            "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。",
        ),
        "server_error": (500, "500", "内部错误。"),
        "overloaded": (429, "1305", "当前API请求过多，请稍后重试。"),
        "balance": (429, "1113", "您的账户已欠费，请充值后重试。"),
        "auth": (401, "1000", "身份验证失败。"),
        "context_too_long": (400, "1261", "Prompt 超长"),
        "content_filter": (
            400,
            "1301",
            "系统检测到输入或生成内容可能包含不安全或敏感内容，"
            "请您避免输入易产生敏感内容的提示语，感谢您的配合。",
        ),
    },
)

_MOONSHOT_ERRORS = _openai_like(
    {
        "rate_limit": (
            429,
            _MOONSHOT + "request reached organization max RPM: 3, please try again after 1 seconds",
            "rate_limit_reached_error",
        ),
        "server_error": (
            500,
            "An unexpected error occurred, please try again later",
            "server_error",
        ),
        "overloaded": (
            429,
            "The engine is currently overloaded, please try again later",
            "engine_overloaded_error",
        ),
        "balance": (
            403,
            _MOONSHOT + "is suspended, please check your plan and billing details",
            "exceeded_current_quota_error",
        ),
        "auth": (401, "Invalid Authentication", "invalid_authentication_error"),
        "context_too_long": (
            400,
            "Invalid request: Your request exceeded model token limit: 131072",
            _IR,
        ),
        "content_filter": (
            400,
            "The request was rejected because it was considered high risk",
            "content_filter",
        ),
    }
)

_MINIMAX = _rows(
    minimax,
    {
        "rate_limit": (200, 1002, "rate limit exceeded(RPM)"),
        "server_error": (200, 1024, "internal error"),
        "overloaded": (200, 1033, "system error"),
        "balance": (200, 1008, "insufficient balance"),
        "auth": (
            200,
            1004,
            "login fail: Please carry the API secret key in the 'Authorization' field of the "
            "request header",
        ),
        "context_too_long": (200, 2013, "invalid params, context window exceeds limit"),
        "content_filter": (200, 1026, "input new_sensitive"),
    },
)

_DOUBAO = _rows(
    ark,
    {
        "rate_limit": (
            429,
            "RateLimitExceeded.EndpointRPMExceeded",
            "TooManyRequests",
            "The Requests Per Minute (RPM) limit of the associated endpoint for your account "
            "has been exceeded.",
        ),
        "server_error": (
            500,
            "InternalServiceError",
            "InternalServerError",
            "The service encountered an unexpected internal error.",
        ),
        "overloaded": (
            429,
            "ServerOverloaded",
            "TooManyRequests",
            "The service is currently unable to handle additional requests due to server overload.",
        ),
        "balance": (
            403,
            "AccountOverdueError",
            "Forbidden",
            "The request failed because your account has an overdue balance.",
        ),
        "auth": (
            401,
            "AuthenticationError",
            "Unauthorized",
            "The API key or AK/SK in the request is missing or invalid.",
        ),
        "context_too_long": (
            400,
            "InvalidParameter",
            "BadRequest",
            "One or more parameters specified in the request are not valid: the input exceeds "
            "the model's context window.",
        ),
        "content_filter": (
            400,
            "SensitiveContentDetected",
            "BadRequest",
            "The request failed because the input text may contain sensitive information.",
        ),
    },
)

_QIANFAN = _rows(
    qianfan,
    {
        "rate_limit": (
            429,
            "rpm_rate_limit_exceeded",
            "rate_limit_exceeded",
            "Rate limit reached for RPM",
        ),
        "server_error": (500, "internal_error", "internal_error", "Internal error"),
        "overloaded": (
            503,
            "server_high_load",
            "server_error",
            "Server is under high load, please try again later",
        ),
        "balance": (
            429,
            "BILLING_INSUFFICIENT_BALANCE",
            "insufficient_balance",
            "Your account balance is insufficient, please recharge",
        ),
        "auth": (401, "invalid_iam_token", "access_denied", "IAM Certification failed"),
        "context_too_long": (
            400,
            "336103",
            _IR,
            "the sum of prompt tokens and max_output_tokens exceeds the model's context limit",
        ),
    },
)

_HUNYUAN = _openai_like(
    {
        "rate_limit": (429, "请求并发数超出限制，请稍后重试。", "api_error", "LimitExceeded"),
        "server_error": (500, "内部错误。", "api_error", "InternalError"),
        "overloaded": (
            503,
            "引擎层并发超限，请稍后重试。",
            "api_error",
            "FailedOperation.EngineServerLimitExceeded",
        ),
        "balance": (
            403,
            "计费资源已耗尽。",
            "api_error",
            "ResourceInsufficient.ChargeResourceExhaust",
        ),
        "auth": (401, "API Key 无效或已被禁用。", "api_error", "AuthFailure"),
        "context_too_long": (
            400,
            "输入长度超过模型上下文上限。",
            "api_error",
            "InvalidParameterValue",
        ),
    }
)

_SPARK = _rows(
    spark,
    {
        "rate_limit": (429, "11202", "授权错误：秒级流控超限。秒级并发超过授权路数限制"),
        "server_error": (500, "10012", "EngineInternalError: 引擎内部错误"),
        "overloaded": (
            429,
            "10007",
            "用户流量受限：服务正在处理用户当前的问题，需等待处理完成后再发送新的请求。",
        ),
        "balance": (403, "11200", "授权错误：该appId没有相关功能的授权 或者 业务量超过限制"),
        "auth": (401, "10313", "appid和apikey不匹配"),
        "context_too_long": (
            400,
            "10907",
            "token数量超过上限。对话历史+问题的字数太多，需要精简输入",
        ),
        "content_filter": (400, "10013", "输入内容审核不通过，涉嫌违规，请重新调整输入内容"),
    },
)

_SILICONFLOW = _rows(
    silicon,
    {
        "rate_limit": (
            429,
            50603,
            "Request was rejected due to rate limiting. If you want more, please contact "
            "contact@siliconflow.cn. Details:TPM limit reached.",
        ),
        "server_error": (500, 50500, "Internal Server Error"),
        "overloaded": (503, 50505, "Model service overloaded. Please try again later."),
        "balance": (403, 30001, "Sorry, your account balance is insufficient"),
        "context_too_long": (
            400,
            20015,
            "length of prompt_tokens (140000) must be less than max_seq_len (131072).",
        ),
    },
) | _rows(plain, {"auth": (401, "Invalid token")})

_OPENROUTER = _rows(
    router,
    {
        "rate_limit": (429, 429, "Rate limit exceeded: limit_rpm/openai/gpt-4o"),
        "server_error": (500, 500, "Internal Server Error"),
        "overloaded": (503, 503, "No allowed providers are available for the selected model."),
        "balance": (
            402,
            402,
            "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
        ),
        "auth": (401, 401, "User not found."),
        "context_too_long": (
            400,
            400,
            "This endpoint's maximum context length is 131072 tokens. However, you requested "
            "about 140000 tokens (139000 of text input, 1000 in the output). Please reduce the "
            'length of either one, or use the "middle-out" transform to compress your prompt '
            "automatically.",
        ),
        "content_filter": (
            403,
            403,
            'openai/gpt-4o requires moderation on OpenAI. Your input was flagged for "harassment". '
            "No credits were charged.",
            {
                "reasons": ["harassment"],
                "flagged_input": "...",
                "provider_name": "OpenAI",
                "model_slug": "openai/gpt-4o",
            },
        ),
    },
)

_VLLM = _rows(
    vllm,
    {
        "rate_limit": (429, "Too many requests, please try again later.", "RateLimitError", 429),
        "server_error": (
            500,
            "EngineCore encountered an issue. See stack trace (above) for the root cause.",
            "InternalServerError",
            500,
        ),
        "overloaded": (
            503,
            "The server is overloaded, please try again later.",
            "ServiceUnavailableError",
            503,
        ),
        "balance": (402, "Payment required.", "PaymentRequiredError", 402),
        "context_too_long": (
            400,
            "This model's maximum context length is 32768 tokens. However, you requested 40000 "
            "tokens (39000 in the messages, 1000 in the completion). Please reduce the length of "
            "the messages or completion.",
            "BadRequestError",
            400,
        ),
    },
) | _rows(bare, {"auth": (401, "Unauthorized")})

_OLLAMA = _openai_like(
    {
        "rate_limit": (429, "too many requests", "api_error"),
        "server_error": (500, "llama runner process has terminated: exit status 2", "api_error"),
        "overloaded": (
            503,
            "server busy, please try again.  maximum pending requests exceeded",
            "api_error",
        ),
        "balance": (402, "payment required", "api_error"),
        "auth": (401, "unauthorized", "api_error"),
        "context_too_long": (400, "the input length exceeds the context length", _IR),
    }
)

_LLAMACPP = _rows(
    llamacpp,
    {
        "rate_limit": (429, 429, "Too many requests", "unavailable_error"),
        "server_error": (500, 500, "Internal server error", "server_error"),
        "overloaded": (503, 503, "Loading model", "unavailable_error"),
        "balance": (402, 402, "Payment required", "server_error"),
        "auth": (401, 401, "Invalid API Key", "authentication_error"),
        "context_too_long": (
            400,
            400,
            "the request exceeds the available context size, try increasing it",
            "exceed_context_size_error",
            32768,
        ),
    },
)

OA_ERRORS: Mapping[str, Mapping[str, ErrorReply]] = {
    "openai": _OPENAI,
    "deepseek": _DEEPSEEK,
    "qwen": _QWEN,
    "zhipu": _ZHIPU,
    "moonshot": _MOONSHOT_ERRORS,
    "minimax": _MINIMAX,
    "doubao": _DOUBAO,
    "qianfan": _QIANFAN,
    "hunyuan": _HUNYUAN,
    "spark": _SPARK,
    "siliconflow": _SILICONFLOW,
    "openrouter": _OPENROUTER,
    "vllm": _VLLM,
    "ollama": _OLLAMA,
    "llamacpp": _LLAMACPP,
}
