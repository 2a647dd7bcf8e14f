"""Record builders shared by the ledger and metering tests."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

from kanjia.ledger.record import CallRecord


def make_record(**kw: Any) -> CallRecord:
    base: dict[str, Any] = dict(
        request_id="kj-" + uuid.uuid4().hex[:24], ts=time.time(), endpoint="chat", route=None,
        requested_model="deepseek/deepseek-chat", vendor="deepseek", model="deepseek-chat",
        deployment="default", input_tokens=100, output_tokens=50,
        cost=Decimal("0.00046"), currency="CNY", cost_reporting=Decimal("0.00046"),
        price_period="2025-09-05", latency_ms=12.5, attempts=["deepseek/deepseek-chat@default"])
    base.update(kw)
    return CallRecord(**base)
