"""The one small interface every vendor adapter implements.

An adapter translates, and nothing else: an OpenAI-format request into the
vendor's wire format, the vendor's response, stream events and errors back.
It never performs I/O; the server owns the HTTP client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from kanjia.catalog import Usage
from kanjia.errors import KanjiaError
from kanjia.vendors._spec import VendorSpec

__all__ = ["Adapter", "ChatResult", "Deployment", "NativeAdapter", "NativeCall",
           "StreamDecoder", "StreamTranslator", "UpstreamRequest", "native_adapter"]


@dataclass(frozen=True, slots=True)
class Deployment:
    """One place a vendor can be called: base URL plus credentials."""

    vendor: VendorSpec
    base_url: str
    api_key: str | None = field(repr=False, default=None)
    name: str = "default"
    weight: float = 1.0
    #: extra request headers taken from the environment (e.g. Qianfan's appid)
    headers: Mapping[str, str] = field(default_factory=dict)
    #: secret parts beyond ``api_key`` (SigV4's secret access key, session token)
    secrets: Mapping[str, str] = field(repr=False, default_factory=dict)
    #: Azure's ``api-version`` ("v1": the v1 API without deployment URLs)
    api_version: str | None = None
    #: model -> the name the vendor deploys it under (Azure deployment names)
    model_deployments: Mapping[str, str] = field(default_factory=dict)
    #: the cloud region (Bedrock: signs requests for it)
    region: str | None = None

    def deployment_for(self, model: str) -> str:
        """The vendor-side deployment name of ``model`` (the model itself by default)."""
        return self.model_deployments.get(model, model)

    @property
    def id(self) -> str:
        return f"{self.vendor.id}#{self.name}"


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    url: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes


@dataclass(slots=True)
class ChatResult:
    """A finished non-streamed response, already in OpenAI format."""

    body: bytes
    usage: Usage | None
    output_text: str = ""


class StreamDecoder(Protocol):
    """Splits a streamed response body into ``(event, data)`` pairs: SSEParser for
    text/event-stream, botocore's event-stream buffer for Bedrock. ``feed`` takes raw
    bytes as they arrive; ``flush`` ends the stream."""

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]: ...

    def flush(self) -> list[tuple[str | None, bytes]]: ...


class StreamTranslator(Protocol):
    """Turns one upstream SSE event at a time into OpenAI chunk payloads.

    ``feed`` returns the ``data:`` payloads to send to the client (without the
    ``data: `` prefix); it raises a KanjiaError for an in-stream vendor error.
    After the stream, ``usage`` holds what the vendor reported (or None) and
    ``output_text`` what was generated, for counting when the vendor reports none.

    ``done``: stop reading (the vendor's last event arrived). ``complete``: the vendor's
    own end marker arrived, so the answer is whole (OpenAI-style: a ``finish_reason`` and
    ``[DONE]``; Anthropic: ``message_stop``; Gemini: a ``finishReason``). A stream that
    ends, breaks or stalls before that is truncated, never a success.
    """

    usage: Usage | None
    output_text: list[str]
    done: bool

    @property
    def complete(self) -> bool: ...

    def feed(self, event: str | None, data: bytes) -> list[bytes]: ...


class Adapter(Protocol):
    spec: VendorSpec

    def chat_request(self, dep: Deployment, body: dict[str, Any], model: str,
                     stream: bool) -> UpstreamRequest: ...

    def parse_chat(self, data: bytes, model: str) -> ChatResult: ...

    def stream_translator(self, model: str, include_usage: bool) -> StreamTranslator: ...

    def stream_decoder(self) -> StreamDecoder: ...

    def embeddings_request(self, dep: Deployment, body: dict[str, Any],
                           model: str) -> UpstreamRequest: ...

    def parse_embeddings(self, data: bytes, model: str) -> ChatResult: ...

    def classify_error(self, status: int, data: bytes,
                       headers: Mapping[str, str]) -> KanjiaError: ...


@dataclass(frozen=True, slots=True)
class NativeCall:
    """A client request in a vendor's own API (``api``: "messages" for Anthropic's
    Messages API, "responses" for OpenAI's Responses API), to pass through unchanged when
    the chosen vendor speaks that API."""

    api: str
    #: the client's body as it came (the adapter sets only ``model`` and ``stream``; for
    #: Responses, the ingress has already sent ``store: false`` and expanded
    #: ``previous_response_id`` into the input, as kanjia keeps the conversation)
    body: Mapping[str, Any]
    #: the client's headers that belong to the API (``anthropic-version``, ``anthropic-beta``)
    headers: Mapping[str, str] = field(default_factory=dict)
    #: the client's query string (Claude Code's ``beta=true``), without the ``?``
    query: str = ""
    #: why the request cannot be translated (a PDF, an MCP server, ...): set, only a
    #: vendor that speaks the API may take it; else a 400 with this message
    refusal: str | None = None


class NativeAdapter(Protocol):
    """The optional capability of an adapter whose vendor speaks a client API natively:
    the request goes as the client wrote it, the reply comes back as the vendor wrote it.
    Usage is still parsed from the vendor's own fields (for the ledger), and a stream's
    ``complete`` still needs the vendor's end marker."""

    native_apis: frozenset[str]

    def native_request(self, dep: Deployment, call: NativeCall, model: str,
                       stream: bool) -> UpstreamRequest: ...

    def parse_native(self, api: str, data: bytes, model: str) -> ChatResult:
        """``body`` is the vendor's reply unchanged (not OpenAI chat JSON)."""
        ...

    def native_stream(self, api: str, model: str) -> StreamTranslator:
        """Yields each event's ``data`` payload unchanged (the event name is the payload's
        ``type`` in Anthropic's stream), tracking usage and the end marker."""
        ...


def native_adapter(adapter: object, api: str) -> NativeAdapter | None:
    """``adapter`` as a NativeAdapter when its vendor speaks ``api`` natively, else None."""
    apis = getattr(adapter, "native_apis", None)
    return cast(NativeAdapter, adapter) if isinstance(apis, frozenset) and api in apis \
        else None
