"""Azure OpenAI: OpenAI's wire format behind deployment URLs and ``api-version``.

Routes, under ``/azure``: ``/openai/deployments/{deployment}/chat/completions`` and
``/embeddings`` (``?api-version=`` required, the deployment names the model) and the
v1 API ``/openai/v1/chat/completions`` and ``/embeddings`` (the body's ``model`` is the
deployment). The key goes in an ``api-key`` header (or ``Authorization: Bearer`` for
Entra ID tokens). Success bodies carry ``prompt_filter_results``; a prompt the content
filter blocks is a 400 with code ``content_filter`` and inner code
``ResponsibleAIPolicyViolation``; 429s carry ``retry-after``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kanjia.sandbox._cache import CachePolicy
from kanjia.sandbox._errors import ErrorReply, error_reply
from kanjia.sandbox._state import SandboxState
from kanjia.sandbox._vendors.openai_compat import chat_handler, embeddings_handler
from kanjia.sandbox._vendors.openai_compat_vendors import OpenAIVendor
from kanjia.sandbox._wire import Handler, json_response

__all__ = ["AZURE", "add_azure_routes"]

_SAFE = {"filtered": False, "severity": "safe"}
_FILTERS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
_BLOCKED = {**_FILTERS, "violence": {"filtered": True, "severity": "medium"}}


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _rows(rows: dict[str, tuple[int, dict[str, Any]]]) -> dict[str, ErrorReply]:
    return {fault: error_reply(status, body, status == 429 and fault != "balance")
            for fault, (status, body) in rows.items()}


_ERRORS = _rows({
    "rate_limit": (429, _error(
        "429", "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
        "2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
        "Please retry after 2 seconds. Please go here: https://aka.ms/oai/quotaincrease if you "
        "would like to further increase the default rate limit.")),
    "server_error": (500, _error("500", "The server had an error while processing your request. "
                                 "Sorry about that!")),
    "overloaded": (503, _error("503", "The service is temporarily unable to process your "
                               "request. Please try again later.")),
    "balance": (429, _error(
        "insufficient_quota", "The subscription's quota for this resource is exhausted: check "
        "your plan and billing details in the Azure portal.")),
    "auth": (401, _error(
        "401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
        "to provide a valid key for an active subscription and use a correct regional API "
        "endpoint for your resource.")),
    "context_too_long": (400, {"error": {
        "message": "This model's maximum context length is 128000 tokens. However, your "
        "messages resulted in 140000 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error", "param": "messages",
        "code": "context_length_exceeded"}}),
    "content_filter": (400, {"error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
        "content management policy. Please modify your prompt and retry. To learn more about "
        "our content filtering policies please read our documentation: "
        "https://go.microsoft.com/fwlink/?linkid=2198766",
        "type": None, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation",
                       "content_filter_result": _BLOCKED}}}),
})

AZURE = OpenAIVendor(
    "azure",
    ("gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o4-mini", "text-embedding-3-small"),
    _ERRORS,
    supports_n=True,
    cache=CachePolicy(unit=128, minimum=1024),
    cache_models=("gpt-4o", "gpt-4.1", "o4"),
    reasoning_models=("o4", "o3", "o1"),
    system_fingerprint="fp_sandbox_azure",
    usage_details=True,
    embedding_dim=1536,
    key_header="api-key",
    extra={"prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _FILTERS}]},
)

_NOT_FOUND = _error("404", "Resource not found")


def _versioned(inner: Handler) -> Handler:
    """Deployment URLs need ``?api-version=``; Azure answers 404 without it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if not request.query.get("api-version"):
            return json_response(_NOT_FOUND, status=404)
        return await inner(request)

    return handler


def add_azure_routes(router: web.UrlDispatcher, state: SandboxState) -> None:
    base = "/azure/openai"
    chat = chat_handler(state, AZURE, path_model="deployment")
    embed = embeddings_handler(state, AZURE, path_model="deployment")
    router.add_post(f"{base}/deployments/{{deployment}}/chat/completions", _versioned(chat))
    router.add_post(f"{base}/deployments/{{deployment}}/embeddings", _versioned(embed))
    router.add_post(f"{base}/v1/chat/completions", chat_handler(state, AZURE))
    router.add_post(f"{base}/v1/embeddings", embeddings_handler(state, AZURE))
