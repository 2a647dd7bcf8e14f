"""``kanjia dashboard``: one self-contained HTML file, nothing to fetch; the shipped
Chart.js is the pinned npm build with its licence; the package's public surface."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from click.testing import CliRunner

import kanjia.dashboard as dashboard_pkg
from kanjia.cli.dashboard import dashboard
from kanjia.cli.main import cli

from ._traffic import MASTER, Served

STATIC = Path(dashboard_pkg.__file__).parent / "static"
CHART_JS_SHA256 = "87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2"


def test_report_is_self_contained(report_file: Path) -> None:
    page = report_file.read_text(encoding="utf-8")
    assert "id='kanjia-data'" in page and "Chart.js v4.6.1" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # nothing loads from anywhere: no src/href attributes but the data: favicon
    markup = page.split("<script type='application/json'")[0]
    links = re.findall(r"""\s(?:src|href|action)\s*=\s*["']([^"']*)["']""", markup)
    assert links == ["data:,"]
    assert "<link rel='stylesheet'" not in page and "sourceMappingURL" not in page
    assert MASTER not in page


def test_cli_options(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "usd.html"
    result = CliRunner().invoke(dashboard, ["--db", served.database, "--out", str(out),
                                            "--currency", "usd", "--since", "2026-01-01",
                                            "--baseline", "openai/gpt-4o-mini"])
    assert result.exit_code == 0, result.output
    assert "saved" in result.output and "openai/gpt-4o-mini" in result.output
    page = out.read_text(encoding="utf-8")
    assert '"currency":"USD"' in page and '"since":"2026-01-01"' in page
    assert '"baseline":"openai/gpt-4o-mini"' in page


def test_cli_refuses_a_missing_ledger(tmp_path: Path) -> None:
    result = CliRunner().invoke(dashboard, ["--db", str(tmp_path / "nope.db"), "--out",
                                            str(tmp_path / "x.html")])
    assert result.exit_code == 2 and "no ledger at" in result.output
    assert not (tmp_path / "nope.db").exists() and not (tmp_path / "x.html").exists()
    result = CliRunner().invoke(dashboard, ["--db", "x.db", "--out", "x.html", "--since", "May"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


def test_cli_registered() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "dashboard" in result.output


def test_vendored_chart_js() -> None:
    blob = (STATIC / "chart.umd.min.js").read_bytes()
    assert hashlib.sha256(blob).hexdigest() == CHART_JS_SHA256
    assert blob.startswith(b"/*!\n * Chart.js v4.6.1")
    assert "MIT License" in (STATIC / "chart.js.LICENSE.md").read_text(encoding="utf-8")
    assert CHART_JS_SHA256 in (STATIC / "README.md").read_text(encoding="utf-8")


def test_all_is_complete() -> None:
    names = list(dashboard_pkg.__all__)
    assert len(names) == len(set(names))
    assert all(hasattr(dashboard_pkg, n) for n in names)
    public = {n for n in vars(dashboard_pkg) if not n.startswith("_")
              and getattr(getattr(dashboard_pkg, n), "__module__", "").startswith(
                  dashboard_pkg.__name__)}
    assert public <= set(names), public - set(names)
