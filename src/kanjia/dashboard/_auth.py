"""Who may see the dashboard: the master key, or a session cookie derived from it.

The cookie never holds the key. It is ``v1.<expires>.<mac>`` with ``mac`` =
HMAC-SHA256(master key, "kanjia-ui|<expires>"): stateless, checked in constant
time, void when it expires or when the master key changes.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from http.cookies import CookieError, SimpleCookie

__all__ = ["COOKIE", "SESSION_S", "clear_cookie", "cookie_value",
           "make_session", "session_cookie", "session_valid"]

COOKIE = "kanjia_ui"
#: how long a browser session lasts
SESSION_S = 12 * 3600
_DOMAIN = "kanjia-ui|"


def _mac(master: str, expires: int) -> str:
    return hmac.new(master.encode(), f"{_DOMAIN}{expires}".encode(), hashlib.sha256).hexdigest()


def make_session(master: str, now: float | None = None, ttl_s: int = SESSION_S) -> str:
    expires = int(now if now is not None else time.time()) + ttl_s
    return f"v1.{expires}.{_mac(master, expires)}"


def session_valid(token: str | None, master: str, now: float | None = None) -> bool:
    if not token:
        return False
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != "v1" or not parts[1].isdigit():
        return False
    expires = int(parts[1])
    if expires < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(parts[2].encode(), _mac(master, expires).encode())


def cookie_value(header: str | None) -> str | None:
    """The session token from a ``Cookie`` request header, if any."""
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def session_cookie(token: str, secure: bool, ttl_s: int = SESSION_S) -> str:
    """The ``Set-Cookie`` value for a new session."""
    flags = "; Secure" if secure else ""
    return (f"{COOKIE}={token}; Path=/ui; Max-Age={ttl_s}; HttpOnly; "
            f"SameSite=Strict{flags}")


def clear_cookie(secure: bool) -> str:
    flags = "; Secure" if secure else ""
    return f"{COOKIE}=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Strict{flags}"
