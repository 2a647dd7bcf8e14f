"""What a client's model name may look like, checked where requests come in.

A model name ends up in an upstream URL for some vendors (Gemini's
``/v1beta/models/{model}:generateContent``). The adapters percent-escape it as one path
segment, and on top of that the gateway refuses, with a 400, names that could only be an
attempt to reach another path or to smuggle a query: ``..``, ``?``, ``#``, ``%``, ``\\``,
whitespace and control characters, and names longer than ``MAX_MODEL_ID`` characters.
Real model ids (``deepseek/deepseek-chat``, ``openai/gpt-4o:online``,
``@cf/meta/llama-3-8b``, ``qwen2.5:7b``) contain none of these.
"""

from __future__ import annotations

import re
from typing import Any

from kanjia.errors import BadRequest

__all__ = ["MAX_MODEL_ID", "check_model_id"]

MAX_MODEL_ID = 256
#: whitespace (Unicode included), C0/C1 controls, DEL, and the URL/path metacharacters
_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029?#%\\]|\.\.")


def check_model_id(model: Any) -> str:
    """``model`` if it is a usable model id, else BadRequest naming what is wrong."""
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a non-empty string")
    if len(model) > MAX_MODEL_ID:
        raise BadRequest(f"'model' is longer than {MAX_MODEL_ID} characters")
    bad = _FORBIDDEN.search(model)
    if bad is not None:
        raise BadRequest(f"'model' may not contain {bad.group()!r}: a model id holds no '..', "
                         "'?', '#', '%', backslash, whitespace or control character")
    return model
