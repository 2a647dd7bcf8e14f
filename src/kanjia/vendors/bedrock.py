"""AWS Bedrock through the Converse API, signed with SigV4 by botocore.

``POST {endpoint}/model/{modelId}/converse`` answers JSON; ``/converse-stream``
answers AWS event-stream binary framing (``application/vnd.amazon.eventstream``),
decoded here by botocore's ``EventStreamBuffer``, never by hand. botocore is the
optional extra ``kanjia[bedrock]``, imported only when a Bedrock deployment is used.

Credentials: the deployment's key ($AWS_ACCESS_KEY_ID with $AWS_SECRET_ACCESS_KEY and
$AWS_SESSION_TOKEN), or, when the environment holds none and Bedrock is enabled in
config, botocore's own credential chain (shared profile, SSO, instance role), read
once per adapter and refreshed by botocore.

Errors: the status, the ``x-amzn-ErrorType`` header and the body's ``message``
(ThrottlingException 429, ValidationException 400, AccessDeniedException 403,
ModelTimeoutException 408, ServiceUnavailableException 503, ...); in a stream, an
exception message (``:message-type: exception``) named by ``:exception-type``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from kanjia.catalog import Usage
from kanjia.errors import BadRequest, KanjiaError, UpstreamProtocolError, VendorAuthFailed
from kanjia.vendors._converse import STOP, converse_body, converse_usage, message_of
from kanjia.vendors._errors import make_error
from kanjia.vendors._openai_format import chunk, completion
from kanjia.vendors._spec import VendorSpec
from kanjia.vendors.base import ChatResult, Deployment, UpstreamRequest

if TYPE_CHECKING:
    from botocore.credentials import Credentials

__all__ = ["BedrockAdapter", "EventStreamDecoder"]

_SERVICE = "bedrock"
_INSTALL = "AWS Bedrock needs botocore: pip install 'kanjia[bedrock]'"
#: the exception prefix of a decoded event (what follows names the AWS exception)
EXCEPTION = "exception:"


def _botocore() -> Any:
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        import botocore.eventstream
    except ImportError:
        raise VendorAuthFailed(_INSTALL, vendor="bedrock") from None
    return botocore


class EventStreamDecoder:
    """AWS event-stream bytes in, ``(event type, JSON payload)`` pairs out, like
    SSEParser's; an exception message comes out as ``("exception:<Name>", payload)``."""

    __slots__ = ("_buffer", "_vendor")

    def __init__(self, vendor: str) -> None:
        self._buffer = _botocore().eventstream.EventStreamBuffer()
        self._vendor = vendor

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        eventstream = _botocore().eventstream
        self._buffer.add_data(chunk)
        out: list[tuple[str | None, bytes]] = []
        try:
            for message in self._buffer:
                headers = message.headers
                kind = headers.get(":message-type", "event")
                if kind == "event":
                    out.append((str(headers.get(":event-type", "")), message.payload))
                elif kind == "exception":
                    name = str(headers.get(":exception-type", "exception"))
                    out.append((EXCEPTION + name, message.payload))
                else:  # "error": code and message in headers
                    body = orjson.dumps({"message": str(headers.get(":error-message", ""))})
                    out.append((EXCEPTION + str(headers.get(":error-code", "error")), body))
        except eventstream.ParserError as exc:
            raise UpstreamProtocolError(f"{self._vendor}: broken event-stream frame "
                                        f"({type(exc).__name__})", vendor=self._vendor) from None
        return out

    def flush(self) -> list[tuple[str | None, bytes]]:
        return []  # a frame cut short never completes: the translator is then not done


class BedrockAdapter:
    def __init__(self, spec: VendorSpec) -> None:
        self.spec = spec
        #: botocore's credential chain, resolved on first use when no key is configured
        self._chain: Credentials | None = None

    # -- signing ----------------------------------------------------------------------
    def _credentials(self, dep: Deployment) -> Any:
        boto = _botocore()
        if dep.api_key:
            secret = dep.secrets.get("secret_access_key")
            if not secret:
                raise VendorAuthFailed(f"{self.spec.id}: deployment {dep.name!r} has an access "
                                       "key id but no $AWS_SECRET_ACCESS_KEY",
                                       vendor=self.spec.id)
            return boto.credentials.Credentials(dep.api_key, secret,
                                                dep.secrets.get("session_token"))
        if self._chain is None:
            import botocore.session

            self._chain = botocore.session.get_session().get_credentials()
            if self._chain is None:
                raise VendorAuthFailed(f"{self.spec.id}: no AWS credentials found (set "
                                       "$AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, or a "
                                       "profile)", vendor=self.spec.id)
        return self._chain.get_frozen_credentials()

    def _signed(self, dep: Deployment, url: str, body: bytes, stream: bool) -> UpstreamRequest:
        boto = _botocore()
        accept = "application/vnd.amazon.eventstream" if stream else "application/json"
        request = boto.awsrequest.AWSRequest(
            method="POST", url=url, data=body,
            headers={"Content-Type": "application/json", "Accept": accept})
        region = dep.region or self.spec.default_region or "us-east-1"
        boto.auth.SigV4Auth(self._credentials(dep), _SERVICE, region).add_auth(request)
        return UpstreamRequest(url, dict(request.headers.items()), body)

    # -- requests ---------------------------------------------------------------------
    def chat_request(self, dep: Deployment, body: dict[str, Any], model: str,
                     stream: bool) -> UpstreamRequest:
        action = "converse-stream" if stream else "converse"
        if model in ("", ".", ".."):  # HTTP clients resolve dot segments
            raise BadRequest(f"model {model!r} cannot be used in this vendor's URL")
        # ":" stays as is (aiohttp would unescape "%3A" and SigV4 signs the path as sent);
        # "/" in an inference-profile ARN is escaped
        url = f"{dep.base_url}/model/{quote(model, safe=':')}/{action}"
        return self._signed(dep, url, orjson.dumps(converse_body(body)), stream)

    def stream_decoder(self) -> EventStreamDecoder:
        return EventStreamDecoder(self.spec.id)

    def embeddings_request(self, dep: Deployment, body: dict[str, Any],
                           model: str) -> UpstreamRequest:
        raise BadRequest("bedrock embeddings (InvokeModel) are not supported through kanjia")

    def parse_embeddings(self, data: bytes, model: str) -> ChatResult:
        raise BadRequest("bedrock embeddings (InvokeModel) are not supported through kanjia")

    # -- responses --------------------------------------------------------------------
    def parse_chat(self, data: bytes, model: str) -> ChatResult:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(f"{self.spec.id}: response is not valid JSON",
                                        vendor=self.spec.id) from None
        output = body.get("output") if isinstance(body, dict) else None
        msg = output.get("message") if isinstance(output, dict) else None
        if not isinstance(msg, dict):
            raise UpstreamProtocolError(f"{self.spec.id}: response has no output message",
                                        vendor=self.spec.id)
        message, text = message_of(msg.get("content"))
        finish = STOP.get(str(body.get("stopReason") or "end_turn"), "stop")
        usage = converse_usage(body.get("usage"))
        out = completion(f"chatcmpl-bedrock-{time.time_ns():x}", model,
                         [{"index": 0, "message": message, "finish_reason": finish}], usage)
        return ChatResult(out, usage, "" if usage is not None else text)

    def stream_translator(self, model: str, include_usage: bool) -> ConverseStream:
        return ConverseStream(self, model, include_usage)

    def classify_error(self, status: int, data: bytes,
                       headers: Mapping[str, str]) -> KanjiaError:
        kind = headers.get("x-amzn-ErrorType") or headers.get("x-amzn-errortype") or ""
        name = kind.split(":", 1)[0]
        if name:  # the exception's name rides in a header; the body has only the message
            data = orjson.dumps({"code": name, "message": _message(data)})
        return make_error(self.spec.id, self.spec.errors, status, data, headers)

    def stream_error(self, name: str, data: bytes) -> KanjiaError:
        """An exception message inside a stream (HTTP 200 by then)."""
        # the stream names exceptions in lowerCamelCase (throttlingException)
        body = orjson.dumps({"code": name[:1].upper() + name[1:],
                             "message": _message(data) or name})
        return make_error(self.spec.id, self.spec.errors, 200, body, {})


def _message(data: bytes) -> str:
    """The message of an AWS error body (``message`` or ``Message``)."""
    try:
        parsed = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        return data[:300].decode("utf-8", "replace")
    if isinstance(parsed, dict):
        text = parsed.get("message") or parsed.get("Message") or parsed.get("originalMessage")
        return text if isinstance(text, str) else ""
    return ""


class ConverseStream:
    """Converse stream events -> OpenAI chunks: messageStart, contentBlockStart (tool
    use), contentBlockDelta (text, toolUse input, reasoningContent), messageStop (the
    stop reason), metadata (usage, last)."""

    def __init__(self, adapter: BedrockAdapter, model: str, include_usage: bool) -> None:
        self._adapter = adapter
        self._model = model
        self._include_usage = include_usage
        self._rid = f"chatcmpl-bedrock-{time.time_ns():x}"
        self._created = int(time.time())
        self._tools: dict[int, int] = {}
        self.usage: Usage | None = None
        self.output_text: list[str] = []
        self.done = False
        self._stopped = False

    @property
    def complete(self) -> bool:
        """The vendor's end marker (``messageStop``, with its stop reason) arrived; the
        ``metadata`` event after it carries the usage."""
        return self._stopped

    def _chunk(self, delta: dict[str, Any] | None, finish: str | None = None,
               usage: Usage | None = None) -> bytes:
        return chunk(self._rid, self._model, self._created, delta, finish, usage)

    def feed(self, event: str | None, data: bytes) -> list[bytes]:
        if event and event.startswith(EXCEPTION):
            raise self._adapter.stream_error(event[len(EXCEPTION):], data)
        try:
            ev = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(f"{self._adapter.spec.id}: malformed stream event",
                                        vendor=self._adapter.spec.id) from None
        if not isinstance(ev, dict):
            raise UpstreamProtocolError(f"{self._adapter.spec.id}: malformed stream event",
                                        vendor=self._adapter.spec.id)
        if event == "messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        if event == "contentBlockStart":
            use = (ev.get("start") or {}).get("toolUse")
            if isinstance(use, dict):
                idx = self._tools.setdefault(int(ev.get("contentBlockIndex") or 0),
                                             len(self._tools))
                self.output_text.append(str(use.get("name") or ""))
                return [self._chunk({"tool_calls": [{
                    "index": idx, "id": use.get("toolUseId"), "type": "function",
                    "function": {"name": use.get("name"), "arguments": ""}}]})]
            return []
        if event == "contentBlockDelta":
            return self._delta(ev)
        if event == "messageStop":
            self._stopped = True
            finish = STOP.get(str(ev.get("stopReason") or "end_turn"), "stop")
            return [self._chunk({}, finish)]
        if event == "metadata":
            self.usage = converse_usage(ev.get("usage"))
            self.done = True
            if self._include_usage and self.usage is not None:
                return [self._chunk(None, usage=self.usage)]
            return []
        return []

    def _delta(self, ev: dict[str, Any]) -> list[bytes]:
        delta = ev.get("delta") or {}
        if isinstance(delta.get("text"), str):
            self.output_text.append(delta["text"])
            return [self._chunk({"content": delta["text"]})]
        use = delta.get("toolUse")
        if isinstance(use, dict):
            part = str(use.get("input") or "")
            idx = self._tools.get(int(ev.get("contentBlockIndex") or 0), 0)
            self.output_text.append(part)
            return [self._chunk({"tool_calls": [{"index": idx,
                                                 "function": {"arguments": part}}]})]
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
            self.output_text.append(reasoning["text"])
            return [self._chunk({"reasoning_content": reasoning["text"]})]
        return []
