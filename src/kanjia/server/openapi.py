"""The gateway's OpenAPI document (served at /openapi.json; schemathesis fuzzes it)."""

from __future__ import annotations

from typing import Any

__all__ = ["OPENAPI"]

_ERROR = {"description": "OpenAI-style error",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}},
                              {"type": "null"}]},
        "name": {"type": "string"},
        "tool_call_id": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "kanjia gateway", "version": "0.1.0",
             "description": "OpenAI-compatible API over every LLM vendor"},
    "paths": {
        "/v1/chat/completions": {"post": {
            "operationId": "createChatCompletion",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["model", "messages"],
                "properties": {
                    "model": {"type": "string"},
                    "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
                    "stream": {"type": "boolean"},
                    "temperature": {"type": "number"},
                    "top_p": {"type": "number"},
                    "max_tokens": {"type": "integer", "minimum": 1},
                    "max_completion_tokens": {"type": "integer", "minimum": 1},
                    "n": {"type": "integer", "minimum": 1, "maximum": 128},
                    "stop": {"oneOf": [{"type": "string"},
                                       {"type": "array", "items": {"type": "string"}}]},
                    "tools": {"type": "array", "items": {"type": "object"}},
                    "tool_choice": {},
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
                "properties": {"model": {"type": "string"},
                               "input": {"oneOf": [{"type": "string"}, {
                                   "type": "array", "items": {"type": "string"}}]},
                               "dimensions": {"type": "integer", "minimum": 1}}}}}},
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
                                           "401": _ERROR}}},
    },
    "components": {"schemas": {"Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["message", "type", "code"],
                                 "properties": {"message": {"type": "string"},
                                                "type": {"type": "string"},
                                                "code": {"type": "string"}}}}}}},
}
