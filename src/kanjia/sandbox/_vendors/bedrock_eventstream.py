"""AWS event-stream framing (application/vnd.amazon.eventstream), written by hand: the
sandbox is the oracle the Bedrock adapter's botocore decoder is checked against.

A message: a 12-byte prelude (total length, headers length, both big-endian uint32,
and the CRC32 of those 8 bytes), the headers (name length uint8, name, value type
uint8 = 7 for a string, value length uint16, value), the payload, and the CRC32 of
everything before it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

__all__ = ["event_frame", "exception_frame", "frame"]

_STRING = 7


def frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    raw = b"".join(
        struct.pack("!B", len(n := name.encode())) + n
        + struct.pack("!BH", _STRING, len(v := value.encode())) + v
        for name, value in headers.items())
    total = 12 + len(raw) + len(payload) + 4
    head = struct.pack("!II", total, len(raw))
    prelude = head + struct.pack("!I", zlib.crc32(head))
    body = prelude + raw + payload
    return body + struct.pack("!I", zlib.crc32(body))


def event_frame(event_type: str, payload: bytes) -> bytes:
    return frame({":event-type": event_type, ":content-type": "application/json",
                  ":message-type": "event"}, payload)


def exception_frame(exception_type: str, payload: bytes) -> bytes:
    return frame({":exception-type": exception_type, ":content-type": "application/json",
                  ":message-type": "exception"}, payload)
