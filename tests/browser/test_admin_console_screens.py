"""Every screen of the admin console at 1280x800: a screenshot of each (kept under
target/browser-artifacts/console/), no horizontal scrolling, every control reachable with the
Tab key, and what each screen shows a person: client types and readable labels, devices by
client name, key phases in words, the audit log with usernames, client names and labelled
subjects, times in the browser's locale with UTC on hover.
"""

import re

import pytest
from playwright.sync_api import expect

from portcullis_server import ALICE, API_CLIENT, CONSOLE_CLIENT, PHONE_CLIENT, ROOT, running

WIDTH, HEIGHT = 1280, 800
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(UTC\)$")


@pytest.fixture(scope="module")
def server():
    with running(access_token_ttl=600, demo=True) as s:
        yield s


@pytest.fixture()
def screens(artifacts_dir):
    d = artifacts_dir / "console"
    d.mkdir(parents=True, exist_ok=True)
    return d


def no_horizontal_scroll(page, screen):
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{screen}: the page scrolls sideways by {overflow}px at {WIDTH}x{HEIGHT}"


# Every control a keyboard user must reach: visible, enabled buttons, inputs, selects, links.
CONTROLS = """() => {
  const all = [...document.querySelectorAll('a[href], button, input, select, textarea')];
  const visible = (e) => e.offsetParent !== null || getComputedStyle(e).position === 'fixed';
  return all.filter((e) => visible(e) && !e.disabled).map((e, i) => {
    e.dataset.kbd = String(i);
    return i;
  });
}"""


def every_control_is_reachable_by_tab(page, screen):
    wanted = set(page.evaluate(CONTROLS))
    assert wanted, f"{screen}: no controls found"
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached = set()
    # Bounded: twice the number of controls, plus the skip link and the headings.
    for _ in range(2 * len(wanted) + 10):
        page.keyboard.press("Tab")
        mark = page.evaluate("document.activeElement ? document.activeElement.dataset.kbd ?? null : null")
        if mark is not None:
            reached.add(int(mark))
        if reached >= wanted:
            break
    missing = wanted - reached
    names = page.evaluate(
        "(ids) => ids.map((i) => { const e = document.querySelector(`[data-kbd='${i}']`);"
        " return e.outerHTML.slice(0, 120); })",
        sorted(missing),
    )
    assert not missing, f"{screen}: not reachable with Tab: {names}"


def check_screen(page, screens, name):
    page.screenshot(path=str(screens / f"{name}.png"), full_page=True)
    no_horizontal_scroll(page, name)
    every_control_is_reachable_by_tab(page, name)


def test_every_console_screen_fits_is_keyboard_reachable_and_reads_well(browser, server, screens):
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, locale="en-GB", timezone_id="Europe/Paris")
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    try:
        # A device for alice through the phone app, and a failed sign-in of root.
        assert server.password_grant(PHONE_CLIENT, ALICE, device_name="Alice's phone").status == 200
        assert server.password_grant(CONSOLE_CLIENT, (ROOT[0], "not the password at all")).status == 400

        page.goto(f"{server.base}/admin/")
        page.wait_for_selector("body[data-state='signed-out']")
        check_screen(page, screens, "1-sign-in")

        page.get_by_label("Username", exact=True).fill(ROOT[0])
        page.get_by_label("Password", exact=True).fill(ROOT[1])
        page.get_by_label("Password", exact=True).press("Enter")
        page.wait_for_selector("body[data-state='signed-in']")

        # Clients: a type column, then readable labels in the details.
        page.wait_for_selector(f"tr[data-client-id='{PHONE_CLIENT}']")
        types = {
            row.get_attribute("data-client-id"): row.get_by_test_id("client-type").text_content()
            for row in page.locator("#clients-table tbody tr").all()
        }
        assert types == {
            "portcullis-demo": "web",
            "notes-web": "web",
            CONSOLE_CLIENT: "public",
            PHONE_CLIENT: "public",
            API_CLIENT: "confidential",
        }, types
        created = page.locator(f"tr[data-client-id='{PHONE_CLIENT}'] time")
        assert RFC3339_UTC.match(created.get_attribute("title")), created.get_attribute("title")
        check_screen(page, screens, "2-clients")
        page.get_by_role("button", name=f"Show {PHONE_CLIENT}").click()
        page.wait_for_selector("#client-detail:not([hidden])")
        facts = page.locator("#client-detail-facts")
        expect(facts.locator("dt")).to_contain_text(["Client id", "Name", "Type", "Grant types"])
        assert page.text_content("[data-fact=type]") == "public"
        assert page.text_content("[data-fact=introspect]") == "no"
        assert page.text_content("[data-fact=token_endpoint_auth_method]").startswith("its client id only")
        check_screen(page, screens, "3-client-detail")

        # Users and a device: the client's name and the device's name.
        page.get_by_role("button", name="Users").click()
        page.wait_for_selector("tr[data-username='alice']")
        check_screen(page, screens, "4-users")
        page.get_by_role("button", name="Devices of alice").click()
        phone = page.locator("#devices-table tbody tr", has_text="Alice's phone")
        expect(phone).to_have_count(1)
        assert phone.get_by_test_id("device-client").text_content() == "Phone app"
        assert phone.get_by_test_id("device-client").get_attribute("title") == PHONE_CLIENT
        assert phone.get_by_test_id("device-name").text_content() == "Alice's phone"
        check_screen(page, screens, "5-devices")

        # Keys: after a rotation, one key signs and the new one is published, signing from a time.
        page.get_by_role("button", name="Signing keys").click()
        page.wait_for_selector("#keys-table tbody tr")
        page.get_by_role("button", name="Rotate keys").click()
        expect(page.locator("#keys-table tbody tr")).to_have_count(2)
        phases = page.locator("[data-testid=key-phase]").all_text_contents()
        assert phases[1] == "signing", phases
        assert re.match(r"^published, signs from \d\d:\d\d$", phases[0]), phases
        signs_from = page.locator("tr[data-phase=published] [data-testid=key-phase] time")
        assert RFC3339_UTC.match(signs_from.get_attribute("title"))
        check_screen(page, screens, "6-keys")

        # Audit log: names, not bare ids; the subject's kind labelled; locale times, UTC on hover.
        page.get_by_role("button", name="Audit log").click()
        page.wait_for_selector("#audit-table tbody tr")
        rows = page.locator("#audit-table tbody tr")
        rotate = rows.filter(has_text="keys.rotate").first
        assert rotate.get_by_test_id("audit-actor").text_content() == "root"
        assert rotate.get_by_test_id("audit-client").text_content() == "Admin console"
        assert rotate.get_by_test_id("audit-subject").locator(".kind").text_content() == "key"
        created = rows.filter(has_text="user.create").first
        assert created.get_by_test_id("audit-actor").text_content() == "command line"
        assert created.get_by_test_id("audit-subject").text_content() in ("user root", "user alice")
        failed = rows.filter(has_text="login.failure").first
        assert failed.get_by_test_id("audit-subject").text_content() == "user root"
        stamp = rotate.locator("time")
        assert RFC3339_UTC.match(stamp.get_attribute("title")), stamp.get_attribute("title")
        # en-GB in Paris: day/month/year and the local hour, not the UTC one.
        assert re.match(r"^\d\d/\d\d/\d{4}, \d\d:\d\d:\d\d$", stamp.text_content()), stamp.text_content()
        check_screen(page, screens, "7-audit")
    finally:
        context.close()
