"""Gemini's error answers: ``{"error": {"code", "message", "status", "details"}}``.

A bad key is HTTP 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID`` (not
401), a missing key 403 ``PERMISSION_DENIED``; exhausted prepaid credits are a
429 ``RESOURCE_EXHAUSTED`` told apart from rate limits by message only.
content_filter is not an error: HTTP 200 with ``promptFeedback.blockReason``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kanjia.sandbox._errors import ErrorReply, error_reply

__all__ = ["GEMINI_ERRORS", "MISSING_KEY", "gemini_error"]

_TYPES = "type.googleapis.com/google.rpc."
_SERVICE = "generativelanguage.googleapis.com"
_RATE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)
_RATE_DETAILS = [
    {
        "@type": _TYPES + "QuotaFailure",
        "violations": [
            {
                "quotaMetric": _SERVICE + "/generate_content_paid_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                "quotaValue": "1000",
            }
        ],
    },
    {"@type": _TYPES + "RetryInfo", "retryDelay": "1s"},
]
_KEY_DETAILS = [
    {
        "@type": _TYPES + "ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": _SERVICE},
    }
]


def gemini_error(
    code: int, status: str, message: str, details: list[Any] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def _e(
    code: int,
    status: str,
    message: str,
    details: list[Any] | None = None,
    retry: bool | None = None,
) -> ErrorReply:
    return error_reply(code, gemini_error(code, status, message, details), retry)


GEMINI_ERRORS: Mapping[str, ErrorReply] = {
    "rate_limit": _e(429, "RESOURCE_EXHAUSTED", _RATE, _RATE_DETAILS),
    "server_error": _e(
        500,
        "INTERNAL",
        (
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting"
        ),
    ),
    "overloaded": _e(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "balance": _e(
        429,
        "RESOURCE_EXHAUSTED",
        (
            "Your prepayment credits are depleted. Please go to AI Studio at "
            "https://ai.studio/projects to manage your project and billing."
        ),
        retry=False,
    ),
    "auth": _e(
        400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", _KEY_DETAILS
    ),
    "context_too_long": _e(
        400,
        "INVALID_ARGUMENT",
        "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
    ),
}

MISSING_KEY = _e(
    403,
    "PERMISSION_DENIED",
    (
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API."
    ),
)
