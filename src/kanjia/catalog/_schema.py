"""The schema of the price files in ``catalog/data``, checked when they are loaded.

One TOML file per vendor (``<vendor>.toml``: a ``[vendor]`` table and ``[[models]]``
with their ``[[models.periods]]``) plus ``fx.toml`` (dated CNY per USD rates). Unknown
keys and bad values are errors; the loader turns them into a ``ConfigError`` that
names the file, the model and the field.

All amounts are per 1M tokens in the period's currency (the unit is in the name).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Evidence = Literal["S", "S3", "M"]
Capability = Literal["chat", "tools", "vision", "json_mode", "reasoning", "embeddings"]
Region = Literal["cn", "global", "self-hosted"]
Currency = Literal["CNY", "USD"]
CatalogName = Literal["genai_prices", "litellm", "openrouter", "models_dev"]
Mtok = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]

_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_LABEL = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_OFFSET = re.compile(r"^[+-](0\d|1[0-4]):[0-5]\d$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PricesSpec(_Strict):
    """Prices per 1M tokens. Cached and cache-write default to the input price, the
    1-hour cache write to the (5-minute) cache-write price."""

    input_mtok: Mtok | None = None
    #: cache hit (DeepSeek, OpenAI cached input, Anthropic cache read)
    cached_mtok: Mtok | None = None
    #: cache creation (Anthropic 5-minute write); most vendors bill writes as input
    cache_write_mtok: Mtok | None = None
    #: 1-hour cache creation (Anthropic ``ttl: "1h"``: 2x the base input price)
    cache_write_1h_mtok: Mtok | None = None
    output_mtok: Mtok | None = None


class TierSpec(PricesSpec):
    """Prices once the prompt exceeds ``above_input_tokens`` (cliff rule: all tokens)."""

    above_input_tokens: int = Field(gt=0)

    @model_validator(mode="after")
    def _needs_prices(self) -> TierSpec:
        if self.input_mtok is None or self.output_mtok is None:
            raise ValueError("a tier needs input_mtok and output_mtok")
        return self


class WindowSpec(PricesSpec):
    """Prices during hours of the day, in the vendor's local time (Beijing for CN)."""

    label: str
    #: "HH:MM-HH:MM" ranges, end exclusive; "22:00-02:00" wraps past midnight
    hours: list[str] = Field(min_length=1)
    days: Literal["daily", "weekdays", "weekends"] = "daily"

    @field_validator("label")
    @classmethod
    def _label(cls, v: str) -> str:
        if not _LABEL.match(v):
            raise ValueError("label must be lower-case letters, digits and '-'")
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: list[str]) -> list[str]:
        for item in v:
            m = _HOURS.match(item)
            if m is None or (m.group(3) == "24" and m.group(4) != "00"):
                raise ValueError(f"{item!r} is not HH:MM-HH:MM")
            if item[:5] == item[6:]:
                raise ValueError(f"{item!r} is empty")
        return v

    @model_validator(mode="after")
    def _needs_prices(self) -> WindowSpec:
        if self.input_mtok is None or self.output_mtok is None:
            raise ValueError("a window needs input_mtok and output_mtok")
        return self


class PeriodSpec(PricesSpec):
    """One price period of a model: in force from ``start`` until the next one."""

    #: local date (00:00 in the vendor's time zone) or an offset date-time; only the
    #: first period may omit it ("in force before the next period, since unknown")
    start: datetime | date | None = None
    #: optional end (exclusive); without one the period runs until the next starts
    end: datetime | date | None = None
    #: billing currency of this period; defaults to the vendor's
    currency: Currency | None = None
    free: bool = False
    free_quota: str | None = None
    #: label of the base prices when windows exist (e.g. "offpeak", "standard")
    base_label: str | None = None
    tiers: list[TierSpec] = Field(default_factory=list)
    windows: list[WindowSpec] = Field(default_factory=list)
    #: provenance: URL, document or package the prices come from
    source: str = Field(min_length=3)
    #: when the source was last checked
    checked: date
    #: evidence level of the weakest price in the period: S, S3 or M
    evidence: Evidence
    #: evidence level of the start date when weaker than the prices (e.g. "M")
    start_evidence: Evidence | None = None
    #: the start is when the source first showed the price, not when it took effect
    first_seen: bool = False
    note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PeriodSpec:
        prices = (self.input_mtok, self.cached_mtok, self.cache_write_mtok,
                  self.cache_write_1h_mtok, self.output_mtok)
        if self.free:
            if any(p not in (None, 0) for p in prices) or self.tiers or self.windows:
                raise ValueError("a free period has no prices, tiers or windows")
        elif self.input_mtok is None:
            raise ValueError("input_mtok is required unless free = true")
        elif self.output_mtok is None and not self.note:
            raise ValueError("output_mtok is required (or a note saying why it is unknown)")
        if self.free_quota is not None and not self.free:
            raise ValueError("free_quota only goes with free = true")
        if self.tiers and self.windows:
            raise ValueError("a period has tiers or windows, not both")
        if self.base_label is not None and (not self.windows or not _LABEL.match(self.base_label)
                                            or self.base_label in {w.label for w in self.windows}):
            raise ValueError("base_label is a lower-case label, distinct from the windows' "
                             "labels, and only goes with windows")
        limits = [t.above_input_tokens for t in self.tiers]
        if limits != sorted(set(limits)):
            raise ValueError("tiers must be in increasing above_input_tokens order")
        labels = [w.label for w in self.windows]
        if len(labels) != len(set(labels)):
            raise ValueError("window labels must be unique")
        return self


class ModelSpec(_Strict):
    id: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    #: the ids other catalogs use for this model, for `kanjia catalog import`
    ids: dict[CatalogName, str] = Field(default_factory=dict)
    #: why another catalog's value differs, with the primary source and date that back
    #: ours (`kanjia catalog import` shows it as explained): "genai_prices" explains the
    #: prices, "genai_prices.context_window" (or another field) one field
    differs: dict[str, str] = Field(default_factory=dict)

    @field_validator("differs")
    @classmethod
    def _differs_keys(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            name, _, field = key.partition(".")
            if name not in CatalogName.__args__ or field not in (  # type: ignore[attr-defined]
                    "", "context_window", "max_output"):
                raise ValueError(f"differs key {key!r}: a catalog name, optionally with "
                                 ".context_window or .max_output")
        return v
    #: label of the line this model draws in `kanjia prices chart` (one per family)
    family: str | None = None
    context_window: int | None = Field(default=None, gt=0)
    max_output: int | None = Field(default=None, gt=0)
    capabilities: list[Capability] = Field(min_length=1)
    open_weights: bool = False
    #: parameter count in billions (open-weights models)
    params_b: float | None = Field(default=None, gt=0)
    note: str | None = None
    periods: list[PeriodSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _periods_in_order(self) -> ModelSpec:
        for i, p in enumerate(self.periods):
            if p.start is None and i > 0:
                raise ValueError(f"periods[{i}].start: only the first period may omit start")
        if len(set(self.capabilities)) != len(self.capabilities):
            raise ValueError("capabilities repeat")
        if self.params_b is not None and not self.open_weights:
            raise ValueError("params_b is only given for open-weights models")
        return self


class BatchSpec(_Strict):
    """The vendor's batch API (files + batches, Message Batches): every price of a request
    sent through it is ``factor`` times the standard price in force (cached and cache
    writes included; off-peak windows do not apply)."""

    factor: Decimal = Field(gt=0, le=1, allow_inf_nan=False)
    #: the models the batch API serves; empty: every model of the vendor
    models: list[str] = Field(default_factory=list)
    source: str = Field(min_length=3)
    checked: date
    evidence: Evidence
    note: str | None = None


class CacheSpec(_Strict):
    """The vendor's prompt-cache rules: what kanjia's cache-aware routing assumes.

    ``mode``: "implicit" (the vendor caches every prompt prefix by itself) or "explicit"
    (only prefixes the request marks, e.g. Anthropic ``cache_control``). A prefix is
    cached from ``min_tokens`` on, in steps of ``unit`` tokens, and lives ``ttl_s``
    seconds after its last use. The read price and the write premium are the models'
    own ``cached_mtok`` / ``cache_write_mtok`` / ``cache_write_1h_mtok`` (one home for
    prices); ``write_premium`` only says whether writes cost more than input."""

    mode: Literal["implicit", "explicit"]
    min_tokens: int = Field(ge=1)
    unit: int = Field(1, ge=1)
    ttl_s: int = Field(gt=0)
    write_premium: bool = False
    #: the vendor's documentation of these rules
    source: str = Field(min_length=3)
    checked: date
    evidence: Evidence
    note: str | None = None


class VendorInfoSpec(_Strict):
    name: str = Field(min_length=1)
    region: Region
    #: the currency the vendor bills in (periods may override)
    currency: Currency
    pricing_urls: list[str] = Field(min_length=1)
    #: UTC offset of dates and time windows; defaults to +08:00 for cn, else +00:00
    timezone: str | None = None
    note: str | None = None
    #: batch API prices, when the vendor sells batch processing
    batch: BatchSpec | None = None
    #: prompt-cache rules, when the vendor bills cached prompt tokens apart
    cache: CacheSpec | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None and not _OFFSET.match(v):
            raise ValueError("timezone is a UTC offset like +08:00")
        return v


class VendorFile(_Strict):
    vendor: VendorInfoSpec
    models: list[ModelSpec] = Field(default_factory=list)


class FxRateSpec(_Strict):
    date: date
    cny_per_usd: Decimal = Field(gt=0, allow_inf_nan=False)
    source: str = Field(min_length=3)
    evidence: Evidence


class FxFile(_Strict):
    rates: list[FxRateSpec] = Field(min_length=1)
