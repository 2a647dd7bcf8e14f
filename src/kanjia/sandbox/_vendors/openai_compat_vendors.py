"""The OpenAI-compatible vendors the sandbox serves, as one data table.

Every per-vendor quirk of the family lives here; the handlers in ``openai_compat`` read
the profile and never branch on a vendor id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kanjia.sandbox._cache import CachePolicy
from kanjia.sandbox._errors import ErrorReply
from kanjia.sandbox._vendors.openai_compat_errors import OA_ERRORS
from kanjia.sandbox._vendors.openai_compat_market_errors import MARKET_ERRORS

__all__ = ["OA_VENDORS", "OpenAIVendor"]

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
    that filter that way rather than with an error. ``extra``: top-level fields
    every success body (and the last stream chunk) carries.
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

    def cache_for(self, model: str) -> CachePolicy | None:
        """The prompt-cache policy for ``model``, or None when it caches nothing."""
        if self.cache_models and not model.startswith(self.cache_models):
            return None
        return self.cache

    def is_reasoning(self, model: str) -> bool:
        return any(model.startswith(prefix) for prefix in self.reasoning_models)


def _vendor(id_: str, models: tuple[str, ...], **quirks: Any) -> OpenAIVendor:
    errors = OA_ERRORS[id_] if id_ in OA_ERRORS else MARKET_ERRORS[id_]
    return OpenAIVendor(id_, models, errors, **quirks)


_SELF_HOSTED: dict[str, Any] = {"needs_key": False, "filter_finish": "content_filter"}
#: the global market's vendors filter by finishing early, as OpenAI's moderation does
_FILTERS: dict[str, Any] = {"filter_finish": "content_filter"}

OA_VENDORS: Mapping[str, OpenAIVendor] = {
    v.id: v
    for v in (
        _vendor(
            "deepseek",
            ("deepseek-chat", "deepseek-reasoner"),
            cache=CachePolicy(unit=64, minimum=64, ttl_s=3600),
            cache_style="deepseek",
            reasoning_models=("deepseek-reasoner",),
            system_fingerprint="fp_sandbox_deepseek",
            keepalive=b": keep-alive\n\n",
        ),
        _vendor(
            "qwen",
            ("qwen-max", "qwen-plus", "qwen-turbo", "qwq-plus"),
            supports_n=True,
            cache=CachePolicy(unit=1, minimum=256),
            reasoning_models=("qwq",),
        ),
        _vendor(
            "zhipu",
            ("glm-4-plus", "glm-4-air", "glm-4-flash"),
            stream_usage="last_chunk",
            cache=CachePolicy(unit=1, minimum=256),
            id_prefix="",
        ),
        _vendor(
            "moonshot",
            ("moonshot-v1-8k", "moonshot-v1-32k", "kimi-k2-0711-preview"),
            supports_n=True,
            # automatic caching is Kimi's (K2 on); moonshot-v1 caches only through its
            # separate Context Caching API, billed per call
            cache=CachePolicy(unit=1, minimum=256),
            cache_models=("kimi",),
        ),
        _vendor(
            "minimax",
            ("MiniMax-Text-01", "abab6.5s-chat"),
            stream_usage="last_chunk",
            id_prefix="",
            extra={
                "input_sensitive": False,
                "output_sensitive": False,
                "base_resp": {"status_code": 0, "status_msg": ""},
            },
        ),
        _vendor(
            "doubao",
            ("doubao-pro-32k", "doubao-lite-32k", "doubao-1.5-pro-32k"),
            cache=CachePolicy(unit=1, minimum=1024),
            id_prefix="",
        ),
        _vendor(
            "qianfan",
            ("ernie-4.0-8k", "ernie-speed-8k", "ernie-lite-8k"),
            stream_usage="last_chunk",
            id_prefix="as-",
            filter_finish="content_filter",
        ),
        _vendor(
            "hunyuan",
            ("hunyuan-turbo", "hunyuan-pro", "hunyuan-lite"),
            filter_finish="sensitive",
            id_prefix="",
        ),
        _vendor(
            "spark",
            ("generalv3.5", "4.0Ultra", "lite"),
            stream_usage="last_chunk",
            id_prefix="cha000b",
        ),
        _vendor(
            "siliconflow",
            ("Qwen/Qwen2.5-7B-Instruct", "deepseek-ai/DeepSeek-V3"),
            supports_n=True,
            filter_finish="content_filter",
        ),
        _vendor(
            "openai",
            ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "text-embedding-3-small"),
            supports_n=True,
            cache=CachePolicy(unit=128, minimum=1024),
            system_fingerprint="fp_sandbox_openai",
            embedding_dim=1536,
            usage_details=True,
        ),
        _vendor(
            "openrouter",
            ("openai/gpt-4o-mini", "deepseek/deepseek-chat", "anthropic/claude-3.5-haiku"),
            id_prefix="gen-",
        ),
        _vendor("vllm", ("Qwen/Qwen2.5-7B-Instruct",), supports_n=True, **_SELF_HOSTED),
        _vendor("ollama", ("llama3.2", "qwen2.5:7b"), **_SELF_HOSTED),
        _vendor(
            "llamacpp",
            ("default",),
            stream_usage="last_chunk",
            **_SELF_HOSTED,
        ),
        # -- the global market's OpenAI-compatible vendors ----------------------------------
        _vendor(
            "mistral",
            ("mistral-small-latest", "mistral-large-latest", "codestral", "magistral-small"),
            supports_n=True,
            stream_usage="last_chunk",
            id_prefix="",
            reasoning_models=("magistral",),
            **_FILTERS,
        ),
        _vendor(
            "xai",
            ("grok-3-mini", "grok-3", "grok-4-0709", "grok-code-fast-1"),
            supports_n=True,
            cache=CachePolicy(unit=1, minimum=1024),
            reasoning_models=("grok-3-mini", "grok-4"),
            system_fingerprint="fp_sandbox_xai",
            id_prefix="",
            **_FILTERS,
        ),
        _vendor(
            "groq",
            ("llama-3.1-8b-instant", "llama-3.3-70b-versatile", "openai/gpt-oss-120b"),
            cache=CachePolicy(unit=1, minimum=1024),
            cache_models=("moonshotai/", "openai/gpt-oss"),
            system_fingerprint="fp_sandbox_groq",
            **_FILTERS,
        ),
        _vendor(
            "together",
            ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "deepseek-ai/DeepSeek-V3",
             "Qwen/Qwen2.5-72B-Instruct-Turbo"),
            supports_n=True,
            id_prefix="",
            **_FILTERS,
        ),
        _vendor(
            "fireworks",
            ("accounts/fireworks/models/deepseek-v3-0324",
             "accounts/fireworks/models/llama-v3p1-8b-instruct",
             "accounts/fireworks/models/gpt-oss-120b"),
            supports_n=True,

            cache=CachePolicy(unit=1, minimum=1024),
            id_prefix="",
            **_FILTERS,
        ),
        _vendor(
            "cerebras",
            ("llama3.1-8b", "llama-3.3-70b", "gpt-oss-120b", "qwen-3-32b"),
            system_fingerprint="fp_sandbox_cerebras",
            **_FILTERS,
        ),
        _vendor(
            "perplexity",
            ("sonar", "sonar-pro", "sonar-reasoning"),
            stream_usage="last_chunk",
            reasoning_models=("sonar-reasoning",),
            id_prefix="",
            **_FILTERS,
        ),
        _vendor(
            "novita",
            ("deepseek/deepseek-v3-0324", "meta-llama/llama-3.1-8b-instruct",
             "qwen/qwen3-32b-fp8"),
            supports_n=True,
            **_FILTERS,
        ),
        _vendor(
            "cohere",
            ("command-a-03-2025", "command-r-08-2024", "command-r7b-12-2024", "command-a"),
            id_prefix="",
            **_FILTERS,
        ),
    )
}
