"""The sandbox application: every vendor under its own path prefix."""

from __future__ import annotations

from aiohttp import web

from kanjia.sandbox._control import add_control_routes
from kanjia.sandbox._echo import echo_key_middleware, record_middleware
from kanjia.sandbox._settings import SandboxSettings
from kanjia.sandbox._state import STATE_KEY, SandboxState
from kanjia.sandbox._usage_routes import add_usage_routes
from kanjia.sandbox._vendors.anthropic import count_tokens_handler, messages_handler
from kanjia.sandbox._vendors.azure import add_azure_routes
from kanjia.sandbox._vendors.bedrock import add_bedrock_routes
from kanjia.sandbox._vendors.gemini import gemini_handler, gemini_models_handler
from kanjia.sandbox._vendors.openai_compat import chat_handler, embeddings_handler, models_handler
from kanjia.sandbox._vendors.openai_compat_responses import responses_handler
from kanjia.sandbox._vendors.openai_compat_vendors import OA_VENDORS

__all__ = ["VENDORS", "build_app"]

#: every vendor id the sandbox serves, each at ``/{vendor}``
VENDORS: tuple[str, ...] = (*OA_VENDORS, "anthropic", "gemini", "azure", "bedrock")

_CLIENT_MAX_SIZE = 64 * 1024 * 1024


def build_app(settings: SandboxSettings | None = None) -> web.Application:
    """An aiohttp application simulating every vendor, with its own state."""
    state = SandboxState(settings or SandboxSettings())
    app = web.Application(client_max_size=_CLIENT_MAX_SIZE,
                          middlewares=[record_middleware(state), echo_key_middleware])
    app[STATE_KEY] = state
    router = app.router
    for vendor in OA_VENDORS.values():
        router.add_post(f"/{vendor.id}/chat/completions", chat_handler(state, vendor))
        router.add_post(f"/{vendor.id}/embeddings", embeddings_handler(state, vendor))
        router.add_get(f"/{vendor.id}/models", models_handler(state, vendor))
    router.add_post("/openai/responses", responses_handler(state, OA_VENDORS["openai"]))
    router.add_post("/anthropic/v1/messages", messages_handler(state))
    router.add_post("/anthropic/v1/messages/count_tokens", count_tokens_handler(state))
    gemini = gemini_handler(state)
    gemini_models = gemini_models_handler(state)
    for version in ("v1beta", "v1"):
        router.add_post(f"/gemini/{version}/models/{{target}}", gemini)
        router.add_get(f"/gemini/{version}/models", gemini_models)
    add_azure_routes(router, state)
    add_bedrock_routes(router, state)
    add_control_routes(app, state, VENDORS)
    add_usage_routes(app, state, VENDORS)
    from kanjia.sandbox._batches import add_batch_routes

    add_batch_routes(app)  # the vendors' batch APIs (files + batches, Message Batches)
    return app
