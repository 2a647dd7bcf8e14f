"""The HTTP gateway: an ASGI app over the request path in gateway.py."""

from kanjia.server.app import KanjiaApp, Services, build_app
from kanjia.server.run import ServerThread, app_from_env, serve

__all__ = ["KanjiaApp", "ServerThread", "Services", "app_from_env", "build_app", "serve"]
