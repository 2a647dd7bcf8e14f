"""The sandbox's vendor batch APIs on their own (no kanjia code): OpenAI-style files +
batches through the official ``openai`` SDK, and Anthropic Message Batches over HTTP,
with the configured completion delay and partial failures."""

from __future__ import annotations

import io
import json
import time
import urllib.request
from typing import Any

import openai

from kanjia.sandbox import SandboxThread


def _post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None
          ) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def _get(url: str, headers: dict[str, str]) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                timeout=10) as resp:
        data: bytes = resp.read()
        return data


def test_openai_style_batch_with_delay_and_failures(sandbox: SandboxThread) -> None:
    _post(f"{sandbox.url}/_sandbox/batches", {"delay_s": 0.4, "fail": ["sim-fail"]})
    client = openai.OpenAI(base_url=f"{sandbox.url}/qwen", api_key="k", max_retries=0)
    lines = [{"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": text}]}}
             for cid, text in (("ok", "hi [[sandbox:tokens=4]]"), ("sim-fail", "x"),
                               ("fault", "y [[sandbox:fault=server_error]]"))]
    buf = io.BytesIO("".join(json.dumps(x) + "\n" for x in lines).encode())
    buf.name = "in.jsonl"
    f = client.files.create(file=buf, purpose="batch")
    t0 = time.monotonic()
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    assert client.batches.retrieve(batch.id).status == "in_progress"  # before the delay
    while (done := client.batches.retrieve(batch.id)).status != "completed":
        assert time.monotonic() - t0 < 10
        time.sleep(0.05)
    assert time.monotonic() - t0 >= 0.4
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 2)
    assert done.output_file_id and done.error_file_id
    out = json.loads(client.files.content(done.output_file_id).text)
    assert out["custom_id"] == "ok" and out["response"]["body"]["usage"]["completion_tokens"] == 4
    errs = {json.loads(x)["custom_id"]: json.loads(x) for x in
            client.files.content(done.error_file_id).text.splitlines()}
    assert set(errs) == {"sim-fail", "fault"}
    assert all(e["response"]["status_code"] >= 500 for e in errs.values())
    _post(f"{sandbox.url}/_sandbox/batches", {"delay_s": 0.3, "fail": []})


def test_anthropic_message_batches(sandbox: SandboxThread) -> None:
    _post(f"{sandbox.url}/_sandbox/batches", {"delay_s": 0.1, "fail": []})
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    base = f"{sandbox.url}/anthropic/v1/messages/batches"
    params = {"model": "claude-3-5-haiku-20241022", "max_tokens": 50}
    status, made = _post(base, {"requests": [
        {"custom_id": "a", "params": {**params, "messages": [
            {"role": "user", "content": "hi [[sandbox:tokens=3]]"}]}},
        {"custom_id": "b", "params": {**params, "messages": [
            {"role": "user", "content": "x [[sandbox:fault=server_error]]"}]}}]}, headers)
    assert status == 200 and made["type"] == "message_batch"
    assert made["processing_status"] == "in_progress" and made["results_url"] is None
    t0 = time.monotonic()
    while (got := json.loads(_get(f"{base}/{made['id']}", headers)))[
            "processing_status"] != "ended":
        assert time.monotonic() - t0 < 10
        time.sleep(0.05)
    assert got["request_counts"]["succeeded"] == 1 and got["request_counts"]["errored"] == 1
    results = {json.loads(x)["custom_id"]: json.loads(x)["result"]
               for x in _get(got["results_url"], headers).splitlines()}
    assert results["a"]["type"] == "succeeded"
    assert results["a"]["message"]["usage"]["output_tokens"] == 3
    assert results["b"]["type"] == "errored"
    _post(f"{sandbox.url}/_sandbox/batches", {"delay_s": 0.3})


def test_anthropic_sdk_against_the_sandbox(sandbox: SandboxThread) -> None:
    import anthropic

    _post(f"{sandbox.url}/_sandbox/batches", {"delay_s": 0.1, "fail": ["bad"]})
    client = anthropic.Anthropic(base_url=f"{sandbox.url}/anthropic", api_key="k",
                                 max_retries=0)
    params = {"model": "claude-3-5-haiku-20241022", "max_tokens": 50,
              "messages": [{"role": "user", "content": "hi [[sandbox:tokens=6]]"}]}
    batch = client.messages.batches.create(requests=[
        {"custom_id": "good", "params": params},  # type: ignore[list-item]
        {"custom_id": "bad", "params": params}])  # type: ignore[list-item]
    assert batch.processing_status == "in_progress"
    t0 = time.monotonic()
    while (got := client.messages.batches.retrieve(batch.id)).processing_status != "ended":
        assert time.monotonic() - t0 < 10
        time.sleep(0.05)
    assert got.request_counts.succeeded == 1 and got.request_counts.errored == 1
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    good = results["good"]
    assert good.type == "succeeded" and good.message.usage.output_tokens == 6
    assert results["bad"].type == "errored"
    _post(f"{sandbox.url}/_sandbox/batches", {"delay_s": 0.3, "fail": []})
