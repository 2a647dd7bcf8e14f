"""Vendor adapters behind one small interface (see base.py), OpenAI-compatible ones as data."""

from kanjia.vendors._batch import BatchAdapter, BatchCall, BatchItem, ItemResult, VendorBatch
from kanjia.vendors._batch_select import batch_adapter_for
from kanjia.vendors._spec import VendorSpec, load_vendor_specs
from kanjia.vendors.base import (
    Adapter,
    ChatResult,
    Deployment,
    NativeAdapter,
    NativeCall,
    StreamDecoder,
    StreamTranslator,
    UpstreamRequest,
    native_adapter,
)
from kanjia.vendors.registry import adapter_for
from kanjia.vendors.sse import SSEParser

__all__ = [
    "Adapter",
    "BatchAdapter",
    "BatchCall",
    "BatchItem",
    "ChatResult",
    "Deployment",
    "ItemResult",
    "NativeAdapter",
    "NativeCall",
    "SSEParser",
    "StreamDecoder",
    "StreamTranslator",
    "UpstreamRequest",
    "VendorBatch",
    "VendorSpec",
    "adapter_for",
    "batch_adapter_for",
    "load_vendor_specs",
    "native_adapter",
]
