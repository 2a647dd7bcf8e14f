"""The HTTP gateway: an ASGI app over the request path in gateway.py."""

from kanjia.server.app import KanjiaApp, Services
from kanjia.server.run import ServerThread, app_from_env, serve
from kanjia.server.wiring import build_app

__all__ = ["KanjiaApp", "ServerThread", "Services", "app_from_env", "build_app", "serve"]
