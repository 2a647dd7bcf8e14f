"""Anthropic's error answers: ``{"type": "error", "error": {"type", "message"}}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kanjia.sandbox._errors import ErrorReply, error_reply

__all__ = ["ANTHROPIC_ERRORS", "anthropic_error"]

_RATE = (
    "This request would exceed the rate limit for your organization (sandbox) of 50 requests "
    "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see "
    "the response headers for current usage. Please reduce the prompt length or the maximum "
    "tokens requested, or try again later. You may also contact sales at "
    "https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."
)
_BALANCE = (
    "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing "
    "to upgrade or purchase credits."
)


def anthropic_error(type_: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": type_, "message": message},
        "request_id": "req_011CSandbox000000000000",
    }


#: content_filter is not an error on Anthropic: the reply ends with stop_reason "refusal"
ANTHROPIC_ERRORS: Mapping[str, ErrorReply] = {
    "rate_limit": error_reply(429, anthropic_error("rate_limit_error", _RATE)),
    "server_error": error_reply(500, anthropic_error("api_error", "Internal server error")),
    "overloaded": error_reply(529, anthropic_error("overloaded_error", "Overloaded")),
    "balance": error_reply(400, anthropic_error("invalid_request_error", _BALANCE)),
    "auth": error_reply(401, anthropic_error("authentication_error", "invalid x-api-key")),
    "context_too_long": error_reply(
        400,
        anthropic_error(
            "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
        ),
    ),
}
