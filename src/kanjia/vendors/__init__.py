"""Vendor adapters behind one small interface (see base.py), OpenAI-compatible ones as data."""

from kanjia.vendors._spec import VendorSpec, load_vendor_specs
from kanjia.vendors.base import (
    Adapter,
    ChatResult,
    Deployment,
    StreamDecoder,
    StreamTranslator,
    UpstreamRequest,
)
from kanjia.vendors.registry import adapter_for
from kanjia.vendors.sse import SSEParser

__all__ = [
    "Adapter",
    "ChatResult",
    "Deployment",
    "SSEParser",
    "StreamDecoder",
    "StreamTranslator",
    "UpstreamRequest",
    "VendorSpec",
    "adapter_for",
    "load_vendor_specs",
]
