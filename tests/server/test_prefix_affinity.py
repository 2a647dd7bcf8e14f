"""Prefix affinity end to end: a conversation keeps to the deployment its prefix was sent
to, so the vendor sandbox (whose caches are per deployment: per API key) keeps hitting;
when that deployment fails, the request fails over and the conversation moves on."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest

from kanjia.config import load_settings
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app

ROUTE = {"models": ["deepseek/deepseek-chat"], "objective": "cheapest"}


def _gateway(sandbox: SandboxThread, cache_aware: bool) -> ServerThread:
    deployments = [{"name": "a", "base_url": f"{sandbox.url}/deepseek", "api_key_env": "DS_A"},
                   {"name": "b", "base_url": f"{sandbox.url}/deepseek", "api_key_env": "DS_B"}]
    settings = load_settings(None, vendors={"deepseek": {"deployments": deployments}},
                             routes={"agent": {**ROUTE, "cache_aware": cache_aware}})
    return ServerThread(build_app(settings, env={"DS_A": "key-a", "DS_B": "key-b"}))


@pytest.fixture(scope="module")
def aware(sandbox: SandboxThread) -> Iterator[ServerThread]:
    with _gateway(sandbox, True) as srv:
        yield srv


def _turns(url: str, n: int) -> list[dict[str, Any]]:
    system = f"conversation {uuid.uuid4().hex}: " + "Follow the house rules. " * 200
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    usages = []
    for i in range(n):
        messages.append({"role": "user", "content": f"step {i} [[sandbox:tokens=12]]"})
        req = urllib.request.Request(
            url + "/v1/chat/completions", method="POST",
            data=json.dumps({"model": "agent", "messages": messages}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=20) as resp:
            body = json.loads(resp.read())
        usages.append(body["usage"])
        answer = body["choices"][0]["message"]["content"]
        messages.append({"role": "assistant", "content": answer})
    return usages


def test_every_turn_after_the_first_hits_the_vendor_cache(aware: ServerThread) -> None:
    for _ in range(3):  # several conversations, each sticking to its deployment
        usages = _turns(aware.url, 8)
        assert usages[0]["prompt_cache_hit_tokens"] == 0
        hits = [u["prompt_cache_hit_tokens"] for u in usages[1:]]
        assert all(h > 0 for h in hits), hits
        # the previous turn's whole prompt is read from cache (in DeepSeek's 64-token units)
        for prev, now in pairwise(usages):
            assert now["prompt_cache_hit_tokens"] >= prev["prompt_tokens"] - 64


def test_without_cache_awareness_turns_scatter_and_miss(sandbox: SandboxThread) -> None:
    """The control: a plain route shuffles deployments, so some turns land where the
    conversation's latest prefix is not (probability of none in 21 turns: 2**-21)."""
    with _gateway(sandbox, False) as plain:
        short = 0
        for _ in range(3):
            usages = _turns(plain.url, 8)
            short += sum(now["prompt_cache_hit_tokens"] < prev["prompt_tokens"] - 64
                         for prev, now in pairwise(usages))
    assert short > 0


def test_the_holder_goes_first_and_the_rest_stay_for_failover(aware: ServerThread) -> None:
    gw = aware.app.services.gateway  # type: ignore[attr-defined]
    target = gw.planner.directory.resolve("deepseek/deepseek-chat")
    body: dict[str, Any] = {"messages": [{"role": "system", "content": "rules " * 400},
                                         {"role": "user", "content": "hi"}]}
    from kanjia.routing.planner import cache_slot
    from kanjia.routing.prefix import prefix_blocks

    prefix = prefix_blocks(body)
    for holder in target.deployments:
        slot = cache_slot(target, holder.id)
        gw.planner.prefixes.sent(slot, prefix, 300)
        gw.planner.prefixes.sent(slot, prefix_blocks(
            {"messages": [*body["messages"], {"role": "user", "content": holder.name}]}), 300)
        order = gw._order(target, None, prefix_blocks(
            {"messages": [*body["messages"], {"role": "user", "content": holder.name},
                          {"role": "user", "content": "next"}]}))
        # the holder goes first; the other deployment stays behind it for failover
        assert order[0].id == holder.id and len(order) == 2


def test_a_dead_holder_fails_over_to_the_other_deployment(sandbox: SandboxThread) -> None:
    """The deployment holding the prefix is down: the request still succeeds on the
    other one, and the conversation's next turn sticks there."""
    import socket

    from kanjia.routing.planner import cache_slot
    from kanjia.routing.prefix import prefix_blocks

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed once the block ends: connection refused
    deployments = [{"name": "a", "base_url": f"http://127.0.0.1:{dead}/deepseek",
                    "api_key_env": "DS_A"},
                   {"name": "b", "base_url": f"{sandbox.url}/deepseek", "api_key_env": "DS_B"}]
    settings = load_settings(None, vendors={"deepseek": {"deployments": deployments}},
                             routes={"agent": ROUTE})
    app = build_app(settings, env={"DS_A": "key-a", "DS_B": "key-b"})
    gw = app.services.gateway
    target = gw.planner.directory.resolve("deepseek/deepseek-chat")
    dead_dep = next(d for d in target.deployments if d.name == "a")
    messages = [{"role": "system", "content": f"{uuid.uuid4().hex} " + "rules " * 400},
                {"role": "user", "content": "first"}]
    gw.planner.prefixes.sent(cache_slot(target, dead_dep.id), prefix_blocks(
        {"messages": messages}), 300)
    second = [*messages, {"role": "assistant", "content": "ok"},
              {"role": "user", "content": "second"}]
    third = [*second, {"role": "assistant", "content": "ok"},
             {"role": "user", "content": "third"}]
    with ServerThread(app) as srv:
        attempts = [_attempts(srv.url, second), _attempts(srv.url, third)]
    # the holder first, refused, then the other deployment; the next turn is served in
    # one attempt (b now holds the longer prefix; a's breaker may also keep it out)
    assert attempts[0] == "deepseek/deepseek-chat@a,deepseek/deepseek-chat@b", attempts
    assert attempts[1] is None, attempts


def _attempts(url: str, messages: list[dict[str, Any]]) -> str | None:
    req = urllib.request.Request(
        url + "/v1/chat/completions", method="POST",
        data=json.dumps({"model": "agent", "messages": messages}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        assert resp.status == 200
        return resp.headers.get("x-kanjia-attempts")
