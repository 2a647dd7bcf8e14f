"""The one error tree of kanjia.

Every failure that can reach a client, a CLI user or the router is one of these
classes. The router decides on retries and fallbacks from the class alone
(``retryable``), and the server turns any of them into an HTTP status and an
OpenAI-style body ``{"error": {"message", "type", "code"}}``.

    KanjiaError
    ├── ConfigError                 bad configuration or data file (CLI: exit 2)
    ├── LocalServerError            the self-hosted model server (kanjia local) failed
    │   └── LocalNotInstalled       the kanjia[local] extra (model or engine) is missing
    ├── ClientError                 the caller's fault; never retried
    │   ├── BadRequest              400 invalid_request_error
    │   │   ├── ContextTooLong      400 context_length_exceeded
    │   │   └── ContentFiltered     400 content_filter
    │   ├── AuthFailed              401 (the client's key is missing or invalid)
    │   ├── PermissionDenied        403 (key may not use this model / endpoint)
    │   ├── ModelNotFound           404 model_not_found
    │   ├── MethodNotAllowed        405 method_not_allowed (with the Allow header's value)
    │   ├── PayloadTooLarge         413
    │   └── BudgetExceeded          429 budget_exceeded (kanjia's own budgets)
    └── UpstreamError               a vendor failed; may be retried elsewhere
        ├── RateLimited             429 rate_limit_exceeded      (retryable)
        ├── BalanceExhausted        402 insufficient_quota       (takes deployment out)
        ├── VendorAuthFailed        502 upstream_auth_failed     (takes deployment out; the
        │                                                     vendor refused kanjia's own key)
        ├── Overloaded              503 overloaded               (retryable)
        ├── UpstreamTimeout         504 timeout                  (retryable)
        ├── UpstreamProtocolError   502 bad_gateway              (retryable: malformed body)
        ├── StreamTruncated         502 stream_truncated         (a stream cut after its first byte)
        └── NoDeploymentAvailable   503 no_deployment_available  (every candidate failed)

Messages never contain secrets: ``redact`` scrubs anything key-shaped when an error is
made, and since vendor error text can echo a key of any shape (UUIDs, ``key:secret``,
JWTs, ``AKID...``), the gateway also scrubs the exact configured secret values
(``kanjia.scrub.Scrubber``, through ``KanjiaError.scrub``) before an error is recorded,
logged or sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import ClassVar, Self

__all__ = [
    "AuthFailed",
    "BadRequest",
    "BalanceExhausted",
    "BudgetExceeded",
    "ClientError",
    "ConfigError",
    "ContentFiltered",
    "ContextTooLong",
    "KanjiaError",
    "LedgerUnavailable",
    "LocalNotInstalled",
    "LocalServerError",
    "MethodNotAllowed",
    "ModelNotFound",
    "NoDeploymentAvailable",
    "Overloaded",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "RequestTimeout",
    "StreamTruncated",
    "UnknownEndpoint",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamTimeout",
    "VendorAuthFailed",
    "redact",
]

_SECRET = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6,}|kj-[A-Za-z0-9_\-]{6,}|bce-v3/[A-Za-z0-9_/\-]+|"
    r"AIza[0-9A-Za-z_\-]{10,}|Bearer\s+\S+|[0-9a-f]{32}\.[A-Za-z0-9]{8,})"
)


def redact(text: str) -> str:
    """Replace anything that looks like an API key with ``***``."""
    return _SECRET.sub("***", text)


class KanjiaError(Exception):
    """Base of every kanjia error. ``status``/``type``/``code`` shape the HTTP reply."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    code: ClassVar[str] = "internal_error"
    retryable: ClassVar[bool] = False
    #: the deployment that raised it should be taken out of rotation until restored
    disables_deployment: ClassVar[bool] = False
    #: the id of the request's ledger record, once one was written (the reply's
    #: ``x-kanjia-request-id``)
    request_id: str | None = None

    def __init__(self, message: str, *, retry_after: float | None = None,
                 vendor: str | None = None) -> None:
        self.message = redact(message)
        self.retry_after = retry_after
        self.vendor = vendor
        super().__init__(self.message)

    def scrub(self, scrubber: Callable[[str], str]) -> Self:
        """Pass the message through ``scrubber`` (exact secret values); returns self."""
        self.message = scrubber(self.message)
        self.args = (self.message,)
        return self

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code,
                          "param": None}}

    def anthropic(self) -> tuple[int, dict[str, str | dict[str, str]]]:
        """This error in the Anthropic Messages API's shape: (HTTP status, body)
        ``{"type": "error", "error": {"type", "message"}}`` with Anthropic's error types.
        A vendor's failure is never the client's: a vendor refusing kanjia's own key or
        balance is a 502 ``api_error``, not a 401/402 that sends the client to its login."""
        status = self.status
        if isinstance(self, UpstreamError):
            status, kind = _ANTHROPIC_UPSTREAM.get(status, (502, "api_error"))
        elif status in _ANTHROPIC_TYPES:
            kind = _ANTHROPIC_TYPES[status]
        else:
            status, kind = (status, "api_error") if status >= 500 else (400,
                                                                       "invalid_request_error")
        return status, {"type": "error", "error": {"type": kind, "message": self.message}}


class ConfigError(KanjiaError):
    """A configuration or data file is invalid; the message names the key."""

    code = "config_error"


class LocalServerError(KanjiaError):
    """The local model server (``kanjia local``) could not be found, started or reached."""

    code = "local_server_error"


class LocalNotInstalled(LocalServerError):
    """The model or the engine of the ``kanjia[local]`` extra is not installed."""

    code = "local_not_installed"


class LedgerUnavailable(KanjiaError):
    """Usage records cannot be journaled (or the database is far behind): the gateway
    refuses new requests rather than answer ones it could not bill."""

    status = 503
    code = "ledger_unavailable"


class ClientError(KanjiaError):
    """The request itself is wrong; trying another vendor will not help."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class BadRequest(ClientError):
    pass


class ContextTooLong(BadRequest):
    code = "context_length_exceeded"


class ContentFiltered(BadRequest):
    code = "content_filter"


class AuthFailed(ClientError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ClientError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class ModelNotFound(ClientError):
    status = 404
    code = "model_not_found"


class MethodNotAllowed(ClientError):
    """The path exists but does not answer this method; ``allow`` lists those it does."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, *, allow: Iterable[str]) -> None:
        super().__init__(message)
        self.allow = ", ".join(sorted(set(allow)))


class PayloadTooLarge(ClientError):
    status = 413
    code = "payload_too_large"


class RequestTimeout(ClientError):
    """The client did not send its request body in time."""

    status = 408
    code = "request_timeout"


class BudgetExceeded(ClientError):
    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"


class UpstreamError(KanjiaError):
    """A vendor failed. Subclasses say whether another deployment may help."""

    status = 502
    type = "api_error"
    code = "upstream_error"
    retryable = True


class RateLimited(UpstreamError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class BalanceExhausted(UpstreamError):
    status = 402
    type = "insufficient_quota"
    code = "insufficient_quota"
    disables_deployment = True


class VendorAuthFailed(UpstreamError):
    """A vendor refused the gateway's own credentials for it: a 502, never the client's
    401 (the client's key is fine; the operator must fix the vendor key)."""

    status = 502
    type = "upstream_error"
    code = "upstream_auth_failed"
    disables_deployment = True


class Overloaded(UpstreamError):
    status = 503
    type = "api_error"
    code = "overloaded"


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "api_error"
    code = "timeout"


class UpstreamProtocolError(UpstreamError):
    status = 502
    type = "api_error"
    code = "bad_gateway"


class StreamTruncated(UpstreamError):
    """The vendor's stream ended, broke or stalled before its end marker, after the client
    got its first byte: never retried (the client already has part of an answer)."""

    status = 502
    type = "upstream_error"
    code = "stream_truncated"
    retryable = False


class NoDeploymentAvailable(UpstreamError):
    status = 503
    type = "api_error"
    code = "no_deployment_available"
    retryable = False


class UnknownEndpoint(ModelNotFound):
    """No endpoint answers this path (404; not a model problem, whatever the client)."""

    code = "unknown_endpoint"


#: kanjia's client-error statuses → Anthropic's error types
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    402: "billing_error", 403: "permission_error", 404: "not_found_error",
                    413: "request_too_large", 429: "rate_limit_error"}
#: a vendor's failure → Anthropic's (status, type); anything else is a 502 api_error
_ANTHROPIC_UPSTREAM = {429: (429, "rate_limit_error"), 503: (529, "overloaded_error"),
                       504: (504, "timeout_error")}
