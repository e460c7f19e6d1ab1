"""Debian's Chromium under Playwright, for every browser test (never a downloaded browser)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import CHROMIUM, require

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by `require` below
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """A headless Chromium from `CHROMIUM`; skips (fails under CI=true) when it or Playwright is missing."""
    require(sync_playwright is not None, "playwright (python) is not installed")
    require(Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None, f"Chromium not found at {CHROMIUM}")
    with sync_playwright() as playwright:  # type: ignore[misc]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
