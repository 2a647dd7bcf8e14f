"""Parsing a Gemini ``generateContent`` request into a neutral ``Ask``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from kanjia.sandbox._cache import Segments
from kanjia.sandbox._directives import Directives, parse_directives
from kanjia.sandbox._json import as_dict, int_or_none
from kanjia.sandbox._plan import Ask
from kanjia.sandbox._tokens import IMAGE_TOKENS, PRIMING, text_tokens
from kanjia.sandbox._tools import ToolCall, example_args

__all__ = ["GenerateRequest", "parse_generate", "parts_text"]

#: model families that think by default (thoughtsTokenCount) unless thinkingBudget is 0
_THINKING_MODELS = ("gemini-2.5", "gemini-3")
_MAX_CANDIDATES = 8


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    model: str
    ask: Ask
    segments: Segments
    directives: Directives
    include_thoughts: bool


def parts_text(parts: Any) -> tuple[str, int]:
    """Text of a ``parts`` list and extra tokens of its non-text parts."""
    if not isinstance(parts, list):
        return "", 0
    texts: list[str] = []
    extra = 0
    for part in parts:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif "functionCall" in part or "functionResponse" in part:
            texts.append(orjson.dumps(part).decode())
        elif "inlineData" in part or "fileData" in part:
            extra += IMAGE_TOKENS
    return "\n".join(texts), extra


def _declarations(data: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for tool in data.get("tools") or ():
        if isinstance(tool, dict):
            found += [d for d in tool.get("functionDeclarations") or () if isinstance(d, dict)]
    return found


def _chosen_tool(
    data: dict[str, Any], directives: Directives, ends_with_user_text: bool
) -> ToolCall | None:
    declarations = _declarations(data)
    config = as_dict(as_dict(data.get("toolConfig")).get("functionCallingConfig"))
    mode = str(config.get("mode", "AUTO")).upper()
    if not declarations or mode == "NONE":
        return None
    allowed = config.get("allowedFunctionNames") or []
    candidates = [d for d in declarations if d.get("name") in allowed] or declarations
    if mode != "ANY" and not (directives.tool and ends_with_user_text):
        return None
    chosen = candidates[0]
    schema = chosen.get("parameters") or chosen.get("parametersJsonSchema")
    return ToolCall(str(chosen.get("name", "tool")), example_args(schema))


def parse_generate(model: str, data: Any) -> GenerateRequest:
    """The request's ``Ask``; ``ValueError`` when it is not a generate request."""
    if not isinstance(data, dict):
        raise ValueError("Invalid JSON payload received.")
    contents = data.get("contents")
    if not isinstance(contents, list) or not contents:
        raise ValueError("* GenerateContentRequest.contents: contents is not specified")
    segments = Segments()
    segments.add_tools(data.get("tools"))
    system = data.get("systemInstruction")
    if isinstance(system, dict):
        text, extra = parts_text(system.get("parts"))
        segments.add(text, text_tokens(text) + extra)
    last_user, ends_with_user_text = "", False
    for content in contents:
        if not isinstance(content, dict):
            raise ValueError("* GenerateContentRequest.contents: each content must be an object")
        text, extra = parts_text(content.get("parts"))
        segments.add(text, text_tokens(text) + extra)
        if content.get("role", "user") == "user":
            texts = [
                p["text"]
                for p in content.get("parts") or ()
                if isinstance(p, dict) and isinstance(p.get("text"), str)
            ]
            last_user, ends_with_user_text = "\n".join(texts), bool(texts)
        else:
            ends_with_user_text = False
    directives = parse_directives(last_user)
    config = as_dict(data.get("generationConfig"))
    thinking = as_dict(config.get("thinkingConfig"))
    stops = config.get("stopSequences")
    ask = Ask(
        prompt_tokens=segments.tokens + PRIMING,
        last_user=last_user,
        directives=directives,
        max_tokens=int_or_none(config.get("maxOutputTokens")),
        n=max(1, min(int_or_none(config.get("candidateCount")) or 1, _MAX_CANDIDATES)),
        json_mode=config.get("responseMimeType") == "application/json",
        tool=_chosen_tool(data, directives, ends_with_user_text),
        stop=tuple(s for s in stops if isinstance(s, str)) if isinstance(stops, list) else (),
        reasoning=model.startswith(_THINKING_MODELS) and thinking.get("thinkingBudget") != 0,
    )
    return GenerateRequest(
        model, ask, segments, directives, thinking.get("includeThoughts") is True
    )
