"""Libraries behind pip extras: the core install serves the gateway; a command that needs
more checks for its library first and, when it is missing, says in one line which extra
installs it (``charts``: matplotlib; ``catalog``: genai-prices; ``lab``: the router lab's)."""

from __future__ import annotations

from importlib.util import find_spec

from kanjia.errors import KanjiaError

__all__ = ["MissingExtra", "require"]


class MissingExtra(KanjiaError):
    """A command needs a library of a pip extra that is not installed."""

    code = "missing_extra"


def require(module: str, extra: str, purpose: str, package: str | None = None) -> None:
    """Raise :class:`MissingExtra` unless ``module`` (of the distribution ``package``) can
    be imported; it is not imported here."""
    if find_spec(module) is None:
        raise MissingExtra(f"{purpose} needs {package or module}: pip install 'kanjia[{extra}]'")
