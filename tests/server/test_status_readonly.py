"""``GET /status`` reads breakers without side effects: looking at an open breaker past
its cooldown must not move it to half-open and take its single probe slot (which kept
the deployment out of rotation until the probe, never sent, timed out)."""

from __future__ import annotations

from tests.reliability._util import request

from kanjia.config import load_settings
from kanjia.errors import Overloaded
from kanjia.sandbox import SandboxThread
from kanjia.server import ServerThread, build_app


def test_status_does_not_take_the_probe_slot(sandbox: SandboxThread) -> None:
    app = build_app(load_settings(None, sandbox_url=sandbox.url), env={})
    health = app.services.health
    dep = app.services.directory.deployments["deepseek"][0].id
    breaker = health.get(dep)
    for _ in range(health.policy.failures):
        breaker.failure(Overloaded("down"))
    assert breaker.state == "open"
    breaker.opened_at -= health.policy.cooldown_s + 1  # the cooldown is over
    untouched = app.services.directory.deployments["qwen"][0].id
    with ServerThread(app) as srv:
        for _ in range(3):
            r = request(srv.url, "GET", "/status")
            assert r.status == 200
            row = next(d for d in r.json()["deployments"] if d["deployment"] == dep)
            assert row["state"] == "half_open" and row["reason"] == "overloaded"
    assert breaker.state == "open" and not breaker.probing  # nothing moved
    assert untouched not in health.states()                 # nothing created
    assert breaker.available()       # the probe slot is still there for a real request
    assert not breaker.available()   # and there is exactly one
