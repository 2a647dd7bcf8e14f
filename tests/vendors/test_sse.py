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


def test_crlf_split_between_reads_is_one_line_end() -> None:
    # a read that ends between \r and \n must not read as a blank line (end of event)
    p = SSEParser()
    assert p.feed(b"data: a\r") == []
    assert p.feed(b"\ndata: b\r\n\r\n") == [(None, b"a\nb")]


@given(st.lists(st.tuples(st.sampled_from(["", "x", "response.output_text.delta"]),
                          st.sampled_from(["\n", "\r\n", "\r"]),
                          st.lists(st.binary(min_size=0, max_size=30).filter(
                              lambda b: b"\n" not in b and b"\r" not in b),
                              min_size=1, max_size=3)), max_size=6),
       st.integers(min_value=1, max_value=9))
def test_any_split_of_named_multiline_events(events: list[tuple[str, str, list[bytes]]],
                                             step: int) -> None:
    end_of = {"\n": b"\n", "\r\n": b"\r\n", "\r": b"\r"}
    stream = b""
    for name, eol, lines in events:
        nl = end_of[eol]
        head = b"event: " + name.encode() + nl if name else b""
        stream += head + b"".join(b"data: " + line + nl for line in lines) + nl
    p = SSEParser()
    out = []
    for i in range(0, len(stream), step):
        out.extend(p.feed(stream[i:i + step]))
    out.extend(p.flush())
    assert out == [(name or None, b"\n".join(lines)) for name, _, lines in events]
