"""Vendor batch APIs behind one small protocol, apart from the chat ``Adapter``.

A ``BatchAdapter`` translates like an adapter does (no I/O): it builds the calls that
upload a batch, create it, poll it and fetch its results, and parses the answers.
Each line is translated by the vendor's own chat adapter, so a batch line reaches
the vendor in exactly the shape a live request would, and each result is parsed by
``Adapter.parse_chat``: usage comes from the vendor's own fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from kanjia.catalog import Usage
from kanjia.errors import UpstreamProtocolError
from kanjia.vendors.base import Deployment

__all__ = ["BatchAdapter", "BatchCall", "BatchItem", "ItemResult", "VendorBatch", "jsonl_lines"]




@dataclass(frozen=True, slots=True)
class BatchCall:
    """One HTTP call to a vendor's batch API."""

    method: str                     # "GET" | "POST"
    url: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes | None = None
    #: multipart form fields instead of ``body``: (name, filename or None, bytes)
    form: tuple[tuple[str, str | None, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One request of a vendor batch: kanjia's id for it and the OpenAI-format body."""

    custom_id: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VendorBatch:
    """A vendor batch as its API reports it."""

    id: str
    ended: bool                     # no more results will come
    #: where the results are: output/error file ids (OpenAI-style) or a results URL
    refs: tuple[str, ...] = ()
    status: str = ""


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The outcome of one request of a vendor batch, already in OpenAI format."""

    custom_id: str
    status_code: int
    body: bytes                     # chat completion JSON, or the vendor's error body
    usage: Usage | None = None
    error: str | None = None        # None: succeeded
    request_id: str = ""
    #: the generated text, for counting when the vendor reported no usage
    output_text: str = ""


class BatchAdapter(Protocol):
    #: the vendor's ``endpoint``/``url`` for chat lines (``/v1/chat/completions``)
    def upload(self, dep: Deployment, items: Sequence[BatchItem], model: str,
               endpoint: str) -> BatchCall | None:
        """The upload of the input file, or None when the batch is created in one call."""
        ...

    def parse_upload(self, data: bytes) -> str: ...

    def create(self, dep: Deployment, items: Sequence[BatchItem], model: str,
               endpoint: str, file_id: str | None) -> BatchCall: ...

    def retrieve(self, dep: Deployment, batch_id: str) -> BatchCall: ...

    def cancel(self, dep: Deployment, batch_id: str) -> BatchCall: ...

    def parse_batch(self, data: bytes) -> VendorBatch: ...

    def results(self, dep: Deployment, batch: VendorBatch) -> list[BatchCall]: ...

    def parse_results(self, data: bytes, model: str, endpoint: str) -> list[ItemResult]: ...


def jsonl_lines(data: bytes, who: str) -> Iterator[dict[str, Any]]:
    """The objects of a vendor's JSONL results file (blank lines skipped); a line that is
    not a JSON object is the vendor's protocol error, named after ``who``."""
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(f"{who}: a result line is not JSON") from None
        if not isinstance(line, dict):
            raise UpstreamProtocolError(f"{who}: a result line is not a JSON object")
        yield line
