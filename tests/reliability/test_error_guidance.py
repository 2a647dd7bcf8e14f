"""Errors that say what to do (issue 20): the vendor refusing the gateway's own key is a
502 naming the vendor, "every circuit is open" names each deployment's reason and when to
retry, and every reply (errors included) carries ``x-kanjia-request-id``, the same id as
the ledger record when one is written."""

from __future__ import annotations

from ._util import Gw, chat, request


def test_vendor_refusing_gateway_key_is_a_502_naming_the_vendor(gw: Gw) -> None:
    r = chat(gw.url, "hi [[sandbox:fault=auth]]")
    assert r.status == 502, r.body
    err = r.error
    assert (err["code"], err["type"]) == ("upstream_auth_failed", "upstream_error")
    assert "deepseek refused the gateway's credentials" in err["message"]
    assert "your API key is fine" in err["message"]
    assert "sandbox-key" not in r.body.decode()
    rec = gw.records[0]
    assert rec.status == 502 and rec.error_class == "upstream_auth_failed"
    # exhausted attempts are recorded under the model they tried, not (none)
    assert (rec.vendor, rec.model) == ("deepseek", "deepseek-chat")
    assert r.headers["x-kanjia-request-id"] == rec.request_id


def test_vendor_auth_on_the_messages_api_is_a_502_api_error(gw: Gw) -> None:
    r = request(gw.url, "POST", "/v1/messages", {
        "model": "deepseek/deepseek-chat", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi [[sandbox:fault=auth]]"}]})
    assert r.status == 502, r.body
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "api_error"
    assert "gateway's credentials" in body["error"]["message"]
    assert r.headers["x-kanjia-request-id"] == gw.records[0].request_id


def test_every_circuit_open_says_why_and_when(gw: Gw) -> None:
    assert chat(gw.url, "hi [[sandbox:fault=auth]]").status == 502  # takes deepseek out
    r = chat(gw.url, "hi again")
    assert r.status == 503, r.body
    err = r.error
    assert err["code"] == "no_deployment_available"
    msg = err["message"]
    assert "every circuit is open" in msg
    assert "deepseek/deepseek-chat@" in msg and "taken out by upstream_auth_failed" in msg
    assert "next probe in" in msg and "retry after" in msg
    assert msg.count("deepseek/deepseek-chat@") == 1  # each deployment once
    # Retry-After: the soonest probe (disabled deployments are probed after 300 s)
    wait = int(r.headers["retry-after"])
    assert 290 <= wait <= 300
    assert f"retry after {wait} s" in msg
    rec = gw.records[-1]
    assert (rec.vendor, rec.model, rec.status) == ("deepseek", "deepseek-chat", 503)
    assert r.headers["x-kanjia-request-id"] == rec.request_id


def test_open_circuit_reason_is_the_error_class_that_opened_it(gw: Gw) -> None:
    breaker = gw.app.services.health.get(
        next(d.id for t in gw.app.services.planner.directory.targets
             if t.key == "deepseek/deepseek-chat" for d in t.deployments))
    from kanjia.errors import Overloaded
    for _ in range(breaker.policy.failures):
        breaker.failure(Overloaded("busy"))
    r = chat(gw.url, "hi")
    assert r.status == 503
    assert "opened by repeated overloaded" in r.error["message"]
    assert 1 <= int(r.headers["retry-after"]) <= int(breaker.policy.cooldown_s)


def test_errors_before_a_request_id_get_one(gw: Gw) -> None:
    ids = set()
    bad_json = request(gw.url, "POST", "/v1/chat/completions", b"{not json")
    unknown = request(gw.url, "GET", "/v1/nope")
    models = request(gw.url, "GET", "/v1/models")
    for r in (bad_json, unknown, models):
        rid = r.headers.get("x-kanjia-request-id", "")
        assert rid.startswith("req-") and len(rid) == 28, r.headers
        ids.add(rid)
    assert len(ids) == 3
    assert bad_json.status == 400
    assert (unknown.status, unknown.error["code"]) == (404, "unknown_endpoint")
    assert "GET /v1/nope" in unknown.error["message"]
    assert not gw.records  # nothing was billed


def test_success_keeps_the_ledger_id(gw: Gw) -> None:
    r = chat(gw.url, "hi")
    assert r.status == 200
    assert r.headers["x-kanjia-request-id"] == gw.records[0].request_id


def test_route_error_merges_planner_and_admission_reasons(sb: str) -> None:
    from ._util import gateway
    routes = {"mix": {"models": ["openai/gpt-4o", "moonshot/moonshot-v1-8k"],
                      "objective": "ordered"}}
    with gateway(sb, routes=routes) as g:
        r = chat(g.url, "hi", model="mix", max_tokens=20_000)
    assert r.status == 400, r.body
    msg = r.error["message"]
    assert msg.startswith("route 'mix': no candidate can serve this request as asked (")
    # the output limit (a parameter away) comes before the window too small
    assert msg.index("output limit of 16384") < msg.index("moonshot/moonshot-v1-8k: context")
    assert r.headers["x-kanjia-request-id"].startswith("req-")


def test_ui_without_a_ledger_says_how_to_turn_it_on(gw: Gw) -> None:
    for path in ("/ui", "/ui/data", "/admin/keys"):
        r = request(gw.url, "GET", path)
        assert (r.status, r.error["code"]) == (404, "unknown_endpoint"), r.body
        msg = r.error["message"]
        assert "needs a ledger" in msg and "--db FILE" in msg
        assert "$KANJIA_MASTER_KEY" in msg
        assert r.headers["x-kanjia-request-id"].startswith("req-")
