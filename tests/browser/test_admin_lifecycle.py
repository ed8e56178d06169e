"""The admin console creates, edits and deletes against a real Portcullis: a confidential
client (its secret shown once, with a copy button, and working at the token endpoint), edited
and given a new secret; a user created, edited, given a password and deleted after typing
their name, with the keyboard where it matters.
"""

import base64
import re

import pytest
from playwright.sync_api import expect

from portcullis_server import ALICE, ROOT, running

CAROL = ("carol", "ochre-pelican-drifts-over-quiet-harbor")
NEW_PASSPHRASE = "violet-anvil-whispers-beneath-granite"


@pytest.fixture(scope="module")
def server():
    with running(access_token_ttl=600, demo=False) as s:
        yield s


def status_starts(page, text):
    expect(page.locator("#status")).to_have_text(re.compile("^" + re.escape(text)))


def basic_grant(server, client_id, secret, user):
    auth = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    form = {"grant_type": "password", "username": user[0], "password": user[1]}
    return server.request("POST", "/oauth/token", form, headers={"Authorization": f"Basic {auth}"})


def sign_in(page, server):
    page.goto(f"{server.base}/admin/")
    page.wait_for_selector("body[data-state='signed-out']")
    page.get_by_label("Username", exact=True).fill(ROOT[0])
    page.get_by_label("Password", exact=True).fill(ROOT[1])
    page.get_by_label("Password", exact=True).press("Enter")
    page.wait_for_selector("body[data-state='signed-in']")
    page.wait_for_selector("#clients-table tbody tr")


def test_console_creates_edits_and_rotates_a_client(page, context, server, artifacts_dir):
    csp_errors, dialogs = [], []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    sign_in(page, server)

    page.get_by_role("button", name="New client").click()
    assert page.evaluate("document.activeElement.id") == "client-form-heading"
    page.get_by_label("Client id").fill("billing")
    page.get_by_label("Client name").fill("Billing service")
    page.get_by_label("Client scope").fill("read")
    page.screenshot(path=str(artifacts_dir / "admin-lifecycle-1-new-client.png"), full_page=True)
    with page.expect_response("**/admin/v1/clients") as created:
        page.get_by_role("button", name="Create client").click()
    assert created.value.status == 201
    secret = page.get_by_test_id("client-secret")
    expect(secret).not_to_be_empty()
    shown = secret.text_content()
    assert shown == created.value.json()["client_secret"]
    status_starts(page, "Client billing created; copy its secret now.")
    assert page.evaluate("document.activeElement.id") == "client-secret-heading"
    page.get_by_role("button", name="Copy").click()
    status_starts(page, "Secret copied")
    assert page.evaluate("navigator.clipboard.readText()") == shown
    page.screenshot(path=str(artifacts_dir / "admin-lifecycle-2-secret.png"), full_page=True)
    # The secret works at the token endpoint, and is gone from the page once done.
    assert basic_grant(server, "billing", shown, ALICE).status == 200
    assert basic_grant(server, "billing", "wrong", ALICE).status == 401
    page.get_by_role("button", name="Done").click()
    expect(page.locator("#client-secret")).to_be_hidden()
    assert shown not in page.content()

    # Edit: the name and sign-up.
    page.wait_for_selector("tr[data-client-id='billing']")
    page.get_by_role("button", name="Show billing").click()
    page.get_by_role("button", name="Edit this client").click()
    expect(page.get_by_label("Client name")).to_have_value("Billing service")
    page.get_by_label("Client name").fill("Billing")
    page.get_by_label("Users may sign up through this client").check()
    page.get_by_label("Sign-up scope").fill("read")
    expect(page.get_by_label("First-party app")).not_to_be_checked()
    page.get_by_label("First-party app").check()
    page.get_by_label("Requires a second factor").check()
    with page.expect_response("**/admin/v1/clients/billing") as changed:
        page.get_by_role("button", name="Save changes").click()
    assert changed.value.status == 200
    assert changed.value.json()["first_party"] is True
    assert changed.value.json()["mfa_required"] is True
    status_starts(page, "Client billing changed.")
    expect(page.locator("[data-fact=client_name]")).to_have_text("Billing")
    expect(page.locator("[data-fact=allow_sign_up]")).to_have_text("yes")
    expect(page.locator("[data-fact=first_party]")).to_have_text("yes")
    expect(page.locator("[data-fact=mfa_required]")).to_have_text("yes")
    # Alice has no second factor: this client now refuses her.
    refused = basic_grant(server, "billing", shown, ALICE)
    assert refused.status == 400 and refused.body["error"] == "invalid_grant"
    page.get_by_role("button", name="Edit this client").click()
    expect(page.get_by_label("Requires a second factor")).to_be_checked()
    page.get_by_label("Requires a second factor").uncheck()
    with page.expect_response("**/admin/v1/clients/billing") as changed:
        page.get_by_role("button", name="Save changes").click()
    assert changed.value.status == 200 and changed.value.json()["mfa_required"] is False

    # Rotate, ending the old secret at once.
    page.get_by_label("Old secret keeps working").select_option("0")
    with page.expect_response("**/admin/v1/clients/billing/secret") as rotated:
        page.get_by_role("button", name="Rotate secret").click()
    assert rotated.value.status == 200
    new_secret = page.get_by_test_id("client-secret").text_content()
    assert new_secret and new_secret != shown
    assert basic_grant(server, "billing", shown, ALICE).status == 401
    assert basic_grant(server, "billing", new_secret, ALICE).status == 200
    assert dialogs and "billing" in dialogs[-1]
    assert csp_errors == []


def test_console_creates_edits_and_deletes_a_user(page, server, artifacts_dir):
    csp_errors = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, server)
    page.get_by_role("button", name="Users", exact=True).click()
    page.wait_for_selector("tr[data-username='root']")

    page.get_by_role("button", name="New user").click()
    page.get_by_label("Sign-in name").fill(CAROL[0])
    page.get_by_label("Initial passphrase").fill(CAROL[1])
    page.get_by_label("Email", exact=True).fill("carol@example.com")
    page.get_by_label("User scope").fill("read")
    with page.expect_response("**/admin/v1/users") as created:
        page.get_by_label("User scope").press("Enter")
    assert created.value.status == 201
    status_starts(page, "User carol created.")
    row = page.locator("tr[data-username='carol']")
    expect(row).to_have_count(1)
    assert server.password_grant("phone-app", CAROL).status == 200

    # Edit with the keyboard: pick the user, open the form, make her an administrator.
    page.get_by_label("User to manage").fill("carol")
    page.get_by_label("User to manage").press("Enter")
    expect(page.locator("#user-form-heading")).to_have_text("Edit carol")
    expect(page.get_by_label("Email", exact=True)).to_have_value("carol@example.com")
    page.get_by_label("Administrator (portcullis:admin)").check()
    page.get_by_label("User scope").fill("read write")
    with page.expect_response("**/admin/v1/users/carol") as changed:
        page.get_by_role("button", name="Save changes").click()
    assert changed.value.status == 200
    assert changed.value.json()["scope"] == "portcullis:admin read write"
    status_starts(page, "carol changed.")
    expect(row).to_contain_text("portcullis:admin read write")

    # A new password: the old one stops.
    page.get_by_label("New passphrase").fill(NEW_PASSPHRASE)
    page.get_by_label("New passphrase").press("Enter")
    status_starts(page, "Password of carol set")
    assert server.password_grant("phone-app", CAROL).status == 400
    page.screenshot(path=str(artifacts_dir / "admin-lifecycle-3-user.png"), full_page=True)

    # Delete: only once the name is typed exactly.
    delete = page.get_by_role("button", name="Delete user")
    expect(delete).to_be_disabled()
    page.get_by_label("Type the user's name to confirm deletion").fill("caro")
    expect(delete).to_be_disabled()
    page.get_by_label("Type the user's name to confirm deletion").fill("carol")
    expect(delete).to_be_enabled()
    with page.expect_response("**/admin/v1/users/carol") as deleted:
        page.get_by_label("Type the user's name to confirm deletion").press("Enter")
    assert deleted.value.status == 200
    status_starts(page, "User carol deleted")
    expect(row).to_have_count(0)
    gone = server.password_grant("phone-app", ("carol", NEW_PASSPHRASE))
    assert (gone.status, gone.body.get("error")) == (400, "invalid_grant")
    assert csp_errors == []
