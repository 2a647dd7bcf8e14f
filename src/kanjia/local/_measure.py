"""How fast the local model generates on this machine, measured with real requests.

``measure()`` sends chat requests one after another for about ``seconds`` and takes
the speed from the server's own accounting: llama-server's ``timings``
(``predicted_n`` tokens in ``predicted_ms``, ``prompt_n`` in ``prompt_ms``). A server
without timings (another OpenAI-compatible one) is measured by ``usage`` over
wall-clock time, which also counts prompt processing and HTTP, so it reads lower.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from kanjia.errors import LocalServerError
from kanjia.local._server import ServerOptions, start_server

__all__ = ["LocalMeasurement", "Sample", "measure", "summarize"]

Source = Literal["server-timings", "wall-clock"]

_PROMPTS = (
    "Explain in a short paragraph why a small open-weights model can be cheaper than an API.",
    "Write a short story about a shopkeeper who bargains for a better price.",
    "List five practical tips for keeping a vegetable garden healthy in summer.",
    "Describe how a bicycle gear system works, step by step.",
    "What are the trade-offs between renting and buying a home? Answer in a few sentences.",
    "Summarise the water cycle for a ten-year-old.",
)
_SYSTEM = "You are a helpful assistant."


@dataclass(frozen=True, slots=True)
class Sample:
    """One completed request: the usage it reported and, when given, server timings."""

    completion_tokens: int
    prompt_tokens: int
    wall_s: float
    predicted_n: int | None = None
    predicted_ms: float | None = None
    prompt_n: int | None = None
    prompt_ms: float | None = None

    @classmethod
    def from_response(cls, body: Mapping[str, Any], wall_s: float) -> Sample:
        usage = body.get("usage") or {}
        timings = body.get("timings") or {}

        def num(key: str) -> float | None:
            value = timings.get(key)
            return float(value) if isinstance(value, int | float) else None

        predicted_n, prompt_n = num("predicted_n"), num("prompt_n")
        return cls(completion_tokens=int(usage.get("completion_tokens") or 0),
                   prompt_tokens=int(usage.get("prompt_tokens") or 0), wall_s=wall_s,
                   predicted_n=None if predicted_n is None else int(predicted_n),
                   predicted_ms=num("predicted_ms"),
                   prompt_n=None if prompt_n is None else int(prompt_n),
                   prompt_ms=num("prompt_ms"))

    @property
    def timed(self) -> bool:
        return bool(self.predicted_n and self.predicted_ms)


@dataclass(frozen=True, slots=True)
class LocalMeasurement:
    """Generation speed of the local model on this hardware."""

    #: the model id the server reports (the catalog id under ``vendor``)
    model: str
    #: generated tokens per second of generation time
    tokens_per_second: float
    #: prompt tokens processed per second (None without server timings)
    prompt_tokens_per_second: float | None
    requests: int
    completion_tokens: int
    prompt_tokens: int
    #: wall-clock seconds the measured requests took, end to end
    seconds: float
    source: Source
    base_url: str
    vendor: str = "llamacpp"

    @property
    def key(self) -> str:
        """``vendor/model``, the name the gateway routes."""
        return f"{self.vendor}/{self.model}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "key": self.key}


def summarize(samples: Sequence[Sample], *, model: str, base_url: str,
              vendor: str = "llamacpp") -> LocalMeasurement:
    """The measurement over ``samples``: token-weighted, not an average of rates."""
    if not samples:
        raise LocalServerError(f"no request to {base_url} completed; nothing measured")
    wall = sum(s.wall_s for s in samples)
    completion = sum(s.completion_tokens for s in samples)
    prompt_rate: float | None = None
    source: Source
    if all(s.timed for s in samples):
        source = "server-timings"
        gen_tokens = sum(s.predicted_n or 0 for s in samples)
        rate = gen_tokens / (sum(s.predicted_ms or 0.0 for s in samples) / 1000)
        prompt_ms = sum(s.prompt_ms or 0.0 for s in samples)
        if prompt_ms > 0:
            prompt_rate = sum(s.prompt_n or 0 for s in samples) / (prompt_ms / 1000)
    else:
        source = "wall-clock"
        rate = completion / wall if wall > 0 else 0.0
    if rate <= 0:
        raise LocalServerError(f"{base_url} generated no tokens; nothing measured")
    return LocalMeasurement(model=model, tokens_per_second=rate,
                            prompt_tokens_per_second=prompt_rate, requests=len(samples),
                            completion_tokens=completion,
                            prompt_tokens=sum(s.prompt_tokens for s in samples),
                            seconds=wall, source=source, base_url=base_url, vendor=vendor)


def _call(url: str, payload: Mapping[str, Any] | None, timeout: float) -> dict[str, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise LocalServerError(f"{url}: HTTP {exc.code}: {detail}") from None
    except (OSError, ValueError) as exc:
        raise LocalServerError(f"cannot reach {url}: {exc}") from None
    if not isinstance(body, dict):
        raise LocalServerError(f"{url}: the answer is not a JSON object")
    return body


def _served_model(base_url: str) -> str:
    listing = _call(f"{base_url}/models", None, 10.0).get("data") or []
    first = listing[0] if isinstance(listing, list) and listing else {}
    return str(first.get("id") or "default") if isinstance(first, dict) else "default"


def _sample(base_url: str, model: str, prompt: str, max_tokens: int) -> Sample:
    payload = {"model": model, "max_tokens": max_tokens, "temperature": 0.7,
               # llama.cpp: process the whole prompt each time, so prompt speed is real
               "cache_prompt": False,
               "messages": [{"role": "system", "content": _SYSTEM},
                            {"role": "user", "content": prompt}]}
    t0 = time.perf_counter()
    body = _call(f"{base_url}/chat/completions", payload, 300.0)
    return Sample.from_response(body, time.perf_counter() - t0)


def _measure_at(base_url: str, seconds: float, max_tokens: int,
                model: str | None) -> LocalMeasurement:
    base_url = base_url.rstrip("/")
    model = model or _served_model(base_url)
    _sample(base_url, model, "Say hello.", 8)  # warm-up, not counted
    samples: list[Sample] = []
    deadline = time.monotonic() + seconds
    while not samples or time.monotonic() < deadline:
        samples.append(_sample(base_url, model, _PROMPTS[len(samples) % len(_PROMPTS)],
                               max_tokens))
    return summarize(samples, model=model, base_url=base_url)


def measure(*, seconds: float = 20.0, base_url: str | None = None,
            options: ServerOptions | None = None, max_tokens: int = 128,
            ready_timeout: float = 120.0) -> LocalMeasurement:
    """Measure the local model's tokens/s with real chat requests for about ``seconds``.

    With ``base_url`` (an OpenAI-compatible ``.../v1``), measure the server there.
    Without, start llama-server on a free port (``options`` otherwise; the
    ``kanjia[local]`` extra's model and binary by default), measure it and stop it.
    """
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    if base_url is not None:
        return _measure_at(base_url, seconds, max_tokens, None)
    options = replace(options or ServerOptions(), port=0)
    with tempfile.TemporaryDirectory(prefix="kanjia-measure-") as tmp, \
            start_server(options, log=Path(tmp) / "server.log") as server:
        server.wait_ready(ready_timeout)
        return _measure_at(server.base_url, seconds, max_tokens, server.model)
