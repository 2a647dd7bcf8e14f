from __future__ import annotations

from kanjia import errors as e
from kanjia.routing.health import BreakerPolicy, HealthBoard


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_opens_after_n_failures_in_window_not_one() -> None:
    clock = Clock()
    board = HealthBoard(BreakerPolicy(failures=3, window_s=10, cooldown_s=5), clock)
    b = board.get("x#default")
    b.failure(e.Overloaded("x"))
    assert b.available() and b.state == "closed"
    b.failure(e.Overloaded("x"))
    b.failure(e.UpstreamTimeout("x"))
    assert b.state == "open" and not b.available()


def test_failures_outside_window_do_not_count() -> None:
    clock = Clock()
    board = HealthBoard(BreakerPolicy(failures=2, window_s=10, cooldown_s=5), clock)
    b = board.get("d")
    b.failure(e.Overloaded("x"))
    clock.t = 20
    b.failure(e.Overloaded("x"))
    assert b.state == "closed"


def test_half_open_probe_then_close_or_reopen() -> None:
    clock = Clock()
    board = HealthBoard(BreakerPolicy(failures=1, window_s=10, cooldown_s=5), clock)
    b = board.get("d")
    b.failure(e.Overloaded("x"))
    assert not b.available()
    clock.t = 6
    assert b.available()          # the one probe
    assert not b.available()      # only one at a time
    b.failure(e.Overloaded("x"))
    assert b.state == "open"
    clock.t = 12
    assert b.available()
    b.success(10.0)
    assert b.state == "closed" and b.available()


def test_rate_limits_never_open_and_balance_disables() -> None:
    clock = Clock()
    board = HealthBoard(BreakerPolicy(failures=1, disabled_probe_s=100), clock)
    b = board.get("d")
    for _ in range(10):
        b.failure(e.RateLimited("x"))
    assert b.state == "closed"
    b.failure(e.BalanceExhausted("x"))
    assert b.state == "disabled" and not b.available()
    clock.t = 50
    assert not b.available()
    clock.t = 101
    assert b.available()  # periodic probe
    board.restore("d")
    assert b.state == "closed"
