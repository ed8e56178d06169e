"""Smoke test: a local page renders, runs JS, sets a cookie, fetches, and is screenshotted."""


def test_page_renders_sets_cookie_and_fetches(page, static_site, artifacts_dir):
    page.goto(f"{static_site}/index.html")

    assert page.text_content("#title") == "Portcullis browser harness"
    # The page's fetch() of /data.json has filled in #status (auto-waiting assertion).
    page.wait_for_function("document.getElementById('status').textContent.startsWith('fetched')")
    assert page.text_content("#status") == "fetched: hello from the test server"

    assert "harness=ok" in page.evaluate("() => document.cookie")
    assert page.evaluate("() => window.isSecureContext") is True  # loopback http counts as secure

    shot = artifacts_dir / "smoke-index.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 1000
