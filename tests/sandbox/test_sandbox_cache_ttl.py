"""The sandbox's explicit prompt cache keeps entries for their TTL, refreshed by hits."""

from __future__ import annotations

from kanjia.sandbox import SandboxSettings
from kanjia.sandbox._state import SandboxState
from kanjia.sandbox._vendors.anthropic_request import cache_usage, parse_messages


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _request(ttl: str) -> object:
    system = [{"type": "text", "text": "keep " * 1500,
               "cache_control": {"type": "ephemeral", "ttl": ttl}}]
    return parse_messages({"model": "claude-sonnet-4-5", "max_tokens": 10, "system": system,
                           "messages": [{"role": "user", "content": "q"}]})


def test_five_minute_entry_expires_and_hits_refresh_it() -> None:
    state = SandboxState(SandboxSettings())
    clock = Clock()
    state.cache.clock = clock
    req = _request("5m")
    first = cache_usage(state, req, "m1")  # type: ignore[arg-type]
    assert first.write_5m > 1024 and first.read == 0
    clock.now += 299
    assert cache_usage(state, req, "m2").read == first.write_5m  # type: ignore[arg-type]
    clock.now += 299  # 598 s after the write, 299 s after the hit that refreshed it
    assert cache_usage(state, req, "m3").read == first.write_5m  # type: ignore[arg-type]
    clock.now += 301
    expired = cache_usage(state, req, "m4")  # type: ignore[arg-type]
    assert expired.read == 0 and expired.write_5m == first.write_5m


def test_one_hour_entry_outlives_five_minutes() -> None:
    state = SandboxState(SandboxSettings())
    clock = Clock()
    state.cache.clock = clock
    req = _request("1h")
    first = cache_usage(state, req, "h1")  # type: ignore[arg-type]
    assert first.write_1h > 1024 and first.write_5m == 0
    clock.now += 3000
    assert cache_usage(state, req, "h2").read == first.write_1h  # type: ignore[arg-type]
    clock.now += 3601
    assert cache_usage(state, req, "h3").read == 0  # type: ignore[arg-type]
