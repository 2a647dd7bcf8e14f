"""kanjia's exact response cache: identical requests answered without a vendor call."""

from kanjia.cache._cache import Cached, CacheRequest, ResponseCache, cache_request, default_path
from kanjia.cache._key import cache_key, normalized
from kanjia.cache._replay import assemble, is_complete, replay_chunks, sse_payloads
from kanjia.cache._stores import LocalStore, RedisStore, Store

__all__ = ["CacheRequest", "Cached", "LocalStore", "RedisStore", "ResponseCache", "Store",
           "assemble", "cache_key", "cache_request", "default_path", "is_complete",
           "normalized", "replay_chunks", "sse_payloads"]
