"""Fault names and the server-wide fault rules set through ``/_sandbox/faults``.

Error faults answer with the vendor's own status and body. Transport faults
misbehave at the connection level and are vendor-independent:

- ``timeout``: hang for ``hang_s`` seconds, then answer normally;
- ``reset``: streams send a few chunks then abort the TCP connection (RST);
  non-streams close the connection without a response;
- ``truncate``: streams send the first half of their frames then end cleanly, without
  the vendor's end marker (no ``finish_reason``/``[DONE]``, ``message_stop`` or ``finishReason``);
  non-streams send the first half of the body;
- ``malformed``: HTTP 200 with a broken JSON body or a broken SSE data line;
- ``slow_stream``: stream chunks trickle one per 500 ms (non-streams unaffected).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ERROR_FAULTS",
    "FAULTS",
    "SLOW_STREAM_CHUNK_MS",
    "TRANSPORT_FAULTS",
    "FaultBook",
    "FaultRule",
    "parse_rule",
]

ERROR_FAULTS = frozenset(
    {
        "rate_limit",
        "server_error",
        "overloaded",
        "balance",
        "auth",
        "context_too_long",
        "content_filter",
    }
)
TRANSPORT_FAULTS = frozenset({"timeout", "reset", "truncate", "malformed", "slow_stream"})
FAULTS = ERROR_FAULTS | TRANSPORT_FAULTS
SLOW_STREAM_CHUNK_MS = 500


@dataclass(slots=True)
class FaultRule:
    """Apply ``fault`` to requests for ``vendor`` ("*" = any) and ``model`` (None = any).

    ``count`` limits it to the next N matching requests; ``probability`` applies
    it to a seeded random share; with neither it applies until cleared.
    """

    vendor: str
    fault: str
    model: str | None = None
    count: int | None = None
    probability: float | None = None

    def matches(self, vendor: str, model: str) -> bool:
        return (self.vendor == "*" or self.vendor == vendor) and (
            self.model is None or self.model == model
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "model": self.model,
            "fault": self.fault,
            "count": self.count,
            "probability": self.probability,
        }


def parse_rule(data: Any) -> FaultRule:
    """A rule from the JSON body of ``POST /_sandbox/faults``; ValueError if invalid."""
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    vendor, fault, model = data.get("vendor", "*"), data.get("fault"), data.get("model")
    count, probability = data.get("count"), data.get("probability")
    if not isinstance(vendor, str) or not vendor:
        raise ValueError("vendor must be a vendor id or '*'")
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {sorted(FAULTS)}")
    if model is not None and not isinstance(model, str):
        raise ValueError("model must be a string")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError("count must be a positive integer")
    if probability is not None:
        if isinstance(probability, bool) or not isinstance(probability, int | float):
            raise ValueError("probability must be a number")
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        probability = float(probability)
    return FaultRule(vendor, str(fault), model, count, probability)


class FaultBook:
    """The active rules, consulted once per request (a no-op when there are none)."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self.rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        self.rules.append(rule)

    def clear(self) -> int:
        cleared = len(self.rules)
        self.rules.clear()
        return cleared

    def reset(self) -> None:
        self.rules.clear()
        self._rng = random.Random(self._seed)

    def pick(self, vendor: str, model: str) -> str | None:
        """The fault for this request, consuming one use of a counted rule."""
        if not self.rules:
            return None
        for rule in self.rules:
            if not rule.matches(vendor, model):
                continue
            if rule.probability is not None and self._rng.random() >= rule.probability:
                continue
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self.rules.remove(rule)
            return rule.fault
        return None
