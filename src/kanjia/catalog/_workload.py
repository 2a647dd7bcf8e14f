"""Read a workload file (JSONL, one request per line) for `kanjia quote --workload`.

Each line is a JSON object with either token counts or text:

    {"input_tokens": 1200, "cached_tokens": 300, "output_tokens": 250}
    {"messages": [{"role": "user", "content": "..."}], "output_tokens": 200}
    {"prompt": "...", "output": "...", "count": 10}

``prompt_tokens``/``completion_tokens`` are accepted as synonyms; ``count`` repeats a
line. Text is counted with each model's own offline tokenizer (``kanjia.tokens``), so
the workload's token counts differ by tokenizer family.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kanjia.catalog._model import ModelEntry
from kanjia.catalog._quote import Workload
from kanjia.errors import ConfigError
from kanjia.tokens import TokenCounter

__all__ = ["WorkloadFile", "read_workload"]


@dataclass(frozen=True, slots=True)
class _Line:
    input_tokens: int | None
    cached_tokens: int | None
    cache_write_tokens: int
    output_tokens: int | None
    messages: Sequence[Mapping[str, Any]] | None
    prompt: str | None
    output: str | None
    count: int


class WorkloadFile:
    """The parsed lines; ``for_model`` gives the token counts under a model's tokenizer."""

    def __init__(self, lines: Sequence[_Line], counter: TokenCounter, default_output: int,
                 cached_share: float) -> None:
        self.lines = tuple(lines)
        self._counter = counter
        self._default_output = default_output
        self._share = cached_share
        self._by_family: dict[str, Workload] = {}

    @property
    def needs_tokenizer(self) -> bool:
        return any(ln.input_tokens is None or (ln.output_tokens is None and ln.output)
                   for ln in self.lines)

    def for_model(self, model: ModelEntry) -> Workload:
        family = self._counter.family(model.vendor, model.model).name \
            if self.needs_tokenizer else "-"
        work = self._by_family.get(family)
        if work is None:
            work = Workload.from_rows(self._row(ln, model) for ln in self.lines)
            self._by_family[family] = work
        return work

    def _row(self, ln: _Line, model: ModelEntry) -> tuple[int, int, int, int, int]:
        count = self._counter
        if ln.input_tokens is not None:
            prompt = ln.input_tokens
        elif ln.messages is not None:
            prompt = count.count_prompt_tokens(model.vendor, model.model, ln.messages)
        else:
            prompt = count.count_text_tokens(model.vendor, model.model, ln.prompt or "")
        if ln.output_tokens is not None:
            out = ln.output_tokens
        elif ln.output:
            out = count.count_text_tokens(model.vendor, model.model, ln.output)
        else:
            out = self._default_output
        cached = ln.cached_tokens if ln.cached_tokens is not None else int(prompt * self._share)
        return prompt, min(cached, prompt), ln.cache_write_tokens, out, ln.count


def _int(obj: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        if name in obj:
            value = obj[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
            return value
    return None


def _parse(obj: Any) -> _Line:
    if not isinstance(obj, dict):
        raise ValueError("each line must be a JSON object")
    messages = obj.get("messages")
    if messages is not None and not (isinstance(messages, list)
                                     and all(isinstance(m, dict) for m in messages)):
        raise ValueError("messages must be a list of objects")
    prompt, output = obj.get("prompt"), obj.get("output")
    if (prompt is not None and not isinstance(prompt, str)) or \
            (output is not None and not isinstance(output, str)):
        raise ValueError("prompt and output must be strings")
    inp = _int(obj, "input_tokens", "prompt_tokens")
    if inp is None and messages is None and prompt is None:
        raise ValueError("needs input_tokens, messages or prompt")
    count = _int(obj, "count")
    return _Line(inp, _int(obj, "cached_tokens"), _int(obj, "cache_write_tokens") or 0,
                 _int(obj, "output_tokens", "completion_tokens"), messages, prompt, output,
                 1 if count is None else count)


def read_workload(path: Path, counter: TokenCounter, default_output: int = 0,
                  cached_share: float = 0.0) -> WorkloadFile:
    """Parse ``path``; a bad line raises ``ConfigError`` naming the file and line."""
    lines: list[_Line] = []
    try:
        with Path(path).open(encoding="utf-8") as f:
            for no, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    lines.append(_parse(json.loads(text)))
                except (json.JSONDecodeError, ValueError) as exc:
                    raise ConfigError(f"{path}:{no}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc.reason}") from None
    if not lines:
        raise ConfigError(f"{path}: no requests in the file")
    return WorkloadFile(lines, counter, default_output, cached_share)
