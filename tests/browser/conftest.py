"""Shared fixtures for the browser tests.

Python Playwright drives Debian's Chromium (/usr/bin/chromium, or $PORTCULLIS_CHROMIUM);
Playwright's own browser download is never used. Screenshots go to
target/browser-artifacts/ under the repository root (or $PORTCULLIS_BROWSER_ARTIFACTS).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
SITE = HERE / "site"
CHROMIUM = os.environ.get("PORTCULLIS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("PORTCULLIS_BROWSER_ARTIFACTS", REPO_ROOT / "target" / "browser-artifacts"))


@contextlib.contextmanager
def serve(handler, host: str = "127.0.0.1"):
    """Run an HTTP server on host:<random port> in a thread; yield its base URL."""
    server = ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class QuietStaticHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def static_site():
    """Serve tests/browser/site/ on 127.0.0.1:<random port>."""
    with serve(functools.partial(QuietStaticHandler, directory=str(SITE))) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.exit(f"FATAL: Chromium not found at {CHROMIUM} (run tests/browser/run.sh, which installs it)", returncode=3)
    with sync_playwright() as pw:
        try:
            # Playwright already passes --no-sandbox (needed as root), --headless,
            # --disable-background-networking, --disable-component-update, --no-first-run
            # and a fresh temporary --user-data-dir.
            b = pw.chromium.launch(executable_path=CHROMIUM, timeout=30_000)
        except PlaywrightError as e:
            pytest.exit(f"FATAL: headless Chromium did not start ({CHROMIUM}): {e}", returncode=3)
        print(f"\nbrowser: Chromium {b.version} at {CHROMIUM}")
        yield b
        b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1024, "height": 640})
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context, request, artifacts_dir):
    pg = context.new_page()
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and not pg.is_closed():
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        with contextlib.suppress(PlaywrightError):
            pg.screenshot(path=str(artifacts_dir / f"FAILED-{name}.png"), full_page=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
