"""The vendor sandbox: a local simulator of every vendor's real wire format.

One aiohttp server serves each vendor under ``/{vendor}`` (OpenAI-compatible
vendors, ``/anthropic`` and ``/gemini``), with realistic deterministic token
counts, tool calls, streaming, per-vendor usage quirks and error bodies, and
faults injected per request (``[[sandbox:fault=NAME]]`` in the last user
message) or server-wide (``POST /_sandbox/faults``). What it served is exported per
vendor in the shape of OpenAI's organization usage and costs APIs
(``GET /{vendor}/organization/usage/completions``, ``/costs``; see ``_usage_routes``).

    async with run_sandbox(SandboxSettings()) as sb:
        base_url = sb.base_url("deepseek")       # http://127.0.0.1:PORT/deepseek

    with SandboxThread() as sb:                  # for synchronous code
        ...
"""

from __future__ import annotations

from kanjia.sandbox._app import VENDORS, build_app
from kanjia.sandbox._faults import FAULTS
from kanjia.sandbox._runner import Sandbox, SandboxThread, run_sandbox, serve
from kanjia.sandbox._settings import SandboxSettings

__all__ = [
    "FAULTS",
    "VENDORS",
    "Sandbox",
    "SandboxSettings",
    "SandboxThread",
    "build_app",
    "run_sandbox",
    "serve",
]
