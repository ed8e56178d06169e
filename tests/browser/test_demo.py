"""The sign-in demo page (/demo/) against a real Portcullis with 3-second access tokens.

Signs in, sees the protected call succeed, checks the refresh cookie is out of the page's
reach, outlives the first access token through silent refreshes, resumes after a reload,
recovers from a 401 by refreshing, and signs out.
"""

import time

import pytest
from playwright.sync_api import expect

from portcullis_server import ALICE, DEMO_CLIENT, running

REFRESH_COOKIE = f"__Host-portcullis-refresh-{DEMO_CLIENT}"
TTL = 3


@pytest.fixture(scope="module")
def server():
    with running(access_token_ttl=TTL, demo=True) as s:
        yield s


# Waits use locator assertions (expect) and selectors, never wait_for_function: the page's CSP
# forbids eval, which polling a JavaScript predicate needs.


def web_calls(requests, path):
    return [r for r in requests if r.url.endswith(path)]


def test_demo_signs_in_refreshes_silently_and_signs_out(page, context, server, artifacts_dir):
    requests, csp_errors = [], []
    page.on("request", lambda r: requests.append(r))
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)

    # Fresh browser: the page tries to resume a session, finds no cookie, offers the form.
    page.goto(f"{server.base}/demo/")
    page.wait_for_selector("body[data-state='signed-out']")
    assert page.text_content("#status") == "Not signed in."
    page.screenshot(path=str(artifacts_dir / "demo-1-signed-out.png"), full_page=True)

    page.get_by_label("Username", exact=True).fill(ALICE[0])
    page.get_by_label("Password", exact=True).fill(ALICE[1])
    with page.expect_response("**/web/sign-in") as signed_in:
        page.get_by_role("button", name="Sign in").click()
    answer = signed_in.value
    assert answer.status == 200
    tokens = answer.json()
    assert "refresh_token" not in tokens and tokens["expires_in"] == TTL
    first_token = tokens["access_token"]
    sign_in_request = answer.request
    # DPoP: the page proved its key, and the tokens are bound to it.
    assert sign_in_request.header_value("dpop").count(".") == 2
    assert tokens["token_type"] == "DPoP"
    assert answer.header_value("dpop-nonce")
    assert sign_in_request.header_value("x-portcullis-csrf") == "1"
    assert sign_in_request.header_value("origin") == server.base
    set_cookie = answer.header_value("set-cookie")
    assert set_cookie.startswith(f"{REFRESH_COOKIE}=")
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict", "Max-Age="]:
        assert f"; {attribute}" in set_cookie, set_cookie
    assert answer.header_value("cache-control") == "no-store"

    # The protected call (GET /account/v1/me) succeeded and is shown.
    page.wait_for_selector("body[data-state='signed-in']")
    assert page.text_content("#status") == "Signed in as alice."
    assert page.text_content("[data-testid=me-username]") == "alice"
    assert page.text_content("[data-testid=me-client]") == DEMO_CLIENT
    assert page.text_content("[data-testid=me-scope]") == "read"
    assert page.text_content("[data-testid=me-sub]") == server.introspect(first_token)["sub"]
    assert page.text_content("[data-testid=me-token-type]") == "DPoP (bound to this browser's key)"
    # The access token is useless as a bearer token.
    assert server.me(first_token).status == 401
    assert page.evaluate("document.activeElement.id") == "signed-in-heading"
    page.screenshot(path=str(artifacts_dir / "demo-2-signed-in.png"), full_page=True)

    # The refresh token is an HttpOnly, Secure, SameSite=Strict, __Host- cookie: the browser
    # holds it, the page's scripts cannot see it, and nothing is in web storage.
    assert REFRESH_COOKIE not in page.evaluate("document.cookie")
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    cookies = {c["name"]: c for c in context.cookies()}
    cookie = cookies[REFRESH_COOKIE]
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/" and cookie["domain"] == "127.0.0.1"

    # A copy of the cookie, used from elsewhere with every header the page sends but without
    # the page's key, refreshes nothing.
    stolen = server.request(
        "POST", "/web/refresh", {"client_id": DEMO_CLIENT},
        headers={"Origin": server.base, "X-Portcullis-CSRF": "1", "Cookie": f"{REFRESH_COOKIE}={cookie['value']}"},
    )  # fmt: skip
    assert (stolen.status, stolen.body["error"]) == (400, "invalid_dpop_proof")

    # Outlive the first access token: wait until the server itself refuses it (3 s lifetime
    # plus the server's 10 s clock leeway); meanwhile the page refreshes silently.
    deadline = time.monotonic() + TTL + 20
    while server.active(first_token):
        assert time.monotonic() < deadline, "the first access token never expired"
        page.wait_for_timeout(500)  # not time.sleep: Playwright delivers events while it waits
    refreshed = web_calls(requests, "/web/refresh")
    assert len(refreshed) >= 3, [r.url for r in requests]  # one at load (no cookie), then silent ones
    assert all(r.header_value("x-portcullis-csrf") == "1" for r in refreshed)
    assert int(page.text_content("[data-testid=refreshes]")) >= 2

    before = len(web_calls(requests, "/account/v1/me"))
    page.get_by_role("button", name="Call /account/v1/me again").click()
    expect(page.locator("#status")).to_have_text("Protected call succeeded for alice.")
    assert len(web_calls(requests, "/account/v1/me")) == before + 1  # no 401 on the way
    page.screenshot(path=str(artifacts_dir / "demo-3-after-expiry.png"), full_page=True)

    # A reload loses the in-memory token; the cookie resumes the session.
    page.reload()
    page.wait_for_selector("body[data-state='signed-in']")
    assert page.text_content("#status") == "Welcome back, alice."

    # A protected call answered 401 (say, the token was revoked): the page refreshes once and
    # calls again.
    page.route(
        "**/account/v1/me",
        lambda route: route.fulfill(
            status=401, headers={"WWW-Authenticate": 'Bearer realm="portcullis", error="invalid_token"'}, body=""
        ),
        times=1,
    )
    refreshes_before = len(web_calls(requests, "/web/refresh"))
    with page.expect_response("**/web/refresh"):
        page.get_by_role("button", name="Call /account/v1/me again").click()
    expect(page.locator("#status")).to_have_text("Protected call succeeded for alice.")
    assert len(web_calls(requests, "/web/refresh")) >= refreshes_before + 1

    # Sign out: the sign-in is revoked, the cookie cleared, the last access token refused.
    with page.expect_response("**/web/refresh") as last:
        page.evaluate("1")  # wait for the next silent refresh, to know the live access token
    live_token = last.value.json()["access_token"]
    assert server.active(live_token)
    with page.expect_response("**/web/sign-out") as signed_out:
        page.get_by_role("button", name="Sign out").click()
    assert signed_out.value.status == 200
    page.wait_for_selector("body[data-state='signed-out']")
    assert page.text_content("#status") == "Signed out."
    assert REFRESH_COOKIE not in {c["name"] for c in context.cookies()}
    assert not server.active(live_token)
    page.screenshot(path=str(artifacts_dir / "demo-4-signed-out.png"), full_page=True)

    # And a reload does not resume anything.
    page.reload()
    page.wait_for_selector("body[data-state='signed-out']")
    assert not csp_errors, csp_errors


def test_wrong_password_is_reported_and_sets_no_cookie(page, context, server):
    page.goto(f"{server.base}/demo/")
    page.wait_for_selector("body[data-state='signed-out']")
    page.get_by_label("Username", exact=True).fill(ALICE[0])
    page.get_by_label("Password", exact=True).fill("not the password")
    with page.expect_response("**/web/sign-in") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 400
    expect(page.locator("#status")).to_have_text("Wrong username or password.")
    assert page.get_attribute("#status", "data-kind") == "error"
    assert page.evaluate("document.activeElement.id") == "password"
    assert REFRESH_COOKIE not in {c["name"] for c in context.cookies()}
