"""GET / in headless Chromium: type a ticket, click, see the label and the scores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _chromium() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("no chromium binary (install the Debian package: apt-get install -y chromium)")
    return found


def test_index_page_predicts_in_a_browser(live_server: ServerProcess, bundle_dir: Path) -> None:
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="python playwright is not installed")
    labels = json.loads((bundle_dir / "manifest.json").read_text())["labels"]
    ticket = "Our online shop is down since 8:00 and no customer can pay. Please fix this immediately!"
    expected = httpx.post(
        f"{live_server.base_url}/predict", json={"text": ticket, "subject": "Shop down"}
    ).json()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.base_url}/")
            page.fill("#subject", "Shop down")
            page.fill("#text", ticket)
            page.click("#submit")
            page.wait_for_selector("#label", timeout=15_000)
            assert page.inner_text("#label").strip().lower() == expected["label"]
            rows = page.locator("#scores tr")
            assert rows.count() == len(labels)
            shown = {
                rows.nth(i).get_attribute("data-label"): float(rows.nth(i).locator(".score").inner_text())
                for i in range(rows.count())
            }
            assert list(shown) == labels
            for label in labels:
                assert shown[label] == pytest.approx(expected["scores"][label], abs=1e-3)
            # whitespace-only text: the server's 422 message is shown, not a crash
            page.fill("#text", "   ")
            page.eval_on_selector("#text", "el => el.removeAttribute('required')")
            page.click("#submit")
            page.wait_for_selector("#error", timeout=15_000)
            assert "422" in page.inner_text("#error") and "empty" in page.inner_text("#error")
        finally:
            browser.close()
