"""Server-wide settings of the vendor sandbox."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SandboxSettings"]


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """How one sandbox server behaves unless a request's directives say otherwise.

    ``port`` 0 picks a free port. ``ttft_ms`` is the wait before the first token,
    ``chunk_ms`` the wait between stream chunks (both 0 by default so benchmarks
    measure the gateway, not the sandbox). ``seed`` drives the probabilistic
    fault rules; ``hang_s`` is how long the ``timeout`` fault hangs;
    ``retry_after_s`` is the ``Retry-After`` header sent with 429s.
    """

    host: str = "127.0.0.1"
    port: int = 0
    ttft_ms: int = 0
    chunk_ms: int = 0
    seed: int = 0
    hang_s: float = 30.0
    retry_after_s: int = 1
