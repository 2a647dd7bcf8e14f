"""The body shapes of the OpenAI-compatible vendors' error answers.

Each vendor keeps its own body shape; the values (status, codes, messages per fault) are
data, in ``openai_compat.toml`` under ``[vendors.<key>.errors.<fault>]``, and a row
names its shape (the vendor's ``error_shape`` unless the row says ``shape``). A shape is
called with the row's fields as keywords, so a misspelt field fails at import. 429s carry
``Retry-After`` except balance errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kanjia.sandbox._errors import ErrorReply, error_reply

__all__ = ["SHAPES", "error_replies"]

_REQ = "021700000000000sandbox0000000000000000000000000000"


def openai(message: str, type: str | None = None, code: Any = None, param: Any = None
           ) -> dict[str, Any]:
    """OpenAI's ``{"error": {"message", "type", "param", "code"}}`` (and the many that copy it)."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def zhipu(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def dashscope(code: str, message: str) -> dict[str, Any]:
    error = {"code": code, "param": None, "message": message, "type": code}
    return {"error": error, "request_id": "sandbox-0000-0000-0000-000000000000"}


def ark(code: str, type: str, message: str) -> dict[str, Any]:
    message = f"{message} Request id: {_REQ}"
    return {"error": {"code": code, "message": message, "param": "", "type": type}}


def qianfan(code: str, type: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "type": type}, "id": "as-sandbox0000"}


def minimax(code: int, message: str) -> dict[str, Any]:
    """MiniMax answers HTTP 200 with the error in ``base_resp``."""
    return {
        "id": "sandbox",
        "choices": None,
        "created": 0,
        "model": "",
        "object": "chat.completion",
        "usage": {"total_tokens": 0},
        "input_sensitive": code == 1026,
        "output_sensitive": False,
        "input_sensitive_type": 1 if code == 1026 else 0,
        "output_sensitive_type": 0,
        "base_resp": {"status_code": code, "status_msg": message},
    }


def siliconflow(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "data": None}


def text(message: str) -> str:
    """A plain-text body."""
    return message


def openrouter(code: int, message: str, metadata: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "code": code}
    if metadata:
        body["metadata"] = metadata
    return {"error": body, "user_id": "user_sandbox"}


def bare(message: str) -> dict[str, Any]:
    return {"error": message}


def llamacpp(code: int, message: str, type: str, n_prompt_tokens: int = 0, n_ctx: int = 0
             ) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "type": type}
    if n_ctx:
        error |= {"n_prompt_tokens": n_prompt_tokens, "n_ctx": n_ctx}
    return {"error": error}


def mistral(message: str, type: str, code: str | None = None) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": type, "param": None, "code": code}


def xai(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "error": message}


def cerebras(message: str, type: str, code: str | None = None, param: str | None = None
             ) -> dict[str, Any]:
    return {"message": message, "type": type, "param": param, "code": code}


def novita(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"code": code, "reason": reason, "message": message, "metadata": {}}


def cohere(message: str) -> dict[str, Any]:
    return {"id": "00000000-sandbox-0000-0000-000000000000", "message": message}


def html(title: str) -> str:
    """An nginx/openresty HTML error page (Perplexity's 401)."""
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>"
            f"{title}</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n")


#: shape name (as written in ``openai_compat.toml``) -> the body it builds
SHAPES: Mapping[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (openai, zhipu, dashscope, ark, qianfan, minimax, siliconflow, text, openrouter,
              bare, llamacpp, mistral, xai, cerebras, novita, cohere, html)
}


def error_replies(shape: str, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, ErrorReply]:
    """A vendor's error answers, fault -> reply, from its ``errors`` rows: each row's
    ``status``, optional ``shape`` (else ``shape``) and the shape's fields."""
    replies = {}
    for fault, row in rows.items():
        fields = dict(row)
        status = fields.pop("status")
        body = SHAPES[fields.pop("shape", shape)](**fields)
        replies[fault] = error_reply(status, body, status == 429 and fault != "balance")
    return replies
