"""The live dashboard in headless Chromium (Debian's chromium + chromium-driver): the page
loads, its plots update with data from an emulated rig, a dead rig turns red."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from host_sdk.fleet.dashboard import DashboardServer
from host_sdk.fleet.hub import FleetHub
from host_sdk.fleet.monitor import RigMonitor
from tests.fleet.conftest import need_binary

PANELS = ("voltage_v", "current_a", "pressure_mpa", "strain_ue", "temp_c", "lost")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    chromium = need_binary("chromium", "chromium-browser", "/usr/bin/chromium")
    driver_exe = need_binary("chromedriver", "/usr/bin/chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        need_binary("selenium (pip install selenium)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1000",
    ):
        opts.add_argument(arg)
    # the driver from Debian: selenium must not look for (or download) one of its own
    driver = webdriver.Chrome(service=Service(executable_path=driver_exe), options=opts)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _attr(driver: Any, css: str, name: str) -> str:
    from selenium.webdriver.common.by import By

    els = driver.find_elements(By.CSS_SELECTOR, css)
    return str(els[0].get_attribute(name) or "") if els else ""


def test_dashboard_plots_a_live_rig_and_turns_a_dead_one_red(
    emulated, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    emu = emulated(seed=91, speed=5)
    hub = FleetHub("bench")
    monitor = RigMonitor(emu.port, hub, name="cell91", stack_area_m2=1.131e-4, period_s=0.25)
    dash = DashboardServer(hub, port=0)
    try:
        browser.get(dash.url)
        wait = WebDriverWait(browser, 120, poll_frequency=0.1)
        wait.until(lambda d: _attr(d, '.card[data-rig="cell91"]', "data-alive") == "true")
        n1 = wait.until(
            lambda d: (
                int(_attr(d, "#panel-voltage_v canvas", "data-n") or 0) >= 3
                and int(_attr(d, "#panel-voltage_v canvas", "data-n"))
            )
        )
        # the plots update: more points arrive from the board
        wait.until(lambda d: int(_attr(d, "#panel-voltage_v canvas", "data-n") or 0) > n1)
        for key in PANELS:
            wait.until(lambda d, k=key: int(_attr(d, f"#panel-{k} canvas", "data-n") or 0) > 0)
        browser.save_screenshot(str(tmp_path / "live.png"))
        # the board is unplugged: its card turns red (class dead) on the next poll
        emu.unplug(3600.0)
        wait.until(lambda d: "dead" in _attr(d, '.card[data-rig="cell91"]', "class"))
        assert _attr(browser, '.card[data-rig="cell91"]', "data-alive") == "false"
        color = browser.execute_script(
            "return getComputedStyle(document.querySelector('.card.dead')).backgroundColor"
        )
        assert color == "rgb(255, 204, 204)"  # red
        browser.save_screenshot(str(tmp_path / "dead.png"))
        with urllib.request.urlopen(dash.url + "api/state") as r:
            assert json.loads(r.read())["rigs"]["cell91"]["alive"] is False
    finally:
        dash.close()
        monitor.close()
