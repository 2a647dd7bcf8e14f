"""An incremental Server-Sent Events parser (text/event-stream framing)."""

from __future__ import annotations

__all__ = ["SSEParser"]


class SSEParser:
    """Feed raw bytes as they arrive; get back complete ``(event, data)`` pairs.

    Handles ``\\n``, ``\\r\\n`` and ``\\r`` line ends, multi-line data, comments
    (``: ping``) and events split across network reads.
    """

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._event: str | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        out: list[tuple[str | None, bytes]] = []
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = buf[start:nl]
            start = nl + 1
            if not line:
                if self._data:
                    out.append((self._event, b"\n".join(self._data)))
                self._event = None
                self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                self._event = line[6:].strip().decode("utf-8", "replace")
            # comments (":...") and unknown fields are ignored, per the spec
        self._buf = buf[start:]
        return out

    def flush(self) -> list[tuple[str | None, bytes]]:
        """End of stream: dispatch a final event that had no trailing blank line."""
        out = self.feed(b"\n\n") if self._buf or self._data else []
        self._buf = b""
        return out
