"""Error answers of the global market's OpenAI-compatible vendors, per vendor and fault.

Each keeps its own body shape: Mistral's ``{"object": "error", ...}``, xAI's
``{"code": "<status text>", "error": "<message>"}``, Cerebras' top-level OpenAI
fields, Novita's ``{"code", "reason", "message", "metadata"}``, Cohere's
``{"id", "message"}`` and Perplexity's HTML 401 page; the rest use OpenAI's
``{"error": {...}}``. Rows are ``fault: (status, *shape arguments)``; where a vendor's
docs name only the status (a balance error), the message is the most plausible
documented form. Vendors without a ``content_filter`` row filter by finish_reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kanjia.sandbox._errors import ErrorReply, error_reply

__all__ = ["MARKET_ERRORS"]

_IR = "invalid_request_error"


def _rows(shape: Callable[..., Any], rows: dict[str, tuple[Any, ...]]) -> dict[str, ErrorReply]:
    return {fault: error_reply(status, shape(*args), status == 429 and fault != "balance")
            for fault, (status, *args) in rows.items()}


def oai(message: str, type_: str | None, code: Any = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def mistral(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": type_, "param": None, "code": code}


def xai(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "error": message}


def cerebras(message: str, type_: str, code: str | None, param: str | None = None
             ) -> dict[str, Any]:
    return {"message": message, "type": type_, "param": param, "code": code}


def novita(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"code": code, "reason": reason, "message": message, "metadata": {}}


def cohere(message: str) -> dict[str, Any]:
    return {"id": "00000000-sandbox-0000-0000-000000000000", "message": message}


def html(status: str) -> str:
    return (f"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>"
            f"{status}</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n")


_CTX = ("This model's maximum context length is 131072 tokens. However, you requested 140000 "
        "tokens. Please reduce the length of the messages or completion.")

_MISTRAL = _rows(mistral, {
    "rate_limit": (429, "Requests rate limit exceeded", "rate_limited", "1300"),
    "server_error": (500, "Internal server error", "internal_server_error"),
    "overloaded": (429, "Service tier capacity exceeded for this model.",
                   "service_tier_capacity_exceeded", "3505"),
    "balance": (402, "Insufficient credits: add credits to your workspace to continue.",
                "payment_required"),
    "auth": (401, "Unauthorized", "unauthorized"),
    "context_too_long": (400, "Prompt contains 140000 tokens and 0 draft tokens, too large "
                         "for model with 131072 maximum context length", _IR),
})

_XAI = _rows(xai, {
    "rate_limit": (429, "Some resource has been exhausted",
                   "Your team has exceeded its requests per second limit; please retry later."),
    "server_error": (500, "Internal error", "Service encountered an internal error."),
    "overloaded": (503, "The service is currently unavailable",
                   "The model is overloaded; please try again later."),
    "balance": (403, "The caller does not have permission to execute the specified operation",
                "Your team team-sandbox has either used all available credits or reached its "
                "monthly spending limit. To continue making API requests, please purchase more "
                "credits or raise your spending limit."),
    "auth": (400, "Client specified an invalid argument",
             "Incorrect API key provided: ba***ey. You can obtain an API key from "
             "https://console.x.ai."),
    "context_too_long": (400, "Client specified an invalid argument",
                         "This model's maximum prompt length is 131072 but the request "
                         "contains 140000 tokens."),
})

_GROQ = _rows(oai, {
    "rate_limit": (429, "Rate limit reached for model `llama-3.3-70b-versatile` in organization "
                   "`org_sandbox` service tier `on_demand` on tokens per minute (TPM): Limit "
                   "12000, Used 11950, Requested 600. Please try again in 2.75s.",
                   "tokens", "rate_limit_exceeded"),
    "server_error": (500, "Internal Server Error", "internal_server_error"),
    "overloaded": (498, "Flex tier capacity exceeded. Please try again later.",
                   "capacity_exceeded", "capacity_exceeded"),
    "balance": (402, "Your organization has reached its spend limit. Raise it in the billing "
                "settings to continue.", _IR),
    "auth": (401, "Invalid API Key", _IR, "invalid_api_key"),
    "context_too_long": (400, "Please reduce the length of the messages or completion.", _IR,
                         "context_length_exceeded"),
})

_TOGETHER = _rows(oai, {
    "rate_limit": (429, "You are on tier Build Tier 1, which offers 600 queries per minute. "
                   "Please try again later.", "rate_limit", None),
    "server_error": (500, "Internal server error", "server_error", None),
    "overloaded": (503, "The server is overloaded or not ready yet.", "server_error", None),
    "balance": (402, "Credit limit exceeded. Please navigate to "
                "https://api.together.xyz/settings/billing to add credit or upgrade your plan.",
                "credit_limit", "credit_limit"),
    "auth": (401, "Invalid API key provided. You can find your API key at "
             "https://api.together.xyz/settings/api-keys.", _IR, "invalid_api_key"),
    "context_too_long": (400, _CTX, _IR, None),
})

_FIREWORKS = _rows(oai, {
    "rate_limit": (429, "rate limit exceeded, please try again later", _IR, None),
    "server_error": (500, "Internal server error", "internal_server_error", None),
    "overloaded": (503, "Service unavailable: the model is overloaded, please try again later",
                   "service_unavailable", None),
    "balance": (402, "Account sandbox is suspended, possibly due to reaching the monthly "
                "spending limit or failure to pay past invoices.", _IR, None),
    "auth": (401, "The API key you provided is invalid.", "authentication_error", None),
    "context_too_long": (400, "The prompt is too long: 140000, model maximum context length: "
                         "131072", _IR, None),
})

_CEREBRAS = _rows(cerebras, {
    "rate_limit": (429, "Requests per minute limit exceeded - too many requests sent.",
                   "too_many_requests_error", "request_quota_exceeded", "quota"),
    "server_error": (500, "Internal server error", "internal_server_error", None),
    "overloaded": (429, "We're experiencing high traffic right now! Please try again soon.",
                   "too_many_requests_error", "queue_exceeded", "queue"),
    "balance": (402, "Payment required: your organization has no remaining credits.",
                "payment_required_error", None),
    "auth": (401, "Wrong API Key", _IR, "wrong_api_key", "api_key"),
    "context_too_long": (400, "Please reduce the length of the messages or completion. Current "
                         "length is 140000 while limit is 131072", _IR,
                         "context_length_exceeded", "messages"),
})

_PERPLEXITY = _rows(oai, {
    "rate_limit": (429, "Rate limit exceeded. Please try again later.",
                   "rate_limit_exceeded", 429),
    "server_error": (500, "Internal server error", "internal_server_error", 500),
    "overloaded": (503, "The service is temporarily unavailable. Please try again later.",
                   "service_unavailable", 503),
    "balance": (429, "You exceeded your current quota, please check your plan and billing "
                "details.", "insufficient_quota", 429),
    "context_too_long": (400, _CTX, _IR, 400),
}) | _rows(html, {"auth": (401, "401 Authorization Required")})

_NOVITA = _rows(novita, {
    "rate_limit": (429, 429, "RATE_LIMIT_EXCEEDED", "rate limit exceeded, please retry later"),
    "server_error": (500, 500, "INTERNAL_SERVER_ERROR", "internal server error"),
    "overloaded": (503, 503, "SERVICE_UNAVAILABLE", "model service is busy, please retry later"),
    "balance": (403, 403, "NOT_ENOUGH_BALANCE", "not enough balance"),
    "auth": (401, 401, "INVALID_API_KEY", "invalid api key"),
    "context_too_long": (400, 400, "INVALID_REQUEST_BODY", _CTX),
})

_COHERE = _rows(cohere, {
    "rate_limit": (429, "You are using a Trial key, which is limited to 20 API calls / minute. "
                   "You can continue to use the Trial key for free or upgrade to a Production "
                   "key with higher rate limits at 'https://dashboard.cohere.com/api-keys'."),
    "server_error": (500, "internal server error, this has been reported to our developers"),
    "overloaded": (503, "service unavailable, please try again later"),
    "balance": (402, "Please add a payment method to your account to continue: "
                "https://dashboard.cohere.com/billing"),
    "auth": (401, "invalid api token"),
    "context_too_long": (400, "too many tokens: total number of tokens in the prompt cannot "
                         "exceed 128000 - received 140000. Try using a shorter prompt"),
})

MARKET_ERRORS: Mapping[str, Mapping[str, ErrorReply]] = {
    "mistral": _MISTRAL,
    "xai": _XAI,
    "groq": _GROQ,
    "together": _TOGETHER,
    "fireworks": _FIREWORKS,
    "cerebras": _CEREBRAS,
    "perplexity": _PERPLEXITY,
    "novita": _NOVITA,
    "cohere": _COHERE,
}
