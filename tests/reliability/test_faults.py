"""Vendor faults from the sandbox: the client gets a correct answer (after fallback) or a
correct OpenAI-style error, within a bound; the call records agree with what the client saw.
"""

from __future__ import annotations

import pytest

from ._util import (
    UPSTREAM_CODES,
    Gw,
    chat,
    set_fault,
    sse,
    stream_error,
    stream_text,
)

# fault -> (status, code) the client must get when no other vendor can take over
EXPECTED = {
    "rate_limit": (429, "rate_limit_exceeded"),
    "server_error": (502, "upstream_error"),
    "overloaded": (503, "overloaded"),
    "balance": (402, "insufficient_quota"),
    "auth": (502, "upstream_auth_failed"),
    "timeout": (504, "timeout"),
    "reset": (502, "upstream_error"),
    "malformed": (502, "bad_gateway"),
    "context_too_long": (400, "context_length_exceeded"),
    "content_filter": (400, "content_filter"),
}
FAILOVER = ["rate_limit", "server_error", "overloaded", "balance", "auth", "timeout", "reset",
            "malformed"]
#: one upstream deadline is 1 s; two attempts, a Retry-After of 1 s, and slack
BOUND_S = 6.0


def _assert_answer(reply_body: dict, vendor: str | None = None) -> None:  # type: ignore[type-arg]
    msg = reply_body["choices"][0]["message"]
    assert msg["role"] == "assistant" and msg["content"]
    assert reply_body["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_error_reaches_client_with_right_status(gw: Gw, fault: str) -> None:
    r = chat(gw.url, f"hi [[sandbox:fault={fault}]]")
    assert r.seconds < BOUND_S
    assert (r.status, r.error["code"]) == EXPECTED[fault], r.body
    if fault == "rate_limit":
        assert "retry-after" in r.headers
    assert len(gw.records) == 1
    rec = gw.records[0]
    assert rec.status == r.status and rec.error_class == r.error["code"]


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_stream_error_reaches_client(gw: Gw, fault: str) -> None:
    r = chat(gw.url, f"hi [[sandbox:fault={fault}]] [[sandbox:tokens=8]]", stream=True)
    assert r.seconds < BOUND_S
    if r.status != 200:
        # failed before the first byte: a plain error reply, same as non-streaming
        assert (r.status, r.error["code"]) == EXPECTED[fault], r.body
    else:
        # failed after the first byte (a reset mid-stream): an error event ends the stream
        events = sse(r.body)
        err = stream_error(events)
        assert err is not None, f"{fault}: 200 stream without an error event: {events[-3:]}"
        assert err["code"] in UPSTREAM_CODES
        assert fault in ("reset", "malformed")
    assert len(gw.wait_records(1)) == 1
    assert gw.records[0].status == (r.status if r.status != 200 else EXPECTED[fault][0])


@pytest.mark.parametrize("fault", FAILOVER)
def test_fallback_gives_a_correct_answer(gw: Gw, sb: str, fault: str) -> None:
    set_fault(sb, vendor="deepseek", fault=fault, count=1)
    r = chat(gw.url, "What is the cheapest model?", model="fb")
    assert r.seconds < BOUND_S
    assert r.status == 200, r.body
    assert r.headers["x-kanjia-vendor"] == "qwen"
    assert r.headers["x-kanjia-attempts"].split(",")[0].startswith("deepseek/")
    _assert_answer(r.json())
    rec = gw.records[-1]
    assert len(gw.records) == 1 and rec.status == 200 and rec.vendor == "qwen"
    assert len(rec.attempts) == 2 and rec.output_tokens > 0


@pytest.mark.parametrize("fault", FAILOVER)
def test_stream_fallback(gw: Gw, sb: str, fault: str) -> None:
    set_fault(sb, vendor="deepseek", fault=fault, count=1)
    r = chat(gw.url, "Stream something. [[sandbox:tokens=12]]", model="fb", stream=True)
    assert r.seconds < BOUND_S
    assert r.status == 200, r.body
    events = sse(r.body)
    err = stream_error(events)
    assert len(gw.wait_records(1)) == 1
    rec = gw.records[-1]
    if err is None:
        # failed over before the first byte: a complete answer from the second vendor
        assert r.headers["x-kanjia-vendor"] == "qwen"
        assert events[-1] == "[DONE]"
        assert stream_text(events)
        usage = [e["usage"] for e in events if isinstance(e, dict) and e.get("usage")]
        assert usage and usage[-1]["completion_tokens"] > 0
        assert rec.status == 200 and rec.vendor == "qwen" and rec.output_tokens > 0
    else:
        # the first vendor failed after the first byte: no silent truncation
        assert fault in ("reset", "malformed"), events
        assert err["code"] in UPSTREAM_CODES
        assert rec.status >= 500


@pytest.mark.parametrize("fault", ["context_too_long", "content_filter"])
def test_client_errors_do_not_fail_over(gw: Gw, sb: str, fault: str) -> None:
    set_fault(sb, vendor="deepseek", fault=fault, count=1)
    r = chat(gw.url, "hi", model="fb")
    assert (r.status, r.error["code"]) == EXPECTED[fault]
    assert gw.records[-1].attempts == ["deepseek/deepseek-chat@sandbox"]


def test_slow_trickle_stream_completes_and_others_are_not_blocked(gw: Gw) -> None:
    """``slow_stream``: one chunk per 500 ms, under the 1 s read deadline: it completes,
    and meanwhile other requests are answered at once."""
    import threading

    box: dict[str, object] = {}
    t = threading.Thread(target=lambda: box.update(
        r=chat(gw.url, "slow [[sandbox:fault=slow_stream]] [[sandbox:tokens=4]]", stream=True,
               timeout=20)))
    t.start()
    fast = [chat(gw.url, "quick") for _ in range(10)]
    assert all(f.status == 200 for f in fast)
    assert max(f.seconds for f in fast) < 0.5
    t.join(20)
    r = box["r"]
    assert r.status == 200  # type: ignore[attr-defined]
    events = sse(r.body)  # type: ignore[attr-defined]
    assert stream_error(events) is None and events[-1] == "[DONE]" and stream_text(events)
    assert r.seconds > 1.0  # type: ignore[attr-defined]


def test_stalled_stream_hits_the_read_deadline(sb: str) -> None:
    """A stream that stalls longer than ``first_byte_timeout_s`` is cut: every upstream read
    has a deadline."""
    from ._util import gateway

    with gateway(sb, server={"first_byte_timeout_s": 0.3}) as g:
        r = chat(g.url, "slow [[sandbox:fault=slow_stream]] [[sandbox:tokens=6]]", stream=True)
        assert r.seconds < BOUND_S
        rec = g.wait_records(1)[-1]
        if r.status == 200:  # stalled after the first byte: the answer is cut, not retried
            events = sse(r.body)
            err = stream_error(events)
            assert err is not None and err["code"] == "stream_truncated", events
            assert "stalled" in err["message"] and events[-1] != "[DONE]"
            assert (rec.status, rec.error_class) == (502, "stream_truncated")
        else:
            assert (r.status, r.error["code"]) == (504, "timeout")
            assert rec.status == 504


def test_non_stream_timeout_is_bounded(gw: Gw) -> None:
    r = chat(gw.url, "hang [[sandbox:fault=timeout]]")
    assert (r.status, r.error["code"]) == (504, "timeout")
    # two attempts of 1 s each, plus a short back-off
    assert r.seconds < 3.0


def test_server_wide_fault_probability(gw: Gw, sb: str) -> None:
    """Half of deepseek's answers fail: through the fallback route every call succeeds."""
    set_fault(sb, vendor="deepseek", fault="server_error", probability=0.5)
    replies = [chat(gw.url, "hi", model="fb") for _ in range(20)]
    assert all(r.status == 200 for r in replies), [r.body for r in replies if r.status != 200]
    assert {r.headers["x-kanjia-vendor"] for r in replies} <= {"deepseek", "qwen"}
    assert all(rec.status == 200 for rec in gw.wait_records(20)) and len(gw.records) == 20


@pytest.mark.parametrize("stream", [False, True])
def test_no_backoff_after_the_last_attempt(gw: Gw, stream: bool) -> None:
    r = chat(gw.url, "hi [[sandbox:fault=rate_limit]]", stream=stream)
    assert r.status == 429
    assert r.seconds < 1.5, f"{r.seconds:.2f} s for one retry after a 1 s Retry-After"


@pytest.mark.parametrize("stream", [False, True])
def test_fallback_to_another_vendor_does_not_wait_for_retry_after(gw: Gw, sb: str,
                                                                  stream: bool) -> None:
    set_fault(sb, vendor="deepseek", fault="rate_limit", count=1)
    r = chat(gw.url, "hi", model="fb", stream=stream)
    assert r.status == 200 and r.headers["x-kanjia-vendor"] == "qwen"
    assert r.seconds < 0.5, f"{r.seconds:.2f} s: waited for deepseek's Retry-After"
