"""The demo page's sign-up and "forgot password" flows, end to end, against a real Portcullis
that mails through an SMTP sink on loopback.

Creates an account from the page (a refused short password first), confirms its address with
the code the sink received, signs out, asks for a reset from the page, takes the code from the
second mail, sets a new password (which signs every device out), and signs in with it.
"""

import json
import time
import sqlite3
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from portcullis_server import DEMO_CLIENT, PHONE_CLIENT, running
from smtp_sink import code_in, smtp_sink

NORA = ("nora", "a long and unremarkable passphrase")
NEW_PASSWORD = "another long passphrase for nora"
FROM = "Portcullis demo <auth@example.test>"


def allow_sign_up(db: str) -> None:
    """The demo client allows sign-up with the scope `read` (what the admin API sets)."""
    with sqlite3.connect(db.removeprefix("sqlite://")) as conn:
        conn.execute("UPDATE clients SET allow_sign_up = 1, sign_up_scope = 'read' WHERE id IN (?, ?)",
                     (DEMO_CLIENT, PHONE_CLIENT))  # fmt: skip


@pytest.fixture(scope="module")
def mail():
    with smtp_sink() as sink:
        yield sink


@pytest.fixture(scope="module")
def server(mail):
    args = ("--smtp-url", mail.url, "--mail-from", FROM)
    with running(demo=True, serve_args=args, setup=allow_sign_up) as s:
        yield s


def post_json(server, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(server.base + path, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.loads(res.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_demo_signs_up_and_resets_a_forgotten_password(page, server, mail, artifacts_dir):
    page.goto(f"{server.base}/demo/")
    page.wait_for_selector("body[data-state='signed-out']")

    # Sign up: a short password is refused with the server's own sentence.
    page.get_by_role("button", name="Create an account").click()
    expect(page.locator("body")).to_have_attribute("data-state", "sign-up")
    assert page.evaluate("document.activeElement.id") == "sign-up-heading"
    page.get_by_label("Choose a username").fill(NORA[0])
    page.get_by_label("Email (optional, to recover the account)").fill("nora@example.test")
    page.get_by_label("Choose a password").fill("too short")
    with page.expect_response("**/account/v1/sign-up") as refused:
        page.get_by_role("button", name="Create account").click()
    assert refused.value.status == 400
    assert refused.value.json()["reason"] == "password_too_short"
    expect(page.locator("#status")).to_have_text("The password must be at least 15 characters long.")
    page.screenshot(path=str(artifacts_dir / "demo-account-1-refused.png"), full_page=True)

    page.get_by_label("Choose a password").fill(NORA[1])
    with page.expect_response("**/account/v1/sign-up") as created:
        page.get_by_role("button", name="Create account").click()
    assert created.value.status == 201
    assert created.value.header_value("cache-control") == "no-store"
    expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
    expect(page.locator("#status")).to_have_text("Account created; signed in as nora.")
    assert page.text_content("[data-testid=me-username]") == "nora"
    assert page.text_content("[data-testid=me-scope]") == "read"

    # The sign-up mailed a verification code to the address; the app confirms it.
    sender, recipients, message = mail.wait_for(1)[0]
    assert (sender, recipients) == ("auth@example.test", ["nora@example.test"])
    assert message["From"] == FROM
    assert message["Subject"] == f"Your email verification code for {server.base}"
    phone = server.password_grant(PHONE_CLIENT, NORA)
    assert phone.status == 200
    status, body = post_json(server, "/account/v1/email/verify", {"code": code_in(message)},
                             phone.body["access_token"])  # fmt: skip
    assert (status, body) == (200, {"email": "nora@example.test", "email_verified": True})

    # Signed out, nora forgets her password and resets it from the page.
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("body")).to_have_attribute("data-state", "signed-out")
    page.get_by_role("button", name="Forgot your password?").click()
    expect(page.locator("body")).to_have_attribute("data-state", "reset")
    page.get_by_label("Your username").fill(NORA[0])
    with page.expect_response("**/account/v1/password-reset") as asked:
        page.get_by_role("button", name="Send a code").click()
    assert asked.value.status == 202
    expect(page.locator("#status")).to_have_text(
        "If this account has a verified email address, a code is on its way.")  # fmt: skip
    assert page.evaluate("document.activeElement.id") == "reset-code"

    _, recipients, reset_mail = mail.wait_for(2)[1]
    assert recipients == ["nora@example.test"]
    assert reset_mail["Subject"] == f"Your password reset code for {server.base}"
    code = code_in(reset_mail)
    page.get_by_label("Code from the mail").fill("2222-2222")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    with page.expect_response("**/password-reset/confirm") as wrong:
        page.get_by_role("button", name="Set the new password").click()
    assert wrong.value.status == 400
    expect(page.locator("#status")).to_have_text("That code is wrong or has expired.")
    page.get_by_label("Code from the mail").fill(code.lower())
    with page.expect_response("**/password-reset/confirm") as confirmed:
        page.get_by_role("button", name="Set the new password").click()
    assert confirmed.value.status == 200
    expect(page.locator("body")).to_have_attribute("data-state", "signed-out")
    expect(page.locator("#status")).to_have_text(
        "Password changed, and every device signed out. Sign in with the new password.")  # fmt: skip
    page.screenshot(path=str(artifacts_dir / "demo-account-2-reset.png"), full_page=True)

    # The phone's sign-in ended; the new password signs in on the page.
    refreshed = server.request("POST", "/oauth/token", {
        "grant_type": "refresh_token", "client_id": PHONE_CLIENT, "refresh_token": phone.body["refresh_token"]})  # fmt: skip
    assert (refreshed.status, refreshed.body["error"]) == (400, "invalid_grant")
    assert page.get_by_label("Username", exact=True).input_value() == NORA[0]
    # A sign-in in the very second of the revocation is refused (the store's revocation check
    # has one-second resolution); a person takes longer than that.
    time.sleep(1.1)
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
    expect(page.locator("#status")).to_have_text("Signed in as nora.")
