"""API keys in every vendor's real shape (made-up values), and a gateway config that sends
each vendor's traffic to the sandbox with its own key (not the sandbox mode, whose one
``sandbox-key`` would hide a shape the redactor misses)."""

from __future__ import annotations

from typing import Any

#: environment variable -> a key of that vendor's real shape
KEYS: dict[str, str] = {
    "DEEPSEEK_API_KEY": "sk-5f0c3e2b9a8d4c71b6e0f1a2d3c4b5a6",                     # sk-
    "DEEPSEEK_KEY_B": "sk-7d1e2c3b4a5f60718293a4b5c6d7e8f9",                       # a deployment's
    "DASHSCOPE_API_KEY": "8c6f1d2e-3b4a-4c5d-9e8f-7a6b5c4d3e2f",                  # UUID
    "ZHIPUAI_API_KEY": "0f1e2d3c4b5a69788796a5b4c3d2e1f0.Xk3pQ9rT2vW8yZ1a",        # id.secret
    "MOONSHOT_API_KEY": "sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6l",   # sk- (48)
    "MINIMAX_API_KEY": ("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJHcm91cE5hbWUiOiJrYW5qaWEiLCJV"
                        "c2VyTmFtZSI6InRlc3QiLCJTdWJqZWN0SUQiOiIxOTIzIn0.c2lnbmF0dXJlLXdpdGgt"
                        "ZW5vdWdoLWJ5dGVzLXRvLWxvb2stcmVhbA"),                    # JWT
    "ARK_API_KEY": "3f2a9c1e-7b4d-4e8a-9c2f-5d6e7f8a9b0c",                        # UUID
    "QIANFAN_API_KEY": "bce-v3/ALTAK-Qw3rTy6uIo9pAs2dFg5hJ/7c1d2e3f4a5b6c7d8e9f0a1b2c3d",
    "QIANFAN_APPID": "app-Zx8cVb5nMq2wEr7t",                                       # a header secret
    "HUNYUAN_API_KEY": "AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA",                   # Tencent AKID
    "SPARK_API_PASSWORD": "5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d:ZmE3YzQ5NjE3ZDgxNjQ5YjYy",  # key:secret
    "SILICONFLOW_API_KEY": "sk-qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzx",
    "OPENAI_API_KEY": "sk-proj-Vq2Lr8Nt4Xw6Zy1Ab3Cd5Ef7Gh9Ij0Kl2Mn4Op6Qr8St0Uv2Wx4Yz6",
    "OPENROUTER_API_KEY": ("sk-or-v1-9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
                           "3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"),
    "ANTHROPIC_API_KEY": ("sk-ant-api03-Hx7Jk2Lm9Np4Qr6St1Uv8Wx3Yz5Ab0Cd-"
                          "EfGhIjKlMnOpQrStUvWxYz012345AA"),
    "GEMINI_API_KEY": "AIzaSyD3k8Lm2Np7Qr1St6Uv0Wx5Yz9Ab4Cd8Ef",
    "KANJIA_MASTER_KEY": "c0ffee42-9d8e-4f7a-b6c5-d4e3f2a1b0c9",                 # a UUID master key
}

#: every keyed vendor the sandbox serves
VENDORS = ("deepseek", "qwen", "zhipu", "moonshot", "minimax", "doubao", "qianfan", "hunyuan",
           "spark", "siliconflow", "openai", "openrouter", "anthropic", "gemini")
#: one chat model of each (the sandbox answers any name; these are in the catalog)
MODELS = {"deepseek": "deepseek-chat", "qwen": "qwen-plus", "zhipu": "glm-4-flash",
          "moonshot": "moonshot-v1-8k", "minimax": "MiniMax-Text-01",
          "doubao": "doubao-pro-32k", "qianfan": "ernie-4.0-8k", "hunyuan": "hunyuan-lite",
          "spark": "lite", "siliconflow": "Qwen/Qwen2.5-7B-Instruct", "openai": "gpt-4o-mini",
          "openrouter": "openai/gpt-4o-mini", "anthropic": "claude-3-5-haiku-20241022",
          "gemini": "gemini-2.0-flash"}


def vendor_config(sandbox_url: str) -> dict[str, Any]:
    """``[vendors.*]``: each vendor at its sandbox path; deepseek with two deployments,
    the second keyed by an environment variable only the config names."""
    out: dict[str, Any] = {v: {"base_url": f"{sandbox_url}/{v}"} for v in VENDORS}
    out["deepseek"]["deployments"] = [{"name": "a"},
                                      {"name": "b", "api_key_env": "DEEPSEEK_KEY_B"}]
    return out


def secret_parts(secrets: list[str]) -> list[str]:
    """Each secret and its ``:``/``.``/``/``-separated parts of 8+ characters (a vendor
    may quote only the secret half of ``key:secret``)."""
    import re

    out = set(secrets)
    for s in secrets:
        out.update(p for p in re.split(r"[:./]", s) if len(p) >= 8)
    # the common JWT header is a part of every JWT: not a secret of ours by itself
    out.discard("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9")
    return sorted(out, key=len, reverse=True)
