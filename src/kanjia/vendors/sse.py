"""An incremental Server-Sent Events parser (text/event-stream framing)."""

from __future__ import annotations

__all__ = ["SSEParser"]


class SSEParser:
    """Feed raw bytes as they arrive; get back complete ``(event, data)`` pairs.

    Handles ``\\n``, ``\\r\\n`` and ``\\r`` line ends (also split across reads), multi-line
    data, comments (``: ping``) and events split across network reads.

    An event is parsed once it is whole (its blank line has arrived); the common ones, a
    single ``data: ...`` line with or without an ``event: ...`` line before it, take a
    slice or two.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""  # the start of an event whose blank line has not arrived

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        buf = self._buf + chunk if self._buf else chunk
        held = b""
        if b"\r" in buf:
            if buf[-1:] == b"\r":  # maybe the first half of a \r\n: decide with the next read
                buf, held = buf[:-1], b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        blocks = buf.split(b"\n\n")
        self._buf = blocks.pop() + held
        out: list[tuple[str | None, bytes]] = []
        for block in blocks:
            if block[:6] == b"data: " and b"\n" not in block:
                out.append((None, block[6:]))
            elif block[:7] == b"event: " and (nl := block.find(b"\n")) > 0 \
                    and block[nl + 1:nl + 7] == b"data: " and block.find(b"\n", nl + 1) < 0:
                out.append((block[7:nl].strip().decode("utf-8", "replace"), block[nl + 7:]))
            elif block:
                event = _event(block)
                if event is not None:
                    out.append(event)
        return out

    def flush(self) -> list[tuple[str | None, bytes]]:
        """End of stream: dispatch a final event that had no trailing blank line."""
        out = self.feed(b"\n\n") if self._buf else []
        self._buf = b""
        return out


def _event(block: bytes) -> tuple[str | None, bytes] | None:
    """One event's lines (no blank line among them); None when it carries no data."""
    name: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value[:1] == b" " else value)
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
        # comments (":...") and unknown fields are ignored, per the spec
    return (name, b"\n".join(data)) if data else None
