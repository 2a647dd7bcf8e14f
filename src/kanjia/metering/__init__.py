"""Metering: virtual keys, tenants, budgets and rate limits over the ledger
(``kanjia.ledger``).

- ``Gatekeeper``: keys → callers, budgets reserved before and settled after a call,
  rate limits; state in-process (``LocalLimiter``) or shared through Redis by
  leases (``LeasedLimiter``; ``RedisLimiter``: one Redis step per request).
- ``Registry``: keys, tenants, budgets in the database; ``usage_report``: spend.
"""

from kanjia.metering._gate import Caller, Gatekeeper, Hold
from kanjia.metering._leases import LeasedLimiter
from kanjia.metering._money import BudgetSpec, parse_budget
from kanjia.metering._pricing import PriceList, SellPrice, SellPrices, Tenant, Unpriced
from kanjia.metering._redis import RedisLimiter, split_prefix
from kanjia.metering._refusals import UnpricedModel, WorstCase
from kanjia.metering._registry import Budget, KeyInfo, NotFound, Registry, is_master_key
from kanjia.metering._service import Metering, journal_dir
from kanjia.metering._usage import GROUPS, usage_report
from kanjia.metering.limits import Limiter, LocalLimiter

__all__ = [
    "GROUPS",
    "Budget",
    "BudgetSpec",
    "Caller",
    "Gatekeeper",
    "Hold",
    "KeyInfo",
    "LeasedLimiter",
    "Limiter",
    "LocalLimiter",
    "Metering",
    "NotFound",
    "PriceList",
    "RedisLimiter",
    "Registry",
    "SellPrice",
    "SellPrices",
    "Tenant",
    "Unpriced",
    "UnpricedModel",
    "WorstCase",
    "is_master_key",
    "journal_dir",
    "parse_budget",
    "split_prefix",
    "usage_report",
]
