"""The admin console (/admin/) against a real Portcullis: sign in as an administrator, revoke
the demo's client (its next token request fails), sign a user out of a device, disable the
user, rotate the keys and read the audit log, with the keyboard where it matters.
"""

import re

import pytest
from playwright.sync_api import expect

from portcullis_server import ALICE, DEMO_CLIENT, PHONE_CLIENT, ROOT, running


@pytest.fixture(scope="module")
def server():
    with running(access_token_ttl=600, demo=True) as s:
        yield s


def status_starts(page, text):
    # Locator assertions, not wait_for_function: the page's CSP forbids eval, which polling
    # a JavaScript predicate needs.
    expect(page.locator("#status")).to_have_text(re.compile("^" + re.escape(text)))


def test_console_revokes_a_client_and_its_next_token_request_fails(page, server, artifacts_dir):
    csp_errors, dialogs = [], []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)

    # Before: the demo client works (a sign-in through it, from outside the browser).
    assert server.web_sign_in(DEMO_CLIENT, ALICE).status == 200

    page.goto(f"{server.base}/admin/")
    page.wait_for_selector("body[data-state='signed-out']")
    assert page.evaluate("document.activeElement.id") == "username"
    page.screenshot(path=str(artifacts_dir / "admin-1-sign-in.png"), full_page=True)

    # A user without portcullis:admin is refused with a clear message.
    page.get_by_label("Username", exact=True).fill(ALICE[0])
    page.get_by_label("Password", exact=True).fill(ALICE[1])
    page.get_by_role("button", name="Sign in").click()
    status_starts(page, "This account is not an administrator")

    page.get_by_label("Username", exact=True).fill(ROOT[0])
    page.get_by_label("Password", exact=True).fill(ROOT[1])
    with page.expect_response("**/oauth/token") as answer:
        page.get_by_label("Password", exact=True).press("Enter")
    assert answer.value.status == 200
    console_token = answer.value.json()["access_token"]
    assert "refresh_token" not in answer.value.json()
    page.wait_for_selector("body[data-state='signed-in']")
    assert page.text_content("[data-testid=whoami]") == "root"
    # Nothing kept in the browser: the token lives in the script's memory only.
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert page.evaluate("document.cookie") == ""
    assert page.context.cookies() == []

    # Clients: all listed; the filter narrows to the demo's.
    page.wait_for_selector(f"tr[data-client-id='{DEMO_CLIENT}']")
    expect(page.locator("#clients-table tbody tr")).to_have_count(5)
    page.screenshot(path=str(artifacts_dir / "admin-2-clients.png"), full_page=True)
    page.get_by_label("Filter clients").fill("demo")
    expect(page.locator("#clients-table tbody tr")).to_have_count(1)
    row = page.locator(f"tr[data-client-id='{DEMO_CLIENT}']")
    assert row.get_by_test_id("client-status").text_content() == "active"

    row.get_by_role("button", name=f"Show {DEMO_CLIENT}").click()
    page.wait_for_selector("#client-detail:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "client-detail-heading"
    assert "Sign-in demo" in page.text_content("#client-detail-facts")
    # A web client's details name its own refresh cookie.
    assert page.text_content("[data-fact=refresh_cookie]") == f"__Host-portcullis-refresh-{DEMO_CLIENT}"

    with page.expect_response(f"**/admin/v1/clients/{DEMO_CLIENT}/revoke") as revoked:
        row.get_by_role("button", name=f"Revoke {DEMO_CLIENT}").click()
    assert revoked.value.status == 200
    assert dialogs and DEMO_CLIENT in dialogs[-1]
    status_starts(page, f"Client {DEMO_CLIENT} revoked")
    page.wait_for_selector(f"tr[data-client-id='{DEMO_CLIENT}'][data-status='revoked']")
    expect(row.get_by_role("button", name=f"Revoke {DEMO_CLIENT}")).to_have_count(0)
    expect(page.locator("#client-detail-facts")).to_contain_text("revoked")
    page.screenshot(path=str(artifacts_dir / "admin-3-client-revoked.png"), full_page=True)

    # The revoked client's next token requests fail: 401 invalid_client.
    web = server.web_sign_in(DEMO_CLIENT, ALICE)
    assert (web.status, web.body.get("error")) == (401, "invalid_client"), web
    token = server.password_grant(DEMO_CLIENT, ALICE)
    assert (token.status, token.body.get("error")) == (401, "invalid_client"), token

    # Users, reached with the keyboard: alice signs in on a phone; the console signs her out.
    assert server.password_grant(PHONE_CLIENT, ALICE, device_name="Alice's phone").status == 200
    page.get_by_role("button", name="Users").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("tr[data-username='alice']")
    assert page.evaluate("document.activeElement.id") == "users-heading"
    page.get_by_label("Filter users").fill("ali")
    expect(page.locator("#users-table tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Devices of alice").click()
    phone = page.locator("#devices-table tbody tr", has_text="Alice's phone")
    expect(phone).to_have_count(1)
    page.screenshot(path=str(artifacts_dir / "admin-4-devices.png"), full_page=True)
    phone.get_by_role("button", name="Sign out Alice's phone").click()
    status_starts(page, "alice signed out of Alice's phone.")
    expect(page.locator("#devices-table tbody tr")).to_have_count(0)

    page.get_by_role("button", name="Disable alice").click()
    status_starts(page, "alice disabled")
    page.wait_for_selector("tr[data-username='alice'][data-status='disabled']")
    refused = server.password_grant(PHONE_CLIENT, ALICE)
    assert (refused.status, refused.body.get("error")) == (400, "invalid_grant")

    # Keys: rotate, one more key listed.
    page.get_by_role("button", name="Signing keys").click()
    page.wait_for_selector("#keys-table tbody tr")
    keys_before = page.locator("#keys-table tbody tr").count()
    page.get_by_label("Algorithm of the new key").select_option("EdDSA")
    page.get_by_role("button", name="Rotate keys").click()
    status_starts(page, "New EdDSA key")
    expect(page.locator("#keys-table tbody tr")).to_have_count(keys_before + 1)

    # Audit log: every action above, newest first.
    page.get_by_role("button", name="Audit log").click()
    page.wait_for_selector("#audit-table tbody tr")
    actions = page.locator("#audit-table tbody tr td:nth-child(3)").all_text_contents()
    for action in ["keys.rotate", "user.disable", "device.sign_out", "client.revoke"]:
        assert action in actions, actions
    assert actions.index("keys.rotate") < actions.index("client.revoke")
    page.screenshot(path=str(artifacts_dir / "admin-5-audit.png"), full_page=True)

    # Signing out forgets the token and revokes it; the console is back at the form.
    clients = server.request("GET", "/admin/v1/clients", headers={"Authorization": f"Bearer {console_token}"})
    assert clients.status == 200
    with page.expect_response("**/oauth/revoke") as revoked_token:
        page.get_by_role("button", name="Sign out", exact=True).click()
    assert revoked_token.value.status == 200
    page.wait_for_selector("body[data-state='signed-out']")
    expect(page.locator("#clients-table tbody tr")).to_have_count(0)
    clients = server.request("GET", "/admin/v1/clients", headers={"Authorization": f"Bearer {console_token}"})
    assert clients.status == 401
    assert not csp_errors, csp_errors
