"""Reading an export file in the format asked for, or the one it turns out to be."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kanjia.reconcile._bailian import looks_like_bailian, parse_bailian
from kanjia.reconcile._csv import decode, parse_csv
from kanjia.reconcile._export import Export, ExportError
from kanjia.reconcile._openai import (
    COMPLETIONS,
    COSTS,
    EMBEDDINGS,
    check_buckets,
    json_pages,
    parse_costs,
    parse_usage,
    result_kind,
)

__all__ = ["FORMATS", "load_export", "parse_tz"]

#: --format values ("auto": detect from the content)
FORMATS = ("auto", "openai-usage", "openai-costs", "csv", "bailian")


def parse_tz(text: str) -> tuple[tzinfo, str]:
    """``UTC``, an IANA zone (``Asia/Shanghai``) or an offset (``+08:00``)."""
    text = text.strip()
    if text.upper() in ("UTC", "Z"):
        return UTC, "UTC"
    if text[:1] in "+-" and len(text) == 6 and text[3] == ":" and \
            text[1:3].isdigit() and text[4:].isdigit():
        sign = -1 if text[0] == "-" else 1
        return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:]))), text
    try:
        return ZoneInfo(text), text
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--tz {text!r} is not UTC, an IANA zone or an offset like "
                         "+08:00") from None


def _detect(text: str) -> str:
    head = text.lstrip("\ufeff \t\r\n")[:1]
    if head not in "{[":
        return "csv"
    if looks_like_bailian(text):
        return "bailian"
    return "openai"


def load_export(path: Path, fmt: str = "auto", *, mapping: dict[str, str] | None = None,
                tz: str = "UTC", currency: str | None = None) -> Export:
    """The export in ``path``; ``ExportError`` (one line) when it is not one."""
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}")
    source = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror or exc}") from None
    text = decode(raw)
    if not text.strip():
        raise ExportError(f"{source} is empty")
    kind = _detect(text) if fmt == "auto" else fmt
    if kind == "csv":
        if mapping is None:
            first = text.lstrip("\ufeff").splitlines()[0][:200]
            raise ExportError(f"{source}: a CSV export needs --map date=COLUMN,model=COLUMN,"
                              f"... naming its columns (its header: {first})")
        zone, name = parse_tz(tz)
        return parse_csv(text, source, mapping, zone, name, currency)
    if kind == "bailian":
        zone, name = parse_tz(tz)
        return parse_bailian(text, source, zone, name, currency)
    pages = json_pages(text, source)
    if kind == "openai":
        check_buckets(pages, source)
        found = result_kind(pages)
        if found in (COMPLETIONS, EMBEDDINGS):
            kind = "openai-usage"
        elif found == COSTS:
            kind = "openai-costs"
        elif found is None:
            raise ExportError(f"{source}: no results to tell a usage export from a costs "
                              "export: pass --format openai-usage or openai-costs")
        else:
            raise ExportError(f"{source}: expected results with 'object': '{COMPLETIONS}' "
                              f"or '{COSTS}', found '{found}'")
    if kind == "openai-usage":
        return parse_usage(pages, source)
    return parse_costs(pages, source)
