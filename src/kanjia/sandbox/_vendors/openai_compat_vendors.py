"""The OpenAI-compatible vendors the sandbox serves, read from ``openai_compat.toml``.

Every per-vendor quirk of the family is a row there (``[vendors.<key>]``, the keys of
kanjia's ``vendors.toml``), its error answers included; the handlers in
``openai_compat`` read the profile and never branch on a vendor id.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from kanjia.sandbox._cache import CachePolicy
from kanjia.sandbox._errors import ErrorReply
from kanjia.sandbox._vendors.openai_compat_errors import error_replies

__all__ = ["OA_VENDORS", "OpenAIVendor", "load_vendors"]

StreamUsage = Literal["include_usage", "last_chunk"]
CacheStyle = Literal["deepseek", "details"]


@dataclass(frozen=True, slots=True)
class OpenAIVendor:
    """How one OpenAI-compatible vendor differs from OpenAI itself.

    ``usage_details``: always send ``prompt_tokens_details`` and
    ``completion_tokens_details`` (OpenAI does, zeros included).
    ``stream_usage``: "include_usage" sends a final ``choices: []`` chunk with usage
    only when ``stream_options.include_usage`` is true; "last_chunk" always puts
    usage on the last content chunk. ``cache_style``: "deepseek" adds
    ``prompt_cache_hit_tokens``/``prompt_cache_miss_tokens`` and the details;
    "details" adds ``prompt_tokens_details.cached_tokens``. ``filter_finish``: the
    finish_reason a content-filter hit ends the reply with (HTTP 200), for vendors
    that filter that way rather than with an error (a ``content_filter`` error row then
    never applies). ``extra``: top-level fields every success body (and the last stream
    chunk) carries.
    """

    id: str
    models: tuple[str, ...]
    errors: Mapping[str, ErrorReply]
    needs_key: bool = True
    stream_usage: StreamUsage = "include_usage"
    supports_n: bool = False
    cache: CachePolicy | None = None
    cache_style: CacheStyle = "details"
    reasoning_models: tuple[str, ...] = ()
    system_fingerprint: str | None = None
    id_prefix: str = "chatcmpl-"
    filter_finish: str | None = None
    keepalive: bytes | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    embedding_dim: int = 1024
    usage_details: bool = False
    #: model-name prefixes the prompt cache serves (empty: every model)
    cache_models: tuple[str, ...] = ()
    #: a header taking the key besides ``Authorization: Bearer`` (Azure's ``api-key``)
    key_header: str | None = None
    #: serves OpenAI's files + batches endpoints (``/{id}/files``, ``/{id}/batches``)
    batches: bool = False

    def cache_for(self, model: str) -> CachePolicy | None:
        """The prompt-cache policy for ``model``, or None when it caches nothing."""
        if self.cache_models and not model.startswith(self.cache_models):
            return None
        return self.cache

    def is_reasoning(self, model: str) -> bool:
        return any(model.startswith(prefix) for prefix in self.reasoning_models)


def _vendor(key: str, row: Mapping[str, Any]) -> OpenAIVendor:
    """One ``[vendors.<key>]`` table as a profile; an unknown field fails here."""
    quirks = dict(row)
    for name, kind in (("stream_usage", StreamUsage), ("cache_style", CacheStyle)):
        if name in quirks and quirks[name] not in get_args(kind):
            raise ValueError(f"{key}: {name} = {quirks[name]!r} is not one of {get_args(kind)}")
    errors = error_replies(quirks.pop("error_shape", "openai"), quirks.pop("errors", {}))
    models = tuple(quirks.pop("models"))
    for name in ("reasoning_models", "cache_models"):
        if name in quirks:
            quirks[name] = tuple(quirks[name])
    if "cache" in quirks:
        quirks["cache"] = CachePolicy(**quirks["cache"])
    if "keepalive" in quirks:
        quirks["keepalive"] = quirks["keepalive"].encode()
    return OpenAIVendor(key, models, errors, **quirks)


def load_vendors(path: Path) -> dict[str, OpenAIVendor]:
    """Every vendor of an ``openai_compat.toml``, in the file's order."""
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    return {key: _vendor(key, row) for key, row in doc["vendors"].items()}


OA_VENDORS: Mapping[str, OpenAIVendor] = load_vendors(
    Path(__file__).with_name("openai_compat.toml"))
