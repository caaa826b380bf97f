"""The /docs page in a real headless Chromium: Swagger UI renders every operation of the OpenAPI
document from bolt's own routes, runs a request, logs no console error and asks no other host."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest

from bolt import BoltAPI
from bolt.auth import JWTAuthentication
from browser import chromium
from ports import free_port, stop_process, wait_for_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]
HERE = os.path.dirname(os.path.abspath(__file__))
WAIT = 20.0


class Item(msgspec.Struct):
    name: str
    price: float


api = BoltAPI(title="Docs page test", auth=[JWTAuthentication(secret="docs-page-test-secret-32-bytes!!")])


@api.get("/items/{item_id}")
async def get_item(item_id: int) -> Item:
    """One item."""
    return Item(f"item {item_id}", 1.5)


@api.get("/health")
async def health() -> dict:
    return {"ok": True}


@pytest.fixture
def base() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "test_docs_page_browser:api", "--app-dir", HERE, "--port", str(port),
         "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=20, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, 10)


def until(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def test_swagger_ui_renders_the_document_offline(base: str) -> None:
    driver = chromium()
    try:
        driver.get(f"{base}/docs")
        js = driver.execute_script
        until(lambda: js("return document.querySelectorAll('.opblock').length") == 2, "both operations")
        assert js("return document.querySelector('.title').textContent").startswith("Docs page test")
        # Run GET /health through the page, as a person would.
        js("document.querySelector('#operations-default-health .opblock-summary-control').click()")
        until(lambda: js("return document.querySelector('#operations-default-health .try-out__btn')"), "try it out")
        js("document.querySelector('#operations-default-health .try-out__btn').click()")
        until(lambda: js("return document.querySelector('#operations-default-health .execute')"), "execute")
        js("document.querySelector('#operations-default-health .execute').click()")
        status = until(lambda: js("return document.querySelector("
                                  "'#operations-default-health .live-responses-table tbody .response-col_status')"
                                  "?.textContent.trim()"), "the response")
        assert status.startswith("200")
        resources = js("return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]")
        assert resources and all(url.startswith(base + "/") for url in resources), resources
        assert {f"{base}/openapi.json", f"{base}/docs/swagger-ui-bundle.js", f"{base}/health"} <= set(resources)
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
    finally:
        driver.quit()
