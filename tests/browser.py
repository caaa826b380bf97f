"""Headless Chromium for the browser tests, driven by selenium.

Without chromium, chromedriver or selenium the tests that ask for one are skipped with the reason;
BOLT_REQUIRE_BROWSER=1 (set by scripts/test.sh) turns that into a failure.
"""
from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = "chromedriver"


def missing(reason: str) -> None:
    if os.environ.get("BOLT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"BOLT_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"{reason}: browser tests skipped (BOLT_REQUIRE_BROWSER=1 makes this fail)")


def chromium(width: int = 1200, height: int = 900) -> Any:
    """A new headless Chromium session (its own profile, so its own cookies); quit() it when done."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed")
    binary = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    driver_path = shutil.which(CHROMEDRIVER)
    if binary is None or driver_path is None:
        missing("chromium or chromedriver is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    # Headless, and as root in CI containers: no sandbox, no /dev/shm assumptions.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", "--disable-extensions", f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit chromedriver: selenium never tries to download one.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_script_timeout(60)
    return driver
