"""Deterministic prompt-cache simulation.

A prompt is a sequence of segments (messages, system blocks). The cache keeps a
chained hash for every segment boundary it has seen in this server's lifetime,
per vendor; a later prompt whose first k segments match a seen boundary gets the
tokens up to that boundary as cached, rounded down to the vendor's cache unit
and dropped below its minimum (DeepSeek: 64-token units; OpenAI: 128-token
units from 1024 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CachePolicy", "PromptCache", "Segments"]

_MAX_ENTRIES = 200_000


@dataclass(frozen=True, slots=True)
class CachePolicy:
    unit: int = 1
    minimum: int = 1024


class Segments:
    """Chained hashes and cumulative token counts at each segment boundary."""

    __slots__ = ("_hash", "bounds", "tokens")

    def __init__(self) -> None:
        self._hash = 0
        self.bounds: list[tuple[int, int]] = []
        self.tokens = 0

    def add(self, text: str, tokens: int) -> None:
        self._hash = hash((self._hash, text))
        self.tokens += tokens
        self.bounds.append((self._hash, self.tokens))


class PromptCache:
    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], None] = {}

    def lookup(self, vendor: str, segments: Segments, policy: CachePolicy) -> int:
        """Cached tokens for this prompt; then remembers all its boundaries."""
        seen = self._seen
        cached = 0
        for chain, tokens in reversed(segments.bounds):
            if (vendor, chain) in seen:
                cached = tokens
                break
        if len(seen) > _MAX_ENTRIES:
            seen.clear()
        for chain, _ in segments.bounds:
            seen[(vendor, chain)] = None
        cached = cached // policy.unit * policy.unit
        return cached if cached >= policy.minimum else 0

    def seen(self, vendor: str, chain: int) -> bool:
        return (vendor, chain) in self._seen

    def remember(self, vendor: str, chain: int) -> None:
        if len(self._seen) > _MAX_ENTRIES:
            self._seen.clear()
        self._seen[(vendor, chain)] = None

    def reset(self) -> None:
        self._seen.clear()
