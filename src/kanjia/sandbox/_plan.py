"""What to answer, independent of any wire format.

Each vendor family parses its request into an ``Ask``; ``plan`` turns it into
``Choice``s (token pieces, tool call, finish reason, token counts) which the
family then renders in its own format.

Reply length: the ``tokens`` directive if given; else the requested maximum
(``max_tokens``, ``max_completion_tokens``, ``maxOutputTokens``), reported as
cut (finish "length"); else 16-64 tokens from a hash of the last user message.
A maximum smaller than the chosen length cuts the reply (finish "length").
Anthropic's mandatory ``max_tokens`` only caps (``max_is_cap``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kanjia.sandbox._directives import NO_DIRECTIVES, Directives
from kanjia.sandbox._filler import filler_pieces, json_pieces
from kanjia.sandbox._tokens import is_cjk, seed_of, text_tokens
from kanjia.sandbox._tools import ToolCall

__all__ = ["Ask", "Choice", "Finish", "plan"]

#: neutral finish reasons; each family maps them to its own words
Finish = str  # "stop" | "length" | "tool" | "filter" | "stop_sequence"

_TOOL_OVERHEAD = 8


@dataclass(frozen=True, slots=True)
class Ask:
    prompt_tokens: int
    last_user: str = ""
    directives: Directives = NO_DIRECTIVES
    max_tokens: int | None = None
    max_is_cap: bool = False
    n: int = 1
    json_mode: bool = False
    tool: ToolCall | None = None
    stop: tuple[str, ...] = ()
    reasoning: bool = False
    filtered: bool = False


@dataclass(frozen=True, slots=True)
class Choice:
    pieces: list[str]
    finish: Finish
    tokens: int
    reasoning: list[str] = field(default_factory=list)
    tool: ToolCall | None = None
    stop_sequence: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def reasoning_tokens(self) -> int:
        return len(self.reasoning)


def plan(ask: Ask) -> list[Choice]:
    seed = seed_of(ask.last_user)
    return [_choice(ask, seed + 997 * i) for i in range(max(1, ask.n))]


def _length(ask: Ask, seed: int) -> tuple[int, Finish]:
    if ask.directives.tokens is not None:
        n, finish = ask.directives.tokens, "stop"
    elif ask.max_tokens is not None and not ask.max_is_cap:
        n, finish = ask.max_tokens, "length"
    else:
        n, finish = 16 + seed % 49, "stop"
    if ask.max_tokens is not None and n > ask.max_tokens:
        n, finish = ask.max_tokens, "length"
    return max(0, n), finish


def _choice(ask: Ask, seed: int) -> Choice:
    reasoning = filler_pieces(32 + (seed >> 7) % 97, seed + 7919, False) if ask.reasoning else []
    if ask.tool is not None:
        tokens = text_tokens(ask.tool.args_json) + _TOOL_OVERHEAD + len(reasoning)
        return Choice([], "tool", tokens, reasoning, ask.tool)
    n, finish = _length(ask, seed)
    cjk = is_cjk(ask.last_user)
    if ask.filtered:
        n, finish = n // 2, "filter"
    pieces = json_pieces(n, seed, cjk) if ask.json_mode else filler_pieces(n, seed, cjk)
    stop_sequence = None
    if ask.stop and not ask.json_mode and finish != "filter":
        pieces, stop_sequence = _apply_stop(pieces, ask.stop)
        if stop_sequence is not None:
            finish = "stop_sequence"
    return Choice(pieces, finish, len(pieces) + len(reasoning), reasoning, None, stop_sequence)


def _apply_stop(pieces: list[str], stops: tuple[str, ...]) -> tuple[list[str], str | None]:
    """Cut ``pieces`` before the earliest stop sequence, as vendors do."""
    text = "".join(pieces)
    hits = [(i, s) for s in stops if s and (i := text.find(s)) >= 0]
    if not hits:
        return pieces, None
    cut, stop = min(hits)
    kept: list[str] = []
    used = 0
    for piece in pieces:
        if used + len(piece) > cut:
            if cut > used:
                kept.append(piece[: cut - used])
            break
        kept.append(piece)
        used += len(piece)
    return kept, stop
