"""The dashboard in headless Chromium: sign in through the form, every chart drawn with
data, no console errors, ledger text never run as markup, the report file from
file:// too; screenshots are kept for a person to look at."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ._traffic import MASTER, Served

CHARTS = ("spend", "savings", "routes", "prices", "budgets", "health")

#: per chart: the points it holds, and how much of the canvas is painted
_PROBE = """
var out = {};
document.querySelectorAll("canvas").forEach(function (c) {
  var chart = window.kanjiaCharts[c.id.replace("chart-", "")];
  var px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data, ink = 0;
  for (var i = 3; i < px.length; i += 4) { if (px[i] > 0) { ink += 1; } }
  out[c.id.replace("chart-", "")] = {points: Number(c.dataset.points),
    datasets: chart ? chart.data.datasets.length : 0, ink: ink / (c.width * c.height),
    width: c.width, height: c.height};
});
return out;
"""


def _wait_ready(driver: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script("return document.body && document.body.dataset.ready"):
            return
        time.sleep(0.05)
    raise AssertionError("the dashboard script never finished")


def _errors(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _check_charts(driver: Any) -> dict[str, Any]:
    charts = driver.execute_script(_PROBE)
    assert set(charts) == set(CHARTS), charts
    for name, c in charts.items():
        assert c["points"] > 0 and c["datasets"] > 0, (name, c)
        assert c["width"] > 200 and c["height"] > 100, (name, c)
        assert c["ink"] > 0.01, (name, c)  # something was drawn, not a blank canvas
    assert charts["prices"]["datasets"] >= 20  # one line per model family
    return dict(charts)


def _screenshot(driver: Any, path: Path) -> Path:
    """The whole page: grow the window to the document's height, then shoot."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    _resize(driver, 1440, min(height + 140, 6000))
    assert driver.save_screenshot(str(path))
    _resize(driver, 1440, 1000)
    return path


#: resolves once the viewport is no longer ``arguments[0]`` px high (the resize has been
#: laid out: Chart.js's ResizeObserver has fired and redrawn, animations are off on resize)
#: and two frames have been painted since
_RESIZED = """
var before = arguments[0], done = arguments[arguments.length - 1];
function painted() { requestAnimationFrame(function () { requestAnimationFrame(done); }); }
(function check() {
  if (window.innerHeight !== before) { painted(); } else { requestAnimationFrame(check); }
})();
"""


def _resize(driver: Any, width: int, height: int) -> None:
    """Resize the window and wait until the page has been laid out and repainted at the new
    size (a no-op wait when the size does not change)."""
    before = driver.get_window_size()
    if (before["width"], before["height"]) == (width, height):
        return
    inner = driver.execute_script("return window.innerHeight")
    driver.set_window_size(width, height)
    if before["height"] != height:
        driver.execute_async_script(_RESIZED, inner)


def _not_injected(driver: Any) -> None:
    # the ledger holds a model named like an <img onerror=...>: it must stay text
    assert driver.title != "pwned"
    assert driver.execute_script("return document.querySelectorAll('img').length") == 0
    page = driver.execute_script("return document.body.textContent")
    assert "<img/src=x" in page  # shown, as text


def test_sign_in_and_every_chart(served: Served, browser: Any, screenshots: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get_log("browser")
    browser.get(served.url + "/ui")
    assert browser.find_elements(By.NAME, "key"), "no sign-in form"
    assert not browser.execute_script("return document.getElementById('kanjia-data')")
    # the sign-in page is a 401 on purpose: that is the only thing the console may report
    first = _errors(browser)
    assert all(e["source"] == "network" and "/ui - " in e["message"] and "401" in e["message"]
               for e in first), first
    browser.find_element(By.NAME, "key").send_keys(MASTER)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    _wait_ready(browser)
    assert browser.current_url == served.url + "/ui"
    cookie = browser.get_cookie("kanjia_ui")
    assert cookie is not None and cookie["httpOnly"] and MASTER not in cookie["value"]
    assert not browser.execute_script("return document.cookie")  # HttpOnly: not readable
    charts = _check_charts(browser)
    assert charts["routes"]["datasets"] == 3
    _not_injected(browser)
    # the live breaker table: moonshot ran out of balance during the traffic
    rows = browser.find_elements(By.CSS_SELECTOR, "#panel-health tbody tr")
    states = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1]
              .text for r in rows}
    assert states["moonshot#sandbox"] == "disabled", states
    # the "by model" view of the spend chart
    browser.find_element(By.CSS_SELECTOR, "#panel-spend .tabs button[data-view=model]").click()
    labels = browser.execute_script(
        "return kanjiaCharts.spend.data.datasets.map(function (d) { return d.label; })")
    assert any("/" in label for label in labels)
    shot = _screenshot(browser, screenshots / "dashboard-served.png")
    assert shot.stat().st_size > 50_000
    assert _errors(browser) == []
    print(f"\nscreenshot: {shot}")


def test_currency_switch(served: Served, browser: Any) -> None:
    browser.get(served.url + f"/ui?key={MASTER}&currency=USD")
    _wait_ready(browser)
    assert browser.current_url == served.url + "/ui?currency=USD"  # the key left the URL
    kpi = browser.execute_script("return document.querySelector('.kpi .value').textContent")
    assert kpi.startswith("$")
    _check_charts(browser)
    assert _errors(browser) == []


def test_report_file_opens_offline(report_file: Path, browser: Any,
                                   screenshots: Path) -> None:
    browser.get_log("browser")
    browser.get(report_file.as_uri())
    _wait_ready(browser)
    _check_charts(browser)
    _not_injected(browser)
    note = browser.execute_script(
        "return document.querySelector('#panel-health').textContent")
    assert "served by the gateway" in note  # no live breakers in a file
    shot = _screenshot(browser, screenshots / "dashboard-report.png")
    assert _errors(browser) == []
    print(f"\nscreenshot: {shot}")
