"""Two web apps on one Portcullis, signed in side by side in one Chromium profile.

The demo page (client portcullis-demo) and a "notes" app (client notes-web: the same page with
its config.json naming the other client) run in two tabs of one browser context, so they share
one cookie jar and one origin. Each keeps its own refresh cookie: signing in to one does not
end the other's sign-in, and each signs out alone.
"""

import pytest
from playwright.sync_api import expect

from portcullis_server import ALICE, DEMO_CLIENT, NOTES_CLIENT, running


def cookie_name(client_id):
    return f"__Host-portcullis-refresh-{client_id}"


@pytest.fixture(scope="module")
def server():
    with running(access_token_ttl=600, demo=True) as s:
        yield s


def open_app(context, server, client_id):
    """A tab of the app `client_id`: the demo page, told its client by its config.json."""
    page = context.new_page()
    if client_id != DEMO_CLIENT:
        page.route("**/demo/config.json", lambda route: route.fulfill(json={"client_id": client_id}))
    page.goto(f"{server.base}/demo/")
    page.wait_for_selector("body[data-state='signed-out']")
    return page


def sign_in(page, client_id):
    page.get_by_label("Username", exact=True).fill(ALICE[0])
    page.get_by_label("Password", exact=True).fill(ALICE[1])
    with page.expect_response("**/web/sign-in") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 200
    assert answer.value.header_value("set-cookie").startswith(f"{cookie_name(client_id)}=")
    page.wait_for_selector("body[data-state='signed-in']")
    assert page.text_content("[data-testid=me-client]") == client_id
    return answer.value.json()["access_token"]


def still_signed_in(page, client_id):
    """A reload resumes the app's sign-in from its own cookie; returns the new access token."""
    with page.expect_response("**/web/refresh") as refreshed:
        page.reload()
    assert refreshed.value.status == 200, refreshed.value.text()
    page.wait_for_selector("body[data-state='signed-in']")
    expect(page.locator("#status")).to_have_text("Welcome back, alice.")
    assert page.text_content("[data-testid=me-client]") == client_id
    return refreshed.value.json()["access_token"]


def sign_out(page):
    with page.expect_response("**/web/sign-out") as answer:
        page.get_by_role("button", name="Sign out").click()
    assert answer.value.status == 200
    page.wait_for_selector("body[data-state='signed-out']")


def cookie_names(context):
    return {c["name"] for c in context.cookies()}


def test_two_web_apps_sign_in_side_by_side_and_each_signs_out_alone(context, server, artifacts_dir):
    demo = open_app(context, server, DEMO_CLIENT)
    notes = open_app(context, server, NOTES_CLIENT)

    sign_in(demo, DEMO_CLIENT)
    sign_in(notes, NOTES_CLIENT)
    assert {cookie_name(DEMO_CLIENT), cookie_name(NOTES_CLIENT)} <= cookie_names(context)
    # Neither page's scripts can read either cookie.
    assert "portcullis-refresh" not in demo.evaluate("document.cookie")

    # Signing in to notes did not overwrite the demo's sign-in: both resume after a reload.
    demo_token = still_signed_in(demo, DEMO_CLIENT)
    notes_token = still_signed_in(notes, NOTES_CLIENT)
    demo.screenshot(path=str(artifacts_dir / "two-apps-1-demo.png"), full_page=True)
    notes.screenshot(path=str(artifacts_dir / "two-apps-2-notes.png"), full_page=True)

    # The demo signs out alone: its cookie goes, its sign-in ends; notes stays signed in.
    sign_out(demo)
    assert cookie_name(DEMO_CLIENT) not in cookie_names(context)
    assert cookie_name(NOTES_CLIENT) in cookie_names(context)
    assert not server.active(demo_token)
    assert server.active(notes_token)
    notes_token = still_signed_in(notes, NOTES_CLIENT)
    demo.reload()
    demo.wait_for_selector("body[data-state='signed-out']")

    # Then notes signs out too, and the demo's (absent) sign-in is not involved.
    sign_out(notes)
    assert not {cookie_name(DEMO_CLIENT), cookie_name(NOTES_CLIENT)} & cookie_names(context)
    assert not server.active(notes_token)
    notes.reload()
    notes.wait_for_selector("body[data-state='signed-out']")


def test_a_cookie_of_another_app_neither_signs_in_nor_is_cleared(context, server):
    """The notes app's sign-in, planted under the demo's cookie name: the demo refuses it
    (invalid_grant), its sign-out neither ends the notes sign-in nor clears the cookie."""
    notes = open_app(context, server, NOTES_CLIENT)
    notes_token = sign_in(notes, NOTES_CLIENT)
    planted = next(c for c in context.cookies() if c["name"] == cookie_name(NOTES_CLIENT))
    context.add_cookies([{**planted, "name": cookie_name(DEMO_CLIENT)}])

    demo = context.new_page()
    with demo.expect_response("**/web/refresh") as refreshed:
        demo.goto(f"{server.base}/demo/")
    assert refreshed.value.status == 400
    assert refreshed.value.json()["error"] == "invalid_grant"
    demo.wait_for_selector("body[data-state='signed-out']")

    # Sign out of the demo as its page would (the demo shows no button while signed out).
    answer = demo.request.post(
        f"{server.base}/web/sign-out",
        form={"client_id": DEMO_CLIENT},
        headers={"Origin": server.base, "X-Portcullis-CSRF": "1"},
    )
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_grant"
    assert "set-cookie" not in answer.headers
    assert cookie_name(DEMO_CLIENT) in cookie_names(context)
    assert server.active(notes_token)
    still_signed_in(notes, NOTES_CLIENT)
