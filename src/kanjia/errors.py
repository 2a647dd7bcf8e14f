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
    │   ├── AuthFailed              401 (missing/invalid key, or vendor rejected ours)
    │   ├── PermissionDenied        403 (key may not use this model / endpoint)
    │   ├── ModelNotFound           404 model_not_found
    │   ├── PayloadTooLarge         413
    │   └── BudgetExceeded          429 budget_exceeded (kanjia's own budgets)
    └── UpstreamError               a vendor failed; may be retried elsewhere
        ├── RateLimited             429 rate_limit_exceeded      (retryable)
        ├── BalanceExhausted        402 insufficient_quota       (takes deployment out)
        ├── VendorAuthFailed        401 upstream_auth_failed     (takes deployment out)
        ├── Overloaded              503 overloaded               (retryable)
        ├── UpstreamTimeout         504 timeout                  (retryable)
        ├── UpstreamProtocolError   502 bad_gateway              (retryable: malformed body)
        └── NoDeploymentAvailable   503 no_deployment_available  (every candidate failed)

Messages never contain secrets: adapters build them from the vendor's own error
text, which never includes our key, and ``redact`` scrubs anything key-shaped.
"""

from __future__ import annotations

import re
from typing import ClassVar

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
    "ModelNotFound",
    "NoDeploymentAvailable",
    "Overloaded",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "RequestTimeout",
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

    def __init__(self, message: str, *, retry_after: float | None = None,
                 vendor: str | None = None) -> None:
        self.message = redact(message)
        self.retry_after = retry_after
        self.vendor = vendor
        super().__init__(self.message)

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code,
                          "param": None}}


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
    status = 401
    type = "api_error"
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


class NoDeploymentAvailable(UpstreamError):
    status = 503
    type = "api_error"
    code = "no_deployment_available"
    retryable = False
