"""The cascade objective through the gateway: a cheap model first, a stronger one only
when the judge finds the cheap answer unreliable; one answer, every call billed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import openai
import orjson
import pytest

from kanjia.config import load_settings
from kanjia.ledger.record import CallRecord
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app

WEAK, STRONG = "qwen/qwen-turbo", "openai/gpt-4o"


class _Run:
    """Escalates unless the prompt says "easy"; records what it was shown."""

    def __init__(self, prompt: str, seen: list[tuple[str, str | None]]) -> None:
        self.chain = ["weak", "strong"]
        self.easy = "easy" in prompt
        self.seen = seen
        self.done: str | None = None

    def next_model(self) -> str | None:
        return None if self.done else self.chain[len(self.seen)]

    def observe(self, model: str, response: str | None) -> None:
        self.seen.append((model, response))
        if model == "strong" or (self.easy and response):
            self.done = model

    def answer(self) -> str:
        assert self.done is not None
        return self.done


class _Quality:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def choose(self, prompt: str, candidates: Sequence[tuple[str, float]],
               quality_target: float, task: str | None = None) -> str:
        return candidates[0][0]

    def choose_weighted(self, prompt: str, candidates: Sequence[tuple[str, float]],
                        weight: float, task: str | None = None) -> str:
        return candidates[0][0]

    def start(self, prompt: str, task: str | None = None, weight: float = 0.9) -> _Run:
        self.seen = []
        return _Run(prompt, self.seen)


@pytest.fixture()
def cascade_gw(sandbox: SandboxThread) -> Iterator[tuple[ServerThread, list[CallRecord],
                                                          _Quality]]:
    route = {"models": [WEAK, STRONG], "objective": "cascade",
             "quality_models": {WEAK: "weak", STRONG: "strong"}}
    settings = load_settings(None, sandbox_url=sandbox.url, routes={"smart": route})
    app = build_app(settings, env={})
    quality = _Quality()
    app.services.planner.quality = quality
    records: list[CallRecord] = []
    app.services.gateway.sinks.append(records.append)
    with ServerThread(app) as srv:
        yield srv, records, quality


def _ask(url: str, text: str) -> Any:
    with openai.OpenAI(base_url=url + "/v1", api_key="t", max_retries=0) as client:
        return client.chat.completions.with_raw_response.create(
            model="smart", max_tokens=20, messages=[{"role": "user", "content": text}])


def test_easy_prompt_is_answered_by_the_cheap_model_alone(cascade_gw: Any) -> None:
    srv, records, quality = cascade_gw
    raw = _ask(srv.url, "an easy one")
    assert raw.headers["x-kanjia-model"] == "qwen-turbo"
    assert raw.headers["x-kanjia-cascade"] == WEAK
    assert raw.parse().choices[0].message.content
    assert [r.model for r in records] == ["qwen-turbo"]
    assert records[0].request_id == raw.headers["x-kanjia-request-id"]
    assert [m for m, _ in quality.seen] == ["weak"]


def test_hard_prompt_escalates_and_every_call_is_billed(cascade_gw: Any) -> None:
    srv, records, quality = cascade_gw
    raw = _ask(srv.url, "a hard one")
    rid = raw.headers["x-kanjia-request-id"]
    assert raw.headers["x-kanjia-model"] == "gpt-4o"
    assert raw.headers["x-kanjia-cascade"] == f"{WEAK},{STRONG}"
    assert [(r.request_id, r.model) for r in records] == [(rid, "qwen-turbo"),
                                                           (f"{rid}.2", "gpt-4o")]
    assert quality.seen[0][1]  # the judge saw the cheap model's real answer text
    amount, currency = raw.headers["x-kanjia-cost"].split()
    rates = {r.currency for r in records}
    if rates == {currency}:
        assert Decimal(amount) == sum((r.cost for r in records), Decimal(0))
    else:
        assert Decimal(amount) == sum((r.cost_reporting for r in records), Decimal(0))
    assert all(r.price_period not in (None, "unpriced") for r in records)
    assert all(r.status == 200 for r in records)
    usage = orjson.loads(raw.text)["usage"]  # usage.cost: the whole cascade's, as the header
    assert (Decimal(str(usage["cost"])), usage["cost_currency"]) == (Decimal(amount), currency)


def test_streamed_requests_on_a_cascade_route_take_the_first_model(cascade_gw: Any) -> None:
    srv, records, _ = cascade_gw
    with openai.OpenAI(base_url=srv.url + "/v1", api_key="t", max_retries=0) as client:
        chunks = list(client.chat.completions.create(
            model="smart", max_tokens=10, stream=True,
            messages=[{"role": "user", "content": "hard"}]))
    assert chunks
    assert [r.model for r in records] == ["qwen-turbo"]
