"""The frozen settings tree. Secrets are never here: only the names of the
environment variables that hold them."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(BaseModel):
    model_config = _FROZEN

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    upstream_timeout_s: float = Field(120.0, gt=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    first_byte_timeout_s: float = Field(60.0, gt=0)
    reporting_currency: Literal["CNY", "USD"] = "CNY"
    master_key_env: str = "KANJIA_MASTER_KEY"
    #: require a kanjia virtual key (or the master key) on /v1 endpoints
    require_keys: bool = False
    #: serve /metrics without the master key even when one is set (it shows spend, tokens
    #: and breaker states); ``public_metrics`` is accepted as the same setting
    metrics_public: bool = Field(False, validation_alias=AliasChoices("metrics_public",
                                                                      "public_metrics"))
    max_attempts: int = Field(3, ge=1, le=10)
    #: once started, a gateway process freezes what start-up loaded out of the cyclic
    #: garbage collector's sight and collects young objects every this many net
    #: allocations (Python's default, 700, is reached by requests in flight alone and
    #: cost about 9% of a saturated gateway's CPU); 0 leaves the collector as it is
    gc_threshold: int = Field(10_000, ge=0)
    #: a client must send its request headers within this long (from its connection,
    #: or from the first byte of a later request on it), and its body within
    #: ``body_timeout_s`` after them; else 408 and the connection is closed
    header_timeout_s: float = Field(10.0, gt=0)
    body_timeout_s: float = Field(30.0, gt=0)
    #: an idle keep-alive connection is closed after this many seconds
    keep_alive_s: int = Field(5, ge=1)
    #: open client connections at most (also capped by the file-descriptor limit): past
    #: it, the connection waiting longest for its client is closed
    max_connections: int = Field(4096, ge=1)


class DeploymentSettings(BaseModel):
    model_config = _FROZEN

    name: str = "default"
    base_url: str | None = None
    api_key_env: str | None = None
    weight: float = Field(1.0, gt=0)
    #: Azure OpenAI: the ``api-version`` query parameter ("v1" for the v1 API)
    api_version: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9.\-]+$")
    #: Azure OpenAI: model -> deployment name (unlisted models: the model name itself)
    model_deployments: dict[str, Annotated[str, StringConstraints(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")]] = \
        Field(default_factory=dict)
    #: AWS Bedrock: the region requests are signed for (default $AWS_REGION)
    region: str | None = Field(None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")


class VendorSettings(BaseModel):
    model_config = _FROZEN

    enabled: bool | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    #: models served by this vendor beyond those in the price catalog
    models: tuple[str, ...] = ()
    deployments: tuple[DeploymentSettings, ...] = ()


class RouteSettings(BaseModel):
    """A name clients use as ``model``; resolved per request to ranked candidates."""

    model_config = _FROZEN

    description: str = ""
    #: "vendor/model" entries, or ["*"] for every catalog model that fits
    models: tuple[str, ...] = ("*",)
    objective: Literal["cheapest", "fastest", "weighted", "ordered", "quality", "cascade"] = \
        "cheapest"
    weights: tuple[float, ...] = ()
    capabilities: tuple[str, ...] = ("chat",)
    min_context: int = 0
    min_quality: int = Field(0, ge=0, le=5)
    max_price_mtok: Decimal | None = None
    max_price_currency: Literal["CNY", "USD"] = "CNY"
    vendors: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    open_weights_only: bool = False
    expected_output_tokens: int = Field(256, ge=1)
    expected_cached_share: float = Field(0.0, ge=0, le=1)
    #: rank ``cheapest`` candidates by effective cost (the prompt prefix their deployments
    #: likely hold in the vendor's cache) and keep conversations on the deployment that
    #: holds their prefix
    cache_aware: bool = True
    max_candidates: int = Field(5, ge=1)
    quality_target: float | None = Field(None, ge=0, le=1)
    #: objective "quality": catalog key -> the model's column name in the quality
    #: router's training data (e.g. "openai/gpt-4o" = "gpt-4-1106-preview")
    quality_models: dict[str, str] = Field(default_factory=dict)
    #: the task label the quality router should assume (its training data's tasks)
    task: str | None = None
    #: cost/quality trade-off weight when no quality_target is given (0 = cheapest)
    quality_weight: float = Field(0.9, ge=0, le=1)
    #: answer repeated identical requests to this route from kanjia's response cache
    response_cache: bool = False
    #: how long this route's cached answers live (unset: [response_cache] ttl_s)
    response_cache_ttl_s: int | None = Field(None, ge=1)


class ResponseCacheSettings(BaseModel):
    """The exact response cache: identical requests answered without a vendor call."""

    model_config = _FROZEN

    #: on for every request (routes and keys can turn it on for theirs; the
    #: ``x-kanjia-cache`` header decides per request)
    enabled: bool = False
    ttl_s: int = Field(3600, ge=1)
    #: bounds of the local store (Redis bounds itself: set its maxmemory policy)
    max_entries: int = Field(10_000, ge=1)
    max_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    #: "tenant": a tenant's answers are only served to the same tenant
    scope: Literal["tenant", "global"] = "tenant"
    #: the local store's SQLite file (unset: beside a SQLite ledger, else
    #: kanjia-response-cache.db); ignored when ``redis`` is set
    path: str | None = None


class UnpricedPrice(BaseModel):
    """The price budgets charge for a model without a catalog price (per 1M tokens)."""

    model_config = _FROZEN

    input_mtok: Decimal = Field(ge=0, le=1_000_000)
    output_mtok: Decimal = Field(ge=0, le=1_000_000)
    currency: Literal["CNY", "USD"] = "CNY"


class BudgetSettings(BaseModel):
    """How budgets treat models the price catalog does not price (``[budgets]``)."""

    model_config = _FROZEN

    #: charge such a model at this price (reserved and settled against budgets)
    unpriced_price: UnpricedPrice | None = None
    #: let keys with a budget call such a model at no charge (else they are refused)
    allow_unpriced: bool = False


class Settings(BaseModel):
    model_config = _FROZEN

    server: ServerSettings = ServerSettings()
    budgets: BudgetSettings = BudgetSettings()
    vendors: dict[str, VendorSettings] = Field(default_factory=dict)
    aliases: dict[str, str] = Field(default_factory=dict)
    routes: dict[str, RouteSettings] = Field(default_factory=dict)
    #: when set, every vendor is served by the kanjia sandbox at this URL
    sandbox_url: str | None = None
    database: str | None = None
    #: how ledger rows reach the database: a writer process of the gateway's own
    #: ("process": no database work on the gateway's event loop or its GIL) or a
    #: thread of the gateway ("thread")
    ledger_writer: Literal["process", "thread"] = "process"
    redis: str | None = None
    quality_router: str | None = None
    #: where deferred requests (x-kanjia-defer, kanjia batch) wait for cheaper prices
    batch_queue: str = "kanjia-batch.db"
    fx: dict[str, Decimal] = Field(default_factory=dict)
    response_cache: ResponseCacheSettings = ResponseCacheSettings()
    #: the user's price-override file (`kanjia catalog import --apply` writes it); unset:
    #: $KANJIA_PRICE_OVERRIDES or ~/.config/kanjia/price-overrides.toml when it exists
    price_overrides: str | None = None
