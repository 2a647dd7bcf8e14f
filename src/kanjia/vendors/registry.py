"""Adapter dispatch: a registry lookup by adapter kind, never an if-chain per vendor."""

from __future__ import annotations

from collections.abc import Callable

from kanjia.vendors._spec import VendorSpec
from kanjia.vendors.anthropic import AnthropicAdapter
from kanjia.vendors.azure import AzureAdapter
from kanjia.vendors.base import Adapter
from kanjia.vendors.bedrock import BedrockAdapter
from kanjia.vendors.gemini import GeminiAdapter
from kanjia.vendors.openai_compat import OpenAICompatAdapter

__all__ = ["ADAPTER_KINDS", "adapter_for"]

ADAPTER_KINDS: dict[str, Callable[[VendorSpec], Adapter]] = {
    "openai": OpenAICompatAdapter,
    "anthropic": AnthropicAdapter,
    "gemini": GeminiAdapter,
    "azure": AzureAdapter,
    "bedrock": BedrockAdapter,
}


def adapter_for(spec: VendorSpec) -> Adapter:
    return ADAPTER_KINDS[spec.kind](spec)
