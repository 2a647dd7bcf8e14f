"""Which batch API kanjia can use for a vendor (OpenAI-style files + batches, Anthropic
Message Batches), or none."""

from __future__ import annotations

from kanjia.vendors._batch import BatchAdapter
from kanjia.vendors._batch_anthropic import AnthropicBatch
from kanjia.vendors._batch_openai import OPENAI_STYLE, OpenAIBatch
from kanjia.vendors.base import Adapter

__all__ = ["batch_adapter_for"]


def batch_adapter_for(vendor: str, adapter: Adapter) -> BatchAdapter | None:
    """The vendor's batch adapter, or None when kanjia cannot use its batch API."""
    if vendor == "anthropic":
        return AnthropicBatch(adapter)
    paths = OPENAI_STYLE.get(vendor)
    return OpenAIBatch(adapter, paths) if paths is not None else None
