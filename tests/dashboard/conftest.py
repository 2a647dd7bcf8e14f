"""Dashboard fixtures: one real gateway with a ledger filled by real traffic, the report
file written from that ledger by the CLI, and headless Chromium driven by Selenium
(Debian's chromium + chromium-driver; the browser tests skip when they are absent)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kanjia.cli.dashboard import dashboard

from ._traffic import MASTER, Served, http, served_gateway

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1440,1000")


@pytest.fixture(scope="package")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_gateway(tmp_path_factory.mktemp("dashboard-gw")) as s:
        yield s


@pytest.fixture(scope="package")
def report_file(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``kanjia dashboard --db LEDGER --out FILE`` on the served gateway's ledger."""
    # a dashboard request makes the gateway write every queued ledger row first
    status, _, _ = http("GET", served.url + "/ui/data.json",
                        headers={"Authorization": f"Bearer {MASTER}"})
    assert status == 200
    out = tmp_path_factory.mktemp("dashboard-report") / "report.html"
    result = CliRunner().invoke(dashboard, ["--db", served.database, "--out", str(out),
                                            "--currency", "CNY"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="package")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: $KANJIA_SCREENSHOT_DIR, else a pytest temp dir (pytest
    keeps the last three runs' temp dirs)."""
    where = os.environ.get("KANJIA_SCREENSHOT_DIR")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        return Path(where)
    return tmp_path_factory.mktemp("dashboard-screenshots")


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(f"browser tests need {CHROMIUM} and {CHROMEDRIVER} "
                    "(apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="kanjia-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver path: Selenium Manager never runs, nothing is downloaded
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
