"""The gateway's OpenAPI document (served at /openapi.json; schemathesis fuzzes it).

It describes what the server accepts, no more: a request valid here is not refused as
malformed by ``server.validate`` or ``server.model_ids`` (model ids, content parts,
tools, tool calls and tool choice carry the same rules), nor by the Messages and Responses
translators (``kanjia.ingress``). Those two APIs take more than is written here (tool
results, which must answer an earlier tool call; hosted tools; reasoning items): the
document lists the part a schema can promise."""

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

# -- the Anthropic Messages API (errors in Anthropic's shape) ---------------------------------
_A_ERROR = {"description": "Anthropic-style error", "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/AnthropicError"}}}}
_A_ERRORS = {str(code): _A_ERROR for code in (400, 401, 402, 403, 404, 413, 429, 502, 503,
                                              504)}
_CACHE_CONTROL = {"type": "object", "required": ["type"], "additionalProperties": False,
                  "properties": {"type": {"type": "string", "enum": ["ephemeral"]},
                                 "ttl": {"type": "string", "enum": ["5m", "1h"]}}}
_A_TEXT = {"type": "object", "required": ["type", "text"],
           "properties": {"type": {"type": "string", "enum": ["text"]},
                          "text": {"type": "string"}, "cache_control": _CACHE_CONTROL}}
_A_IMAGE = {"type": "object", "required": ["type", "source"],
            "properties": {"type": {"type": "string", "enum": ["image"]},
                           "cache_control": _CACHE_CONTROL,
                           "source": {"oneOf": [
                               {"type": "object", "required": ["type", "media_type", "data"],
                                "properties": {"type": {"type": "string", "enum": ["base64"]},
                                               "media_type": {"type": "string"},
                                               "data": {"type": "string"}}},
                               {"type": "object", "required": ["type", "url"],
                                "properties": {"type": {"type": "string", "enum": ["url"]},
                                               "url": {"type": "string"}}}]}}}
_A_TOOL_USE = {"type": "object", "required": ["type", "id", "name", "input"],
               "properties": {"type": {"type": "string", "enum": ["tool_use"]},
                              "id": {"type": "string", "minLength": 1},
                              "name": {"type": "string"}, "input": {"type": "object"},
                              "cache_control": _CACHE_CONTROL}}
_A_THINKING = {"type": "object", "required": ["type", "thinking", "signature"],
               "properties": {"type": {"type": "string", "enum": ["thinking"]},
                              "thinking": {"type": "string"},
                              "signature": {"type": "string"}}}
_A_USER = {"type": "object", "required": ["role", "content"],
           "properties": {"role": {"type": "string", "enum": ["user"]},
                          "content": {"oneOf": [
                              {"type": "string"},
                              {"type": "array", "minItems": 1,
                               "items": {"oneOf": [_A_TEXT, _A_IMAGE]}}]}}}
_A_ASSISTANT = {"type": "object", "required": ["role", "content"],
                "properties": {"role": {"type": "string", "enum": ["assistant"]},
                               "content": {"oneOf": [
                                   {"type": "string"},
                                   # text or a tool call first: a turn of thinking alone
                                   # says nothing another model can read
                                   {"type": "array", "minItems": 1,
                                    "items": {"oneOf": [_A_TEXT, _A_TOOL_USE]}}]}}}
_A_TOOL = {"type": "object", "required": ["name", "input_schema"],
           "properties": {"name": {"type": "string", "minLength": 1},
                          "description": {"type": "string"},
                          "input_schema": {"type": "object"},
                          "cache_control": _CACHE_CONTROL}}
_A_THINKING_CONFIG = {"oneOf": [
    {"type": "object", "required": ["type", "budget_tokens"],
     "properties": {"type": {"type": "string", "enum": ["enabled"]},
                    "budget_tokens": {"type": "integer", "minimum": 1, "maximum": _INT64}}},
    {"type": "object", "required": ["type"],
     "properties": {"type": {"type": "string", "enum": ["disabled", "adaptive"]}}}]}


def _messages_body(*, count: bool) -> dict[str, Any]:
    """A Messages request (``count``: the count_tokens form, without max_tokens/stream)."""
    props: dict[str, Any] = {
        "model": _MODEL,
        "messages": {"type": "array", "minItems": 1,
                     "items": {"oneOf": [_A_USER, _A_ASSISTANT]}},
        "system": {"oneOf": [{"type": "string"},
                             {"type": "array", "items": _A_TEXT}]},
        "tools": {"type": "array", "items": _A_TOOL},
        "tool_choice": {"type": "object", "required": ["type"], "properties": {
            "type": {"type": "string", "enum": ["auto", "any", "none"]},
            "disable_parallel_tool_use": {"type": "boolean"}}},
        "thinking": _A_THINKING_CONFIG,
    }
    if not count:
        props.update({
            "max_tokens": {"type": "integer", "minimum": 1, "maximum": MAX_OUTPUT_TOKENS},
            "stream": {"type": "boolean"},
            "temperature": {"type": "number"},
            "top_p": {"type": "number"},
            "top_k": {"type": "integer", "minimum": 0},
            "stop_sequences": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object",
                         "properties": {"user_id": {"type": "string"}}},
        })
    required = ["model", "messages"] if count else ["model", "max_tokens", "messages"]
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": required, "properties": props}}}}


# -- the OpenAI Responses API ------------------------------------------------------------
_R_MESSAGE = {"type": "object", "required": ["role", "content"],
              "properties": {"type": {"type": "string", "enum": ["message"]},
                             "role": {"type": "string",
                                      "enum": ["user", "assistant", "system", "developer"]},
                             "content": {"type": "string"}}}
_R_TOOL = {"type": "object", "required": ["type", "name"],
           "properties": {"type": {"type": "string", "enum": ["function"]},
                          "name": {"type": "string", "minLength": 1},
                          "description": {"type": "string"},
                          "parameters": {"type": "object"},
                          "strict": {"type": "boolean"}}}
_R_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["model", "input"],
    "properties": {
        "model": _MODEL,
        "input": {"oneOf": [{"type": "string"},
                            {"type": "array", "minItems": 1, "items": _R_MESSAGE}]},
        "instructions": {"type": "string"},
        "max_output_tokens": {"type": "integer", "minimum": 1,
                              "maximum": MAX_OUTPUT_TOKENS},
        "temperature": {"type": "number"},
        "top_p": {"type": "number"},
        "stream": {"type": "boolean"},
        "store": {"type": "boolean"},
        "parallel_tool_calls": {"type": "boolean"},
        "previous_response_id": {"type": "string", "minLength": 1},
        "tools": {"type": "array", "items": _R_TOOL},
        "tool_choice": {"type": "string", "enum": ["none", "auto", "required"]},
        "reasoning": {"type": "object", "properties": {"effort": {
            "type": "string", "enum": ["low", "medium", "high"]}}},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
    }}}}}
_ID = {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_.:-]+$"}


def _id_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _ID}


_R_ITEM_ERRORS = {"401": _ERROR, "404": _ERROR}
#: the Responses, Files and Batches paths (OpenAI's shapes)
_MORE_PATHS: dict[str, Any] = {
    "/v1/messages": {"post": {
        "operationId": "createMessage",
        "summary": "Anthropic Messages API (passed through to Anthropic, else translated)",
        "requestBody": _messages_body(count=False),
        "responses": {"200": {"description": "A message (or an SSE stream of its events)"},
                      **_A_ERRORS}}},
    "/v1/messages/count_tokens": {"post": {
        "operationId": "countMessageTokens",
        "summary": "The prompt's input tokens: Anthropic's count for an Anthropic "
                   "model, else kanjia's estimate (x-kanjia-estimate: true)",
        "requestBody": _messages_body(count=True),
        "responses": {"200": {"description": "{\"input_tokens\": n}"}, **_A_ERRORS}}},
    "/v1/responses": {"post": {
        "operationId": "createResponse",
        "summary": "OpenAI Responses API (translated to the chosen vendor)",
        "requestBody": _R_BODY,
        "responses": {"200": {"description": "A response (or an SSE stream of its events)"},
                      "400": _ERROR, "401": _ERROR, "402": _ERROR, "403": _ERROR,
                      "404": _ERROR, "413": _ERROR, "429": _ERROR, "502": _ERROR,
                      "503": _ERROR, "504": _ERROR}}},
    "/v1/responses/{response_id}": {
        "get": {"operationId": "getResponse", "parameters": [_id_param("response_id")],
                "responses": {"200": {"description": "A stored response"}, **_R_ITEM_ERRORS}},
        "delete": {"operationId": "deleteResponse",
                   "parameters": [_id_param("response_id")],
                   "responses": {"200": {"description": "Deleted"}, **_R_ITEM_ERRORS}}},
    "/v1/responses/{response_id}/input_items": {"get": {
        "operationId": "listResponseInputItems",
        "parameters": [_id_param("response_id"),
                       {"name": "limit", "in": "query", "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                       {"name": "order", "in": "query", "required": False,
                        "schema": {"type": "string", "enum": ["asc", "desc"]}},
                       {"name": "after", "in": "query", "required": False,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The response's input items"},
                      "400": _ERROR, **_R_ITEM_ERRORS}}},
    "/v1/files": {"post": {
        "operationId": "createFile",
        "summary": "Upload a JSONL batch input file",
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["purpose", "file"],
            "properties": {"purpose": {"type": "string", "enum": ["batch"]},
                           "file": {"type": "string", "format": "binary"}}}}}},
        "responses": {"200": {"description": "A file object"}, "400": _ERROR,
                      "401": _ERROR, "413": _ERROR}}},
    "/v1/files/{file_id}": {"get": {
        "operationId": "getFile", "parameters": [_id_param("file_id")],
        "responses": {"200": {"description": "A file object"}, **_R_ITEM_ERRORS}}},
    "/v1/files/{file_id}/content": {"get": {
        "operationId": "getFileContent", "parameters": [_id_param("file_id")],
        "responses": {"200": {"description": "The file's bytes"}, **_R_ITEM_ERRORS}}},
    "/v1/batches": {
        "post": {"operationId": "createBatch",
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": {"type": "object",
                                "required": ["input_file_id", "endpoint", "completion_window"],
                                "properties": {
                                    "input_file_id": _ID,
                                    "endpoint": {"type": "string",
                                                 "enum": ["/v1/chat/completions",
                                                          "/v1/embeddings"]},
                                    "completion_window": {"type": "string",
                                                          "enum": ["24h"]},
                                    "metadata": {"type": "object", "maxProperties": 16,
                                                 "additionalProperties": {
                                                     "type": "string"}}}}}}},
                 "responses": {"200": {"description": "A batch object"}, "400": _ERROR,
                               "401": _ERROR, "402": _ERROR, "404": _ERROR, "413": _ERROR,
                               "429": _ERROR}},
        "get": {"operationId": "listBatches",
                "parameters": [{"name": "limit", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                               {"name": "after", "in": "query", "required": False,
                                "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The key's batches"}, "400": _ERROR,
                              "401": _ERROR}}},
    "/v1/batches/{batch_id}": {"get": {
        "operationId": "getBatch", "parameters": [_id_param("batch_id")],
        "responses": {"200": {"description": "A batch object"}, **_R_ITEM_ERRORS}}},
    "/v1/batches/{batch_id}/cancel": {"post": {
        "operationId": "cancelBatch", "parameters": [_id_param("batch_id")],
        "responses": {"200": {"description": "The batch, cancelling"}, **_R_ITEM_ERRORS}}},
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
        **_MORE_PATHS,
    },
    "components": {"schemas": {"Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["message", "type", "code"],
                                 "properties": {"message": {"type": "string"},
                                                "type": {"type": "string"},
                                                "code": {"type": "string"}}}}},
        "AnthropicError": {
            "type": "object", "required": ["type", "error"],
            "properties": {"type": {"type": "string", "enum": ["error"]},
                           "error": {"type": "object", "required": ["type", "message"],
                                     "properties": {"type": {"type": "string"},
                                                    "message": {"type": "string"}}}}}}},
}
