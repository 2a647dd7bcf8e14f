"""The gateway's OpenAPI document (served at /openapi.json; schemathesis fuzzes it).

It describes what the server accepts, no more: a request valid here is not refused as
malformed by ``server.validate`` or ``server.model_ids`` (model ids, content parts,
tools, tool calls and tool choice carry the same rules)."""

from __future__ import annotations

from typing import Any

from kanjia.server.validate import MAX_CHOICES, MAX_OUTPUT_TOKENS

__all__ = ["MODEL_PATTERN", "OPENAPI"]

_ERROR = {"description": "OpenAI-style error",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

#: a model id (``server.model_ids``): no "..", "?", "#", "%", backslash, whitespace or
#: control character; the same pattern in ECMA-262 and Python syntax
MODEL_PATTERN = "^(?!.*[.][.])[^\\s?#%\\\\\\u0000-\\u001f\\u007f-\\u009f]+$"
#: the largest integer a request may hold (the JSON parser reads no wider ones as integers)
_INT64 = 2**63 - 1
_TOKEN = {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
_MODEL: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 256,
                          "pattern": MODEL_PATTERN}
_TEXT_PART = {"type": "object", "required": ["type", "text"],
              "properties": {"type": {"type": "string", "enum": ["text"]},
                             "text": {"type": "string"}}}
_IMAGE_PART = {"type": "object", "required": ["type", "image_url"],
               "properties": {"type": {"type": "string", "enum": ["image_url"]},
                              "text": {"type": "string"},
                              "image_url": {"oneOf": [
                                  {"type": "string"},
                                  {"type": "object", "required": ["url"],
                                   "properties": {"url": {"type": "string"}}}]}}}
_OTHER_PART = {"type": "object", "required": ["type"],
               "properties": {"type": {"type": "string", "not": {"enum": ["text", "image_url"]}},
                              "text": {"type": "string"}}}
_TOOL_CALL = {"type": "object", "required": ["function"],
              "properties": {"id": {"type": "string", "nullable": True},
                             "type": {"type": "string"},
                             "function": {"type": "object", "required": ["name"], "properties": {
                                 "name": {"type": "string"},
                                 "arguments": {"oneOf": [{"type": "string"}, {"type": "object"}],
                                               "nullable": True}}}}}
_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"oneOf": [{"type": "string"},
                              {"type": "array",
                               "items": {"oneOf": [_TEXT_PART, _IMAGE_PART, _OTHER_PART]}}],
                    "nullable": True},
        "name": {"type": "string"},
        "tool_call_id": {"type": "string"},
        "tool_calls": {"type": "array", "items": _TOOL_CALL},
    },
}
_TOOL = {"type": "object", "required": ["function"],
         "properties": {"type": {"type": "string"},
                        "function": {"type": "object", "required": ["name"],
                                     "properties": {"name": {"type": "string"},
                                                    "description": {"type": "string"},
                                                    "parameters": {"type": "object"}}}}}
_TOOL_CHOICE = {"oneOf": [
    {"type": "string", "enum": ["none", "auto", "required"]},
    {"type": "object", "properties": {"type": {"type": "string"}, "function": {
        "type": "object", "properties": {"name": {"type": "string"}}}}}]}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "kanjia gateway", "version": "0.1.0",
             "description": "OpenAI-compatible API over every LLM vendor"},
    "paths": {
        "/v1/chat/completions": {"post": {
            "operationId": "createChatCompletion",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["model", "messages"],
                # one output limit: OpenAI refuses both at once, and so does kanjia
                "not": {"required": ["max_tokens", "max_completion_tokens"]},
                "properties": {
                    "model": _MODEL,
                    "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
                    "stream": {"type": "boolean"},
                    "temperature": {"type": "number"},
                    "top_p": {"type": "number"},
                    "max_tokens": {"type": "integer", "minimum": 1,
                                   "maximum": MAX_OUTPUT_TOKENS},
                    "max_completion_tokens": {"type": "integer", "minimum": 1,
                                              "maximum": MAX_OUTPUT_TOKENS},
                    "n": {"type": "integer", "minimum": 1, "maximum": MAX_CHOICES},
                    "stop": {"oneOf": [{"type": "string"},
                                       {"type": "array", "items": {"type": "string"}}]},
                    "tools": {"type": "array", "items": _TOOL},
                    "tool_choice": _TOOL_CHOICE,
                    "response_format": {"type": "object"},
                    "stream_options": {"type": "object"},
                    "user": {"type": "string"},
                }}}}},
            "responses": {"200": {"description": "A chat completion (or an SSE stream)"},
                          "400": _ERROR, "401": _ERROR, "402": _ERROR, "403": _ERROR,
                          "404": _ERROR, "413": _ERROR, "429": _ERROR, "502": _ERROR,
                          "503": _ERROR, "504": _ERROR},
        }},
        "/v1/embeddings": {"post": {
            "operationId": "createEmbedding",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["model", "input"],
                "properties": {"model": _MODEL,
                               "input": {"oneOf": [
                                   {"type": "string"},
                                   {"type": "array", "minItems": 1, "items": {"type": "string"}},
                                   {"type": "array", "minItems": 1, "items": _TOKEN},
                                   {"type": "array", "minItems": 1, "items": {
                                       "type": "array", "items": _TOKEN}}]},
                               "dimensions": {"type": "integer", "minimum": 1,
                                              "maximum": _INT64}}}}}},
            "responses": {"200": {"description": "Embeddings"}, "400": _ERROR, "401": _ERROR,
                          "404": _ERROR, "413": _ERROR, "429": _ERROR, "502": _ERROR,
                          "503": _ERROR},
        }},
        "/v1/models": {"get": {"operationId": "listModels",
                               "responses": {"200": {"description": "Models and routes"}}}},
        "/v1/requests/{request_id}": {"get": {
            "operationId": "getRequest",
            "summary": "One request's ledger record (to the key that made it, or the admin)",
            "parameters": [{"name": "request_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The record: tokens, cost, status, route"},
                          "401": _ERROR, "404": _ERROR}}},
        "/healthz": {"get": {"operationId": "health",
                             "responses": {"200": {"description": "Liveness"}}}},
        "/metrics": {"get": {"operationId": "metrics",
                             "responses": {"200": {"description": "Prometheus text"},
                                           "401": _ERROR, "429": _ERROR}}},
    },
    "components": {"schemas": {"Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["message", "type", "code"],
                                 "properties": {"message": {"type": "string"},
                                                "type": {"type": "string"},
                                                "code": {"type": "string"}}}}}}},
}
