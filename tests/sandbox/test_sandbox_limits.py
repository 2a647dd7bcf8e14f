"""The sandbox refuses what the vendor documents it refuses: an output limit above the
model's, a chat request to an embeddings model."""

from __future__ import annotations

from sandbox_helpers import Client, user


async def test_openai_output_limit(client: Client) -> None:
    for name in ("max_tokens", "max_completion_tokens"):
        reply = await client.chat("openai", {**user("hi"), "model": "gpt-4o", name: 16385})
        assert reply.status == 400
        err = reply.json["error"]
        assert (err["param"], err["code"], err["type"]) == (name, "invalid_value",
                                                            "invalid_request_error")
        assert "at most 16384 completion tokens" in err["message"]
    ok = await client.chat("openai", {**user("hi [[sandbox:tokens=3]]"), "model": "gpt-4o",
                                      "max_tokens": 16384})
    assert ok.status == 200
    # a model the table does not list is not limited (the sandbox serves any name)
    other = await client.chat("openai", {**user("hi"), "max_tokens": 10**6})
    assert other.status == 200


async def test_chat_to_an_embeddings_model(client: Client) -> None:
    reply = await client.chat("openai", {**user("hi"), "model": "text-embedding-3-small"})
    assert reply.status == 404
    assert "not a chat model" in reply.json["error"]["message"]


async def test_anthropic_output_limit(client: Client) -> None:
    reply = await client.messages({**user("hi"), "model": "claude-3-5-haiku-20241022",
                                   "max_tokens": 8193})
    assert reply.status == 400
    err = reply.json["error"]
    assert err["type"] == "invalid_request_error"
    assert err["message"] == ("max_tokens: 8193 > 8192, which is the maximum allowed number "
                              "of output tokens for claude-3-5-haiku-20241022")
    ok = await client.messages({**user("hi"), "model": "claude-3-5-haiku-20241022",
                                "max_tokens": 8192})
    assert ok.status == 200
