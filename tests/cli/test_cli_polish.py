"""CLI polish (issue 20): status under column headers, one option name per idea (the old
ones still work, hidden), help texts whose first line is a whole sentence, decimals in
JSON as plain numbers, route explain --all and "unrated"."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from kanjia.cli.main import cli
from kanjia.config import load_settings
from kanjia.sandbox import SandboxSettings, SandboxThread
from kanjia.server import ServerThread, build_app


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    with SandboxThread(SandboxSettings(port=0)) as sb:
        app = build_app(load_settings(None, sandbox_url=sb.url), env={})
        with ServerThread(app) as srv:
            yield srv.url


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_status_has_column_headers(gateway_url: str) -> None:
    out = _run("status", "--gateway", gateway_url)
    header = out.splitlines()[0].split()
    assert header == ["DEPLOYMENT", "VENDOR", "STATE", "LATENCY", "FAILURES", "REASON"]
    rows = [line for line in out.splitlines()[1:] if line.strip() and "not configured" not in line]
    assert rows and all(len(r.split()) >= 5 for r in rows)
    assert any(" closed " in r for r in rows)


def test_old_option_names_still_work_but_are_hidden(gateway_url: str) -> None:
    assert _run("status", "--url", gateway_url).splitlines()[0].startswith("DEPLOYMENT")
    assert _run("status", "--admin-key-env", "NOPE_UNSET", "--gateway", gateway_url)
    helptext = _run("status", "--help")
    assert "--gateway" in helptext and "--api-key-env" in helptext
    assert "--url" not in helptext and "--admin-key-env" not in helptext


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        yield f"{prefix}{name}", cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{prefix}{name} ")


def test_every_command_list_line_is_a_whole_sentence() -> None:
    """click lists each command with the first sentence of its help when it fits the
    line (80 columns), else cuts it with '...': each must fit and end its sentence."""
    width = click.HelpFormatter().width
    cut = []
    for group in [cli, *(c for _, c in _commands(cli) if isinstance(c, click.Group))]:
        ctx = click.Context(group)
        names = [n for n in group.list_commands(ctx) if not group.get_command(ctx, n).hidden]  # type: ignore[union-attr]
        limit = width - 6 - max(len(n) for n in names)
        for name in names:
            summary = group.get_command(ctx, name).get_short_help_str(limit)  # type: ignore[union-attr]
            if summary.endswith("...") or not summary.endswith("."):
                cut.append(f"{group.name} {name}: {summary!r}")
    assert not cut, "\n".join(cut)


def test_no_command_list_is_cut_mid_sentence() -> None:
    for args in ([], ["prices"], ["keys"], ["batch"], ["local"], ["catalog"], ["router"]):
        out = _run(*args, "--help")
        listing = out.split("Commands:", 1)[1]
        assert not any(line.rstrip().endswith("...") for line in listing.splitlines()), out


def test_prices_explains_its_evidence_codes() -> None:
    helptext = _run("prices", "--help")
    assert "EVIDENCE is how sure a price is" in helptext
    for line in ("S    stated in a cited source", "S3   a weaker third-party snapshot",
                 "M    unverified recollection"):
        assert line in helptext
    out = _run("prices", "--vendor", "qwen")
    codes = {line.split()[6].split("/")[0] for line in out.splitlines()[2:] if
             line.startswith("qwen/")}
    assert codes and codes <= {"S", "S3", "M"}
    assert out.rstrip().splitlines()[-1].startswith("EVIDENCE: S stated in a cited source")


def test_json_decimals_are_plain_numbers() -> None:
    out = _run("quote", "--input-tokens", "0", "--output-tokens", "0", "--json")
    # no number (or number-as-string) in exponent form
    assert not re.search(r'[:\[,]\s*"?-?[0-9.]+[eE][-+]?[0-9]', out)
    rows = json.loads(out)["rows"]
    assert all(isinstance(r["amount"], int | float) for r in rows)
    explained = _run("route", "explain", "cheap-chat", "--prompt-tokens", "1000",
                     "--max-tokens", "200", "--json")
    cands = json.loads(explained)["candidates"]
    assert any(isinstance(c["expected_cost"], int | float) for c in cands)
    assert not re.search(r'[:\[,]\s*"?-?[0-9.]+[eE][-+]?[0-9]', explained)


def test_route_explain_all_and_unrated() -> None:
    args = ["route", "explain", "cheap-chat", "--prompt-tokens", "1000", "--max-tokens", "200"]
    short, full = _run(*args), _run(*args, "--all")
    assert "quality tier 0" not in full and "unrated" in full
    assert "--all lists every candidate" in short
    assert "past max_candidates" in full
    assert len(full.splitlines()) > len(short.splitlines())
    every = json.loads(_run(*args, "--all", "--json"))["candidates"]
    assert len(every) == len(full.splitlines()) - 2        # the title and the column header


def test_json_dumps_writes_decimals_exactly_in_plain_notation() -> None:
    from decimal import Decimal

    from kanjia.cli._json import dumps
    text = dumps({"a": Decimal("0E-8"), "b": [Decimal("3E-8"), Decimal("-1.2300")],
                  "c": Decimal("1E+3"), "s": "0E-8 stays a string"})
    assert text == ('{"a": 0, "b": [0.00000003, -1.23], "c": 1000, '
                    '"s": "0E-8 stays a string"}')
    assert json.loads(text)["b"][0] == 3e-8
