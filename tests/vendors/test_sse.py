from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kanjia.vendors import SSEParser


def test_events_split_across_reads() -> None:
    p = SSEParser()
    assert p.feed(b"data: {\"a\"") == []
    assert p.feed(b": 1}\n") == []
    assert p.feed(b"\nevent: x\ndata: two\n\n") == [(None, b'{"a": 1}'), ("x", b"two")]


def test_crlf_comments_and_multiline() -> None:
    p = SSEParser()
    out = p.feed(b": ping\r\n\r\ndata: a\r\ndata: b\r\n\r\n")
    assert out == [(None, b"a\nb")]


def test_flush_dispatches_unterminated_event() -> None:
    p = SSEParser()
    assert p.feed(b"data: [DONE]") == []
    assert p.flush() == [(None, b"[DONE]")]


@given(st.lists(st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b
                                                          and b"\r" not in b), max_size=8),
       st.integers(min_value=1, max_value=7))
def test_any_split_gives_the_same_events(payloads: list[bytes], step: int) -> None:
    stream = b"".join(b"data: " + p + b"\n\n" for p in payloads)
    p = SSEParser()
    out = []
    for i in range(0, len(stream), step):
        out.extend(p.feed(stream[i:i + step]))
    out.extend(p.flush())
    assert [d for _, d in out] == payloads
