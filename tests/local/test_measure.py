"""measure(): the arithmetic, against the vendor sandbox and against a fake llama-server."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from kanjia.errors import LocalServerError
from kanjia.local import LocalMeasurement, Sample, ServerOptions, measure, summarize
from kanjia.sandbox import SandboxSettings, SandboxThread


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxThread]:
    with SandboxThread(SandboxSettings(port=0, chunk_ms=0)) as sb:
        yield sb


def test_summarize_uses_server_timings_weighted_by_tokens() -> None:
    samples = [Sample(40, 20, 0.9, predicted_n=40, predicted_ms=400.0, prompt_n=20,
                      prompt_ms=50.0),
               Sample(60, 30, 1.1, predicted_n=60, predicted_ms=600.0, prompt_n=30,
                      prompt_ms=100.0)]
    m = summarize(samples, model="smollm2-135m", base_url="http://h/v1")
    assert m.source == "server-timings"
    assert m.tokens_per_second == pytest.approx(100.0)         # 100 tokens in 1.0 s
    assert m.prompt_tokens_per_second == pytest.approx(50 / 0.15)
    assert (m.requests, m.completion_tokens, m.prompt_tokens) == (2, 100, 50)
    assert m.seconds == pytest.approx(2.0)
    assert m.key == "llamacpp/smollm2-135m" and m.to_dict()["key"] == m.key


def test_summarize_falls_back_to_wall_clock() -> None:
    timed = Sample(50, 10, 0.5, predicted_n=50, predicted_ms=250.0)
    untimed = Sample(50, 10, 1.5)
    m = summarize([timed, untimed], model="m", base_url="http://h/v1")
    assert m.source == "wall-clock"
    assert m.tokens_per_second == pytest.approx(50.0)          # 100 tokens in 2.0 s
    assert m.prompt_tokens_per_second is None


def test_summarize_refuses_nothing() -> None:
    with pytest.raises(LocalServerError, match="nothing measured"):
        summarize([], model="m", base_url="http://h/v1")
    with pytest.raises(LocalServerError, match="no tokens"):
        summarize([Sample(0, 10, 1.0)], model="m", base_url="http://h/v1")


def test_sample_from_a_llama_server_body() -> None:
    body = {"usage": {"prompt_tokens": 31, "completion_tokens": 64, "total_tokens": 95},
            "timings": {"prompt_n": 31, "prompt_ms": 170.2, "predicted_n": 64,
                        "predicted_ms": 655.0, "predicted_per_second": 97.7}}
    s = Sample.from_response(body, 0.85)
    assert (s.completion_tokens, s.prompt_tokens, s.predicted_n, s.prompt_n) == (64, 31, 64, 31)
    assert s.predicted_ms == 655.0 and s.prompt_ms == 170.2 and s.timed
    assert not Sample.from_response({"usage": {"completion_tokens": 3}}, 0.1).timed


def test_measure_the_sandbox_by_usage_and_wall_clock(sandbox: SandboxThread) -> None:
    m = measure(seconds=0.3, base_url=sandbox.base_url("llamacpp"), max_tokens=16)
    assert isinstance(m, LocalMeasurement)
    assert m.model == "default"                 # what the sandbox's /models lists
    assert m.source == "wall-clock" and m.prompt_tokens_per_second is None
    assert m.requests >= 1 and 0 < m.completion_tokens <= 16 * m.requests
    assert m.prompt_tokens > 0
    assert m.tokens_per_second == pytest.approx(m.completion_tokens / m.seconds)


def test_measure_starts_and_stops_a_server(fake_options: ServerOptions) -> None:
    m = measure(seconds=0.3, options=fake_options, max_tokens=32)
    assert m.model == "smollm2-135m" and m.source == "server-timings"
    assert m.tokens_per_second == pytest.approx(100.0)   # the fake: 10 ms a token
    assert m.prompt_tokens_per_second == pytest.approx(400.0)
    assert m.completion_tokens == 32 * m.requests
    port = int(m.base_url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0     # stopped afterwards


def test_measure_errors(fake_options: ServerOptions) -> None:
    with pytest.raises(ValueError):
        measure(seconds=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(LocalServerError, match="cannot reach"):
        measure(seconds=0.1, base_url=dead)
    failing = ServerOptions(port=0, model_path=fake_options.model_path,
                            server_path=fake_options.server_path, extra_args=("--fail",))
    with pytest.raises(LocalServerError, match=r"exited with code 3 .*failed to load model"):
        measure(seconds=0.1, options=failing)
