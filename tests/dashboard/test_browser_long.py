"""The dashboard on a three-year ledger in headless Chromium: spend bars per month with
the years on the axis, the price war with its cut labels and a vendor legend, and the
same page at a phone's width with no label cut off."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kanjia.catalog import load_catalog
from kanjia.dashboard import write_report

from ._longledger import first_day, write_ledger
from .test_browser import _errors, _resize, _wait_ready

#: the spend chart's bars and the x-axis labels Chart.js actually drew (after skipping)
_SPEND = """
var ch = kanjiaCharts.spend, x = ch.scales.x;
return {bucket: ch.canvas.dataset.bucket, bars: ch.data.labels.length,
        datasets: ch.data.datasets.length,
        ticks: x.ticks.map(function (t) { var l = x.getLabelForValue(t.value);
                                          return Array.isArray(l) ? l.join(" ") : l; }),
        title: document.querySelector('#panel-spend h2').textContent,
        legend: ch.options.plugins.legend.position,
        legendBoxes: ch.legend.legendHitBoxes.map(function (b) {
          return [b.left, b.left + b.width]; }),
        legendTexts: ch.legend.legendItems.map(function (i) { return i.text; }),
        barWidth: ch.getDatasetMeta(0).data[0].width, width: ch.width};
"""

_PRICES = """
var ch = kanjiaCharts.prices;
return {labels: (ch.kanjiaCutLabels || []).map(function (l) {
          return {text: l.text, x: l.x, y: l.y, w: l.w, h: l.h}; }),
        area: ch.chartArea, width: ch.width,
        visible: ch.data.datasets.filter(function (d, i) {
          return ch.isDatasetVisible(i); }).length,
        datasets: ch.data.datasets.length,
        groups: Array.prototype.map.call(document.querySelectorAll('#panel-prices .group'),
          function (b) { return {id: b.dataset.group, text: b.textContent,
                                 pressed: b.getAttribute('aria-pressed')}; }),
        cuts: document.querySelectorAll('#panel-prices details.cuts tbody tr').length};
"""

#: every text element of the page that is cut: wider content than its box (and not a
#: scrolling table), or reaching past the viewport's right edge
_CUT = """
var out = [], vw = document.documentElement.clientWidth;
document.querySelectorAll('h1, h2, h3, p, button, summary, .kpi div, .legend span, th')
  .forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (!r.width) { return; }
    if (e.scrollWidth > e.clientWidth + 1 || r.right > vw + 1 || r.left < -1) {
      out.push(e.tagName + '.' + e.className + ': ' + e.textContent.slice(0, 40));
    }
  });
return {cut: out, scroll: document.documentElement.scrollWidth, vw: vw,
        inner: window.innerWidth};
"""

#: a category axis: the labels it drew, the full ones, and its width
_AXIS = """
var ch = kanjiaCharts[arguments[0]], axis = ch.scales[arguments[1]];
return {labels: axis.ticks.map(function (t) { return String(t.label); }),
        full: ch.data.labels, axisWidth: axis.width, chartWidth: ch.width};
"""


@pytest.fixture(scope="module")
def long_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dashboard-long")
    catalog = load_catalog()
    today = datetime.now(UTC).date()
    asyncio.run(write_ledger(str(root / "ledger.db"), catalog, today))
    out = root / "three-years.html"
    asyncio.run(write_report(str(root / "ledger.db"), catalog, out, since=first_day(today)))
    return out


@pytest.fixture()
def at_width(browser: Any) -> Iterator[Any]:
    """The browser, put back to the package's desktop size afterwards."""
    yield browser
    _resize(browser, 1440, 1000)


def _open(browser: Any, page: Path, width: int) -> None:
    _resize(browser, width, 1000)
    browser.get_log("browser")
    browser.get(page.as_uri())
    _wait_ready(browser)


def test_three_years_desktop(long_report: Path, at_width: Any, screenshots: Path) -> None:
    from selenium.webdriver.common.by import By

    browser = at_width
    _open(browser, long_report, 1440)
    spend = browser.execute_script(_SPEND)
    assert spend["bucket"] == "month" and spend["title"] == "Spend over time, per month"
    assert 30 <= spend["bars"] <= 40, spend["bars"]  # readable bars, not 1,096 slivers
    assert spend["barWidth"] >= 15, spend["barWidth"]
    assert spend["datasets"] >= 5
    ticks = spend["ticks"]
    assert len(ticks) >= 12, ticks  # the axis is labelled along its length
    assert all(re.fullmatch(r"[A-Z][a-z]{2} (19|20)\d\d", t) for t in ticks), ticks
    years = {t[-4:] for t in ticks}
    assert len(years) >= 3, ticks  # the years are on the axis
    assert spend["legend"] == "right"

    prices = browser.execute_script(_PRICES)
    texts = [label["text"] for label in prices["labels"]]
    assert len(texts) >= 10, texts  # the CLI chart's cut labels, drawn on the lines
    assert "free" in texts and all(t == "free" or re.fullmatch(r"−\d+%", t) for t in texts)
    area = prices["area"]
    for label in prices["labels"]:  # inside the plot, not cut at its edges
        assert label["x"] >= area["left"] - 10 and label["x"] + label["w"] <= area["right"] + 1
        assert area["top"] <= label["y"] and label["y"] + label["h"] <= area["bottom"]
    for a in prices["labels"]:  # and none drawn over another
        for b in prices["labels"]:
            if a is not b:
                assert (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                        or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"]), (a, b)
    groups = prices["groups"]
    assert 5 <= len(groups) <= 10  # a legend of vendors, not thirty lines
    assert any("DeepSeek" in g["text"] for g in groups)
    assert prices["cuts"] >= len(texts)  # the table lists every cut with its date
    other = next(g for g in groups if g["id"] == "other")
    assert other["pressed"] == "false" and prices["visible"] < prices["datasets"]
    # turning "other vendors" on draws their lines; off again hides them
    button = browser.find_element(By.CSS_SELECTOR, "#panel-prices .group[data-group=other]")
    button.click()
    shown = browser.execute_script(_PRICES)
    assert shown["visible"] == shown["datasets"]
    button.click()
    assert browser.execute_script(_PRICES)["visible"] == prices["visible"]
    # the cuts table names date, model and vendor
    browser.find_element(By.CSS_SELECTOR, "#panel-prices details.cuts summary").click()
    row = browser.find_element(By.CSS_SELECTOR, "#panel-prices details.cuts tbody tr").text
    assert re.match(r"20\d\d-\d\d-\d\d ", row), row
    assert _errors(browser) == []
    for panel in ("spend", "prices"):
        shot = screenshots / f"long-{panel}-1440.png"
        browser.find_element(By.ID, f"panel-{panel}").screenshot(str(shot))
        print(f"\nscreenshot: {shot}")


def test_three_years_narrow(long_report: Path, at_width: Any, screenshots: Path) -> None:
    from selenium.webdriver.common.by import By

    browser = at_width
    _open(browser, long_report, 400)
    page = browser.execute_script(_CUT)
    assert page["inner"] <= 420, page  # the window really is a phone's width
    assert page["cut"] == [], page["cut"]
    assert page["scroll"] <= page["vw"], page  # nothing wider than the screen
    spend = browser.execute_script(_SPEND)
    assert spend["legend"] == "bottom"  # not a legend eating half the width
    assert spend["barWidth"] >= 4, spend["barWidth"]
    for left, right in spend["legendBoxes"]:
        assert left >= 0 and right <= spend["width"], spend
    ticks = spend["ticks"]
    assert len(ticks) >= 4 and len({t[-4:] for t in ticks}) >= 3, ticks
    prices = browser.execute_script(_PRICES)
    assert len(prices["labels"]) >= 5, prices["labels"]
    for label in prices["labels"]:
        assert label["x"] >= 0 and label["x"] + label["w"] <= prices["width"]
    # long model names are shortened in the middle (":free" stays), in full in the data
    savings = browser.execute_script(_AXIS, "savings", "y")
    assert savings["axisWidth"] <= 0.5 * savings["chartWidth"], savings
    free = [label for label in savings["labels"] if label.endswith(":free")]
    assert free and any("…" in label for label in free), savings["labels"]
    assert any(f.startswith("openrouter/") and f.endswith(":free") and "…" not in f
               for f in savings["full"])
    assert _errors(browser) == []
    for panel in ("spend", "prices"):
        shot = screenshots / f"long-{panel}-400.png"
        browser.find_element(By.ID, f"panel-{panel}").screenshot(str(shot))
        print(f"\nscreenshot: {shot}")
