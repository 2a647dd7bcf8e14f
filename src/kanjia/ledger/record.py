"""One usage record per request that reached a vendor: what the ledger stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["TRUNCATED", "CallRecord"]

#: the error class of a stream the vendor cut after its first byte reached the client
TRUNCATED = "stream_truncated"


@dataclass(slots=True)
class CallRecord:
    request_id: str
    ts: float                      # unix time the request arrived
    endpoint: str                  # "chat" | "embeddings" | "messages" | "responses"
    route: str | None              # the route name the client asked for, if any
    requested_model: str
    vendor: str | None = None
    model: str | None = None
    deployment: str | None = None
    tenant: str | None = None
    key_id: str | None = None
    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    usage_estimated: bool = False
    price_period: str | None = None
    cost: Decimal = Decimal(0)
    currency: str = "CNY"
    cost_reporting: Decimal = Decimal(0)
    reporting_currency: str = "CNY"
    charge: Decimal | None = None  # what the tenant is charged (resellers), if different
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    status: int = 200
    error_class: str | None = None
    stream: bool = False
    client_disconnected: bool = False
    attempts: list[str] = field(default_factory=list)  # the fallback chain tried
    charge_currency: str | None = None  # currency of ``charge`` (None: ``currency``)
    #: of ``cache_write_tokens``, those written for one hour (Anthropic ``ttl: "1h"``)
    cache_write_1h_tokens: int = 0
    #: answered from kanjia's response cache: no vendor call, cost 0
    cache_hit: bool = False
    #: what the cached answer would have cost at the price in force now (in ``currency``)
    saved: Decimal = Decimal(0)

    @property
    def outcome(self) -> str:
        """``ok``, ``truncated`` (a stream cut after its first byte: stored as status 502
        with error class ``stream_truncated``, so every report counts it as failed) or
        ``error``."""
        if self.error_class == TRUNCATED:
            return "truncated"
        return "ok" if self.status < 400 else "error"
