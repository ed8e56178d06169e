"""Chromium treats http://127.0.0.1 and http://localhost as secure contexts for cookies.

Secure, HttpOnly, SameSite=Strict and __Host-/__Secure- prefixed cookies set over plain http
on loopback are stored and sent back, so the server's production cookie attributes work in
local browser tests without an insecure-cookie switch. A non-loopback http origin would drop
them (see README.md). Also pins SameSite behaviour across sites (127.0.0.1 vs localhost).
"""

import json
from http.server import BaseHTTPRequestHandler

import pytest

from conftest import serve

SET_COOKIES = {
    "plain": "plain=1; Path=/",
    "secure": "secure=1; Secure; HttpOnly; SameSite=Strict; Path=/",
    "__Host-h": "__Host-h=1; Secure; HttpOnly; SameSite=Strict; Path=/",
    "__Secure-s": "__Secure-s=1; Secure; HttpOnly; SameSite=Strict; Path=/",
    "lax": "lax=1; Secure; HttpOnly; SameSite=Lax; Path=/",
    # Invalid everywhere: a __Host- cookie must be Secure. Proves the browser checks prefixes.
    "__Host-bad": "__Host-bad=1; HttpOnly; SameSite=Strict; Path=/",
}
ACCEPTED = {"plain", "secure", "__Host-h", "__Secure-s", "lax"}


class CookieHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, body: str, ctype: str, set_cookies: bool = False):
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if set_cookies:
            for value in SET_COOKIES.values():
                self.send_header("Set-Cookie", value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/set":  # Set-Cookie on a fetch() response
            self._reply("{}", "application/json", set_cookies=True)
        elif self.path == "/echo":  # the Cookie header the browser sent
            self._reply(json.dumps(self.headers.get("Cookie", "")), "application/json")
        elif self.path == "/":
            self._reply("<!doctype html><title>cookies</title><p>cookies</p>", "text/html")
        else:
            self.send_error(404)


def names(cookie_header: str) -> set[str]:
    return {part.split("=", 1)[0] for part in cookie_header.split("; ") if part}


@pytest.fixture(scope="module")
def cookie_server():
    with serve(CookieHandler) as url:
        yield int(url.rsplit(":", 1)[1])


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_secure_host_prefixed_cookies_round_trip_over_loopback_http(page, context, cookie_server, host):
    origin = f"http://{host}:{cookie_server}"
    page.goto(origin + "/")
    page.evaluate("() => fetch('/set', {credentials: 'include'}).then(r => r.text())")

    assert {c["name"] for c in context.cookies()} == ACCEPTED
    sent_by_fetch = page.evaluate("() => fetch('/echo', {credentials: 'include'}).then(r => r.json())")
    assert names(sent_by_fetch) == ACCEPTED
    page.goto(origin + "/echo")  # top-level, same-site navigation
    assert names(json.loads(page.text_content("body"))) == ACCEPTED
    assert page.evaluate("() => document.cookie") == "plain=1"  # HttpOnly ones are hidden from JS


def test_strict_cookie_not_sent_on_cross_site_navigation(page, context, cookie_server):
    # localhost and 127.0.0.1 are different sites: a link from one to the other is a cross-site
    # top-level navigation, as when a client app sends the user to an authorization endpoint.
    page.goto(f"http://127.0.0.1:{cookie_server}/")
    page.evaluate("() => fetch('/set', {credentials: 'include'}).then(r => r.text())")
    page.goto(f"http://localhost:{cookie_server}/")
    page.set_content(f'<a id="go" href="http://127.0.0.1:{cookie_server}/echo">go</a>')
    page.click("#go")
    page.wait_for_url(f"http://127.0.0.1:{cookie_server}/echo")
    assert names(json.loads(page.text_content("body"))) == {"plain", "lax"}
