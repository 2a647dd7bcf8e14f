"""The control API: server-wide fault rules, stats and reset."""

from __future__ import annotations

from sandbox_helpers import Client, user


async def statuses(client: Client, vendor: str, n: int, model: str = "m") -> list[int]:
    return [(await client.chat(vendor, {**user("hi"), "model": model})).status for _ in range(n)]


async def test_counted_rule(client: Client) -> None:
    status, body = await client.control(
        "POST", "/_sandbox/faults", {"vendor": "deepseek", "fault": "balance", "count": 2}
    )
    assert status == 200 and body["rule"]["count"] == 2
    assert await statuses(client, "deepseek", 3) == [402, 402, 200]
    assert await statuses(client, "qwen", 1) == [200]
    assert (await client.control("GET", "/_sandbox/faults"))[1] == {"rules": []}


async def test_wildcard_vendor_and_model_filter(client: Client) -> None:
    await client.control(
        "POST", "/_sandbox/faults", {"vendor": "*", "model": "slow-model", "fault": "overloaded"}
    )
    assert await statuses(client, "openai", 1, "slow-model") == [503]
    assert await statuses(client, "zhipu", 1, "slow-model") == [429]
    assert await statuses(client, "openai", 1, "other") == [200]
    anthropic = await client.messages({**user("hi"), "model": "slow-model"})
    assert anthropic.status == 529
    _, body = await client.control("DELETE", "/_sandbox/faults")
    assert body == {"cleared": 1}
    assert await statuses(client, "openai", 1, "slow-model") == [200]


async def test_probability_rules(client: Client) -> None:
    await client.control(
        "POST",
        "/_sandbox/faults",
        {"vendor": "openai", "fault": "server_error", "probability": 1.0},
    )
    assert await statuses(client, "openai", 3) == [500, 500, 500]
    await client.control("DELETE", "/_sandbox/faults")
    await client.control(
        "POST",
        "/_sandbox/faults",
        {"vendor": "openai", "fault": "server_error", "probability": 0.5},
    )
    results = await statuses(client, "openai", 40)
    assert 5 < results.count(500) < 35


async def test_directive_beats_rule(client: Client) -> None:
    await client.control("POST", "/_sandbox/faults", {"vendor": "openai", "fault": "server_error"})
    reply = await client.chat("openai", user("x [[sandbox:fault=rate_limit]]"))
    assert reply.status == 429


async def test_invalid_rules(client: Client) -> None:
    bad = [
        {"vendor": "deepseek", "fault": "explode"},
        {"vendor": "nobody", "fault": "auth"},
        {"vendor": "deepseek", "fault": "auth", "count": -1},
        {"vendor": "deepseek", "fault": "auth", "probability": 1.5},
        ["not", "an", "object"],
    ]
    for rule in bad:
        status, body = await client.control("POST", "/_sandbox/faults", rule)
        assert status == 400 and body["error"]


async def test_stats_and_reset(client: Client) -> None:
    await client.chat("deepseek", {**user("hi"), "model": "deepseek-chat"})
    await client.chat(
        "deepseek", {**user("x [[sandbox:fault=rate_limit]]"), "model": "deepseek-chat"}
    )
    await client.messages(user("hi"))
    _, stats = await client.control("GET", "/_sandbox/stats")
    assert stats["total"] == 3
    assert stats["requests"]["deepseek"] == {"deepseek-chat": 2}
    assert stats["vendors"] == {"deepseek": 2, "anthropic": 1}
    assert stats["faults"] == {"deepseek": {"rate_limit": 1}}
    assert stats["faults_total"] == {"rate_limit": 1}
    await client.control("POST", "/_sandbox/faults", {"vendor": "*", "fault": "auth"})
    assert (await client.control("POST", "/_sandbox/reset"))[1] == {"ok": True}
    assert (await client.control("GET", "/_sandbox/stats"))[1]["total"] == 0
    assert await statuses(client, "openai", 1) == [200]


async def test_vendor_listing(client: Client) -> None:
    _, body = await client.control("GET", "/_sandbox/vendors")
    ids = [v["id"] for v in body["vendors"]]
    assert "deepseek" in ids and "anthropic" in ids and "gemini" in ids
