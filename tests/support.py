"""Helpers the test modules import (a module of its own: `from conftest import` is ambiguous
once a test folder has its own conftest.py)."""

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition: Callable[[], object], what: str, timeout: float = 300, every=0.2):
    """Poll `condition()` until it returns something true; fail saying `what` was awaited."""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def matches_status(base_url: str, raw_key: str, sku: str, timeout: float = 30) -> int:
    """The HTTP status of a web server's matches answer for `sku` (its body read whole)."""
    request = urllib.request.Request(
        f"{base_url}/api/v1/products/{sku}/matches/",
        headers={"Authorization": f"Api-Key {raw_key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            json.load(response)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("OUTFITS_TEST_ARTIFACTS", ROOT / "test-artifacts"))


@contextmanager
def chromium_page(**context_options) -> Iterator:
    """A page of Debian's chromium. Playwright runs an event loop meanwhile, in which Django's
    ORM refuses to run: the test talks to the database before and after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        context = browser.new_context(
            **{"viewport": {"width": 1280, "height": 900}, **context_options}
        )
        yield context.new_page()
        browser.close()
