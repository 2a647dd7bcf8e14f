"""Azure OpenAI: OpenAI's wire format behind deployment URLs, ``api-version`` and ``api-key``.

Two URL styles, chosen by the deployment's API version:

- a dated version (``2024-10-21``): ``{endpoint}/openai/deployments/{deployment}/
  chat/completions?api-version=...``, the deployment named per model in config
  (``model_deployments``; by default the model's own name);
- ``v1``: the v1 API, ``{endpoint}/openai/v1/chat/completions``, the deployment name
  sent as ``model``.

Bodies, chunks and usage are OpenAI's (plus ``prompt_filter_results`` and per-choice
``content_filter_results``, passed through). A prompt the content filter blocks is a
400 with code ``content_filter`` (inner code ``ResponsibleAIPolicyViolation``); a
filtered completion ends with ``finish_reason: "content_filter"``; 429s carry
``retry-after``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from kanjia.errors import BadRequest
from kanjia.vendors.base import Deployment, UpstreamRequest
from kanjia.vendors.openai_compat import OpenAICompatAdapter

__all__ = ["AzureAdapter"]

_V1 = "v1"


class AzureAdapter(OpenAICompatAdapter):
    def _headers(self, dep: Deployment) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self.spec.headers, **dep.headers}
        if dep.api_key:
            headers["api-key"] = dep.api_key
        return headers

    def _version(self, dep: Deployment) -> str:
        return dep.api_version or self.spec.api_version or _V1

    def _url(self, dep: Deployment, model: str, endpoint: str) -> str:
        version = self._version(dep)
        if version == _V1:
            return f"{dep.base_url}/openai/v1/{endpoint}"
        deployment = dep.deployment_for(model)
        if deployment in ("", ".", ".."):  # HTTP clients resolve dot segments
            raise BadRequest(f"model {model!r} cannot be used in this vendor's URL")
        name = quote(deployment, safe="")
        query = urlencode({"api-version": version})
        return f"{dep.base_url}/openai/deployments/{name}/{endpoint}?{query}"

    def _sent_model(self, dep: Deployment, model: str) -> str:
        """The v1 API routes by ``model`` = the deployment name; deployment URLs carry the
        deployment in the path (``model`` in the body is then the catalog's name)."""
        return dep.deployment_for(model) if self._version(dep) == _V1 else model

    def chat_request(self, dep: Deployment, body: dict[str, Any], model: str,
                     stream: bool) -> UpstreamRequest:
        if self._version(dep) == _V1:
            return super().chat_request(dep, body, self._sent_model(dep, model), stream)
        return super().chat_request(dep, body, model, stream)

    def embeddings_request(self, dep: Deployment, body: dict[str, Any],
                           model: str) -> UpstreamRequest:
        if self._version(dep) == _V1:
            return super().embeddings_request(dep, body, self._sent_model(dep, model))
        return super().embeddings_request(dep, body, model)
