"""A second factor (TOTP) in the browser, with an independent TOTP implementation (pyotp).

- The admin console enrols the administrator's authenticator from the QR code it shows: the
  test reads the QR code off the screen (zxing-cpp decodes a screenshot of it), builds the
  authenticator from the otpauth:// URI in it, turns it on with a code, keeps a recovery code,
  signs out, and signs in again, which now asks for a code.
- The demo page signs in a user who enrolled through the account API: the password alone gets
  the code prompt, a wrong code is refused, the right one signs in, and the page shows that the
  access token records the second factor (amr).
"""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from email.message import Message

import pyotp
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from portcullis_server import ALICE, CONSOLE_CLIENT, PHONE_CLIENT, ROOT, running


@pytest.fixture(scope="module")
def server():
    with running(demo=True) as s:
        yield s


def call(server, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, Message, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.headers, json.loads(res.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"{}")


def fresh_code(totp: pyotp.TOTP, used: set[str]) -> str:
    """The current code, waiting for the next step when this one was used already (each code
    works once)."""
    deadline = time.monotonic() + 35
    while True:
        code = totp.now()
        if code not in used:
            used.add(code)
            return code
        assert time.monotonic() < deadline, "no new TOTP step within 35 s"
        time.sleep(0.5)


def sign_in_console(page, user: tuple[str, str]) -> None:
    page.get_by_label("Username", exact=True).fill(user[0])
    page.get_by_label("Password", exact=True).fill(user[1])
    page.get_by_test_id("sign-in").click()


def test_console_enrols_an_authenticator_from_its_qr_code_and_then_asks_for_codes(page, server, artifacts_dir):
    csp_errors = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{server.base}/admin/")
    page.wait_for_selector("body[data-state='signed-out']")
    sign_in_console(page, ROOT)
    expect(page.locator("body")).to_have_attribute("data-state", "signed-in")

    page.get_by_role("button", name="Your account").click()
    expect(page.get_by_test_id("mfa-state")).to_contain_text("No second factor")
    page.get_by_test_id("mfa-start").click()
    qr = page.get_by_test_id("mfa-qr")
    expect(qr).to_be_visible()
    page.wait_for_function("document.getElementById('mfa-qr').naturalWidth > 0")
    page.screenshot(path=str(artifacts_dir / "mfa-1-qr.png"), full_page=True)

    # The QR code as a camera would see it: decoded from the pixels on screen.
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.screenshot())))
    assert len(decoded) == 1, "one QR code on screen"
    uri = decoded[0].text
    assert uri.startswith("otpauth://totp/"), uri
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    assert (totp.digits, totp.interval, totp.digest().name) == (6, 30, "sha1")
    # The key shown for typing in by hand is the one in the QR code.
    assert page.get_by_test_id("mfa-secret").inner_text().replace(" ", "") == totp.secret

    used: set[str] = set()
    page.get_by_label("Code shown by the app").fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_test_id("mfa-confirm").click()
    expect(page.locator("#status")).to_contain_text("failed")
    expect(page.get_by_test_id("mfa-recovery-codes")).to_be_hidden()

    page.get_by_label("Code shown by the app").fill(fresh_code(totp, used))
    page.get_by_test_id("mfa-confirm").click()
    codes = page.get_by_test_id("mfa-recovery-codes").locator("li")
    expect(codes).to_have_count(10)
    recovery = codes.first.inner_text().strip()
    expect(page.get_by_test_id("mfa-state")).to_contain_text("An authenticator app is set up")
    page.screenshot(path=str(artifacts_dir / "mfa-2-recovery-codes.png"), full_page=True)

    # Signed out: the password alone now gets the code prompt, and a code signs in.
    page.get_by_role("button", name="Sign out").click()
    sign_in_console(page, ROOT)
    otp = page.get_by_label("Authentication code")
    expect(otp).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-state", "signed-out")
    otp.fill(fresh_code(totp, used))
    page.get_by_test_id("sign-in").click()
    expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
    expect(page.get_by_label("Authentication code")).to_be_hidden()

    # The user view says who has a second factor.
    page.get_by_role("button", name="Users", exact=True).click()
    page.wait_for_selector("tr[data-username='root']")
    page.get_by_label("User to manage").fill(ROOT[0])
    page.get_by_label("User to manage").press("Enter")
    expect(page.get_by_test_id("user-mfa")).to_have_text(
        "Second factor: an authenticator app; 10 recovery code(s) left."
    )

    # From outside: the password grant without a code is refused with mfa_required; a
    # recovery code works once.
    no_code = server.password_grant(CONSOLE_CLIENT, ROOT, scope="portcullis:admin")
    assert no_code.status == 400, no_code.body
    assert no_code.body["error"] == "invalid_grant" and no_code.body["mfa_required"] is True
    assert no_code.headers.get("cache-control") == "no-store"
    first = server.password_grant(CONSOLE_CLIENT, ROOT, scope="portcullis:admin", otp=recovery)
    assert first.status == 200, first.body
    again = server.password_grant(CONSOLE_CLIENT, ROOT, scope="portcullis:admin", otp=recovery)
    assert again.status == 400 and again.body["mfa_required"] is True
    assert not csp_errors, csp_errors


def test_demo_page_signs_in_with_an_authenticator_code(page, server, artifacts_dir):
    # Alice enrols through the account API (as an app's settings screen would).
    tokens = server.password_grant(PHONE_CLIENT, ALICE)
    assert tokens.status == 200, tokens.body
    token = tokens.body["access_token"]
    status, headers, started = call(server, "POST", "/account/v1/mfa/totp", token)
    assert status == 200, started
    assert headers.get("cache-control") == "no-store"
    totp = pyotp.parse_uri(started["otpauth_uri"])
    used: set[str] = set()
    status, _, confirmed = call(server, "POST", "/account/v1/mfa/totp/confirm", token, {"code": fresh_code(totp, used)})
    assert status == 200, confirmed
    assert len(confirmed["recovery_codes"]) == 10

    page.goto(f"{server.base}/demo/")
    page.wait_for_selector("body[data-state='signed-out']")
    page.get_by_label("Username", exact=True).fill(ALICE[0])
    page.get_by_label("Password", exact=True).fill(ALICE[1])
    page.get_by_test_id("sign-in").click()
    otp = page.get_by_label("Authentication code")
    expect(otp).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-state", "signed-out")
    page.screenshot(path=str(artifacts_dir / "mfa-3-demo-code-prompt.png"), full_page=True)

    # A wrong code: still signed out, asked again.
    otp.fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_test_id("sign-in").click()
    expect(page.locator("#status")).to_contain_text("wrong or was used")
    expect(page.locator("body")).to_have_attribute("data-state", "signed-out")

    otp.fill(fresh_code(totp, used))
    page.get_by_test_id("sign-in").click()
    expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
    expect(page.get_by_test_id("me-amr")).to_have_text("password and authenticator code")
    expect(page.get_by_test_id("me-username")).to_have_text(ALICE[0])
    page.screenshot(path=str(artifacts_dir / "mfa-4-demo-signed-in.png"), full_page=True)
