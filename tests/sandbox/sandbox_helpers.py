"""Helpers shared by the sandbox tests: a raw HTTP client and an SSE parser."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from kanjia.sandbox import Sandbox

KEY = {"Authorization": "Bearer sk-sandbox-test"}
ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
GEMINI_HEADERS = {"x-goog-api-key": "AIza-test"}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str
    events: list[tuple[str | None, str]] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def data(self) -> list[Any]:
        """JSON payloads of the SSE ``data:`` lines, ``[DONE]`` excluded."""
        return [json.loads(d) for _, d in self.events if d != "[DONE]"]


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) per SSE frame; frames split on blank lines (\\n or \\r\\n)."""
    events: list[tuple[str | None, str]] = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in frame.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if data:
            events.append((name, "\n".join(data)))
    return events


class Client:
    """Raw requests against one sandbox, the way a vendor SDK would send them."""

    def __init__(self, sandbox: Sandbox, session: aiohttp.ClientSession) -> None:
        self.sandbox = sandbox
        self.session = session

    async def post(self, url: str, body: Any, headers: dict[str, str] | None = None) -> Reply:
        async with self.session.post(url, json=body, headers=headers) as response:
            text = await response.text()
            reply = Reply(response.status, dict(response.headers), text)
            if response.headers.get("Content-Type", "").startswith("text/event-stream"):
                reply.events = parse_sse(text)
            return reply

    async def chat(
        self, vendor: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Reply:
        body = {"model": "test-model", **body}
        url = self.sandbox.base_url(vendor) + "/chat/completions"
        return await self.post(url, body, KEY if headers is None else headers)

    async def messages(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> Reply:
        body = {"model": "claude-sonnet-4-5", "max_tokens": 1024, **body}
        url = self.sandbox.base_url("anthropic") + "/v1/messages"
        return await self.post(url, body, ANTHROPIC_HEADERS if headers is None else headers)

    async def gemini(
        self, model_action: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Reply:
        url = f"{self.sandbox.base_url('gemini')}/v1beta/models/{model_action}"
        return await self.post(url, body, GEMINI_HEADERS if headers is None else headers)

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.sandbox.url + path, json=body) as response:
            return response.status, await response.json()


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}
