"""SPEC §7, issue 15 items 1 and 2: the application's script-readable cookies while
impersonating, and an impersonation that belongs to the sign-in session that started it
(two sign-ins of the same administrator over real TLS)."""
import json
import sqlite3
import time
import urllib.parse

import pytest

from conftest import ORIGIN, header_values, me, request_bytes, run, session_header, wait_for
from test_impersonation import Admin, Upstream_records, config, end_event, events, fresh, setup_site, started  # noqa: F401

pytestmark = pytest.mark.protocols("http/1.1", "h2")


def forwarded(proxy, path):
    records = [r for r in Upstream_records(proxy) if r["target"] == path]
    assert len(records) == 1, records
    return records[0]


def sign_out(proxy, admin):
    body = urllib.parse.urlencode({"csrf_token": admin.csrf}).encode()
    return proxy.request(request_bytes("POST", "/.actas/logout", [
        session_header(admin.cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN)], body))


# ---- item 2: an impersonation belongs to its sign-in ---------------------------------------------

def test_second_sign_in_browses_as_the_administrator_and_cannot_chain(fresh):
    proxy = fresh()
    first = Admin(proxy, "admin")
    session = started(first)
    second = Admin(proxy, "admin")  # another browser, or a script, of the same administrator

    assert me(proxy, second.cookie)["impersonation"] is None
    assert me(proxy, first.cookie)["impersonation"]["id"] == session
    assert second.fetch("/from-second").status == 200
    record = forwarded(proxy, "/from-second")
    assert header_values(record, "X-Forwarded-User") == ["admin"]
    assert header_values(record, "X-Impersonator-User") == [] and header_values(record, "X-Impersonation-Id") == []
    assert first.fetch("/from-first").status == 200
    assert header_values(forwarded(proxy, "/from-first"), "X-Forwarded-User") == ["emp"]

    # One impersonation per administrator: the second sign-in cannot start another one, and
    # cannot extend or exit the first one's either.
    response, body = second.start("far")
    assert response.status == 403 and body["error"] == "chaining", response
    response, body = second.api("PATCH", "/.actas/api/v1/impersonation", {"duration": "10m"})
    assert response.status == 404 and body["error"] == "not_impersonating", response
    response, body = second.api("DELETE", "/.actas/api/v1/impersonation")
    assert response.status == 404 and body["error"] == "not_impersonating", response
    assert me(proxy, first.cookie)["impersonation"]["id"] == session

    # Signing out of the other sign-in does not end it.
    assert sign_out(proxy, second).status == 303
    assert first.fetch("/after-other-sign-out").status == 200
    assert header_values(forwarded(proxy, "/after-other-sign-out"), "X-Forwarded-User") == ["emp"]
    assert not any(e.get("session_id") == session for e in events(proxy, "impersonation_ended"))

    # Signing out of the sign-in that started it does.
    assert sign_out(proxy, first).status == 303
    assert end_event(proxy, session)["end_reason"] == "actor_signed_out"


def test_end_notice_goes_to_the_sign_in_that_was_acting(fresh):
    proxy = fresh()
    first = Admin(proxy, "admin")
    session = started(first)
    second = Admin(proxy, "admin")
    run(["sessions", "end", session, "--config", str(proxy.config_path)])
    assert end_event(proxy, session)["end_reason"] == "ended_by_operator"
    # The other browser was never acting: it goes on as the administrator, no notice...
    response = second.browse("/second-after-end")
    assert response.status == 200, response
    assert header_values(forwarded(proxy, "/second-after-end"), "X-Forwarded-User") == ["admin"]
    # ...and the notice is still there for the browser that was.
    response = first.fetch("/first-after-end")
    assert response.status == 403 and json.loads(response.body)["end_reason"] == "ended_by_operator", response
    assert all(r["target"] != "/first-after-end" for r in Upstream_records(proxy))


def test_an_impersonation_does_not_carry_into_a_new_sign_in(fresh):
    """A browser left acting and closed: the next sign-in is a new session and browses as the
    administrator. While the old sign-in lives, its impersonation stays (and the new sign-in
    meets `chaining`); once that sign-in is gone (here removed from the store, as an expiry or
    a sign-out on another instance does), the impersonation ends as `actor_signed_out`."""
    proxy = fresh()
    old = Admin(proxy, "admin")
    session = started(old)
    page = with_cookies(old, "GET", "/csrf-app?old", ["csrftoken=MINE"])
    app_token = page.all("set-cookie")[0].split(";")[0].split("=", 1)[1]
    new = Admin(proxy, "admin")
    assert new.fetch("/new-sign-in").status == 200
    assert header_values(forwarded(proxy, "/new-sign-in"), "X-Forwarded-User") == ["admin"]
    assert new.start("far")[1]["error"] == "chaining"

    db = sqlite3.connect(proxy.dir / "data" / "actas.db")
    row = db.execute("SELECT sign_in_session FROM impersonations WHERE id = ?", (session,)).fetchone()
    assert row[0] and len(row[0]) == 64, row  # the sign-in's id hash, never the cookie value
    assert old.cookie not in row[0]
    db.execute("DELETE FROM sessions WHERE id_hash = ?", (row[0],))
    db.execute("INSERT INTO changes (kind, key, at) VALUES ('session', ?, ?)", (row[0], time.time()))
    db.commit()
    db.close()

    assert end_event(proxy, session)["end_reason"] == "actor_signed_out"
    # The same browser, signed in anew, still holds the app's value from that session: it does
    # not reach the app as the administrator, and the first answer puts their own value back.
    leftover = with_cookies(new, "GET", "/csrf-app?leftover", [f"csrftoken={app_token}"])
    assert app_cookies_seen(proxy, "/csrf-app?leftover") == ["csrftoken=MINE"]
    assert [c.split(";")[0] for c in leftover.all("set-cookie") if c.startswith("csrftoken=")] == ["csrftoken=MINE"]
    response, body = new.start("far")
    assert response.status == 201, response
    assert new.fetch("/new-acting").status == 200
    assert header_values(forwarded(proxy, "/new-acting"), "X-Forwarded-User") == ["far"]


# ---- item 1: the app's script-readable cookies -------------------------------------------------------

def with_cookies(admin, method, path, browser_cookies, extra=(), body=b""):
    """A request of the administrator's browser that also holds app cookies."""
    cookie = "; ".join([f"__Host-actas_session={admin.cookie}", *browser_cookies])
    return admin.proxy.request(request_bytes(method, path, [("Cookie", cookie), *extra], body))


def app_cookies_seen(proxy, path):
    return header_values(forwarded(proxy, path), "Cookie")


def start_read_write(admin, target="emp"):
    response, body = admin.start(target, mode="read-write")
    assert response.status == 201, response
    return body["id"]


def test_script_readable_cookie_reaches_the_browser_and_the_admin_value_comes_back_at_exit(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    own = ["csrftoken=ADMIN-OWN-TOKEN", "sessionid=admin-own-session"]
    start_read_write(admin)

    page = with_cookies(admin, "GET", "/csrf-app?first", own, [("Accept", "text/html"), ("Sec-Fetch-Mode", "navigate")])
    assert page.status == 200, page
    set_cookie = page.all("set-cookie")
    # The script-readable cookie goes to the browser exactly as the app wrote it; the HttpOnly one does not.
    assert len(set_cookie) == 1, set_cookie
    name, _, rest = set_cookie[0].partition("=")
    app_token, _, attributes = rest.partition(";")
    assert name == "csrftoken" and attributes.strip() == "Max-Age=31449600; Path=/; SameSite=Lax", set_cookie
    # The app was sent none of the administrator's own cookies (nor the proxy's).
    assert app_cookies_seen(proxy, "/csrf-app?first") == []

    # The page's script sends back what it read; the browser now holds the app's value.
    now_held = [f"csrftoken={app_token}", "sessionid=admin-own-session"]
    post = with_cookies(admin, "POST", "/csrf-app/post", now_held, [("X-CSRFToken", app_token), ("Content-Type", "application/json")], b"{}")
    assert post.status == 200, post
    sent = app_cookies_seen(proxy, "/csrf-app/post")
    assert len(sent) == 1 and f"csrftoken={app_token}" in sent[0] and "sessionid=emp-" in sent[0], sent
    assert "admin-own" not in sent[0]

    # A value the browser makes up for that name is not what the app is sent: the session's is.
    forged = with_cookies(admin, "POST", "/csrf-app/post?forged", ["csrftoken=FORGED"], [("X-CSRFToken", "FORGED")], b"{}")
    assert forged.status == 403, forged
    assert "FORGED" not in app_cookies_seen(proxy, "/csrf-app/post?forged")[0]

    exit_response, _ = admin.api("DELETE", "/.actas/api/v1/impersonation")
    assert exit_response.status == 200, exit_response
    restored = exit_response.all("set-cookie")
    assert len(restored) == 1, restored
    value, _, attributes = restored[0].partition(";")
    assert value == "csrftoken=ADMIN-OWN-TOKEN", restored
    assert "Path=/" in attributes and "SameSite=Lax" in attributes and "Expires=" in attributes and "HttpOnly" not in attributes

    # Back as the administrator: their own cookies reach the app as before, untouched.
    after = with_cookies(admin, "GET", "/csrf-app?after", own)
    assert after.status == 200 and after.all("set-cookie") == [], after
    assert app_cookies_seen(proxy, "/csrf-app?after") == ["csrftoken=ADMIN-OWN-TOKEN; sessionid=admin-own-session"]


def test_a_cookie_the_administrator_did_not_have_is_deleted_at_the_end(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    start_read_write(admin)
    page = with_cookies(admin, "GET", "/csrf-app", [])
    assert [c.split("=")[0] for c in page.all("set-cookie")] == ["csrftoken"]
    exit_response = admin.form("/.actas/impersonate/exit", {"rd": "/"})
    assert exit_response.status == 303
    assert exit_response.all("set-cookie") == ["csrftoken=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax"]


def test_the_app_deleting_its_cookie_does_not_delete_the_administrators(fresh):
    """Django deletes its HttpOnly session cookie without the flag: the administrator's own
    `sessionid` in the browser must not go with it (the session's own one goes from the jar)."""
    proxy = fresh()
    admin = Admin(proxy, "admin")
    start_read_write(admin)
    with_cookies(admin, "GET", "/csrf-app", ["sessionid=admin-own"])
    logout = with_cookies(admin, "GET", "/csrf-app/logout", ["sessionid=admin-own"])
    assert logout.status == 200 and logout.all("set-cookie") == [], logout
    with_cookies(admin, "GET", "/csrf-app?after-logout", ["sessionid=admin-own"])
    sent = app_cookies_seen(proxy, "/csrf-app?after-logout")
    assert len(sent) == 1 and "sessionid" not in sent[0] and "csrftoken=" in sent[0], sent


def test_restored_on_the_ended_notice_and_on_sign_out(fresh):
    proxy = fresh()
    admin = Admin(proxy, "admin")
    session = start_read_write(admin)
    with_cookies(admin, "GET", "/csrf-app", ["csrftoken=MINE"])
    run(["sessions", "end", session, "--config", str(proxy.config_path)])
    assert end_event(proxy, session)["end_reason"] == "ended_by_operator"
    notice = with_cookies(admin, "GET", "/next", ["csrftoken=leftover"], [("Accept", "text/html"), ("Sec-Fetch-Mode", "navigate")])
    assert notice.status == 303 and notice.header("location") == f"/.actas/ended?id={session}", notice
    assert [c.split(";")[0] for c in notice.all("set-cookie")] == ["csrftoken=MINE"]
    # Given once: the next response has nothing more to put back.
    assert admin.browse(f"/.actas/ended?id={session}").all("set-cookie") == []

    other = start_read_write(admin)
    with_cookies(admin, "GET", "/csrf-app", [])
    response = sign_out(proxy, admin)
    assert response.status == 303
    assert end_event(proxy, other)["end_reason"] == "actor_signed_out"
    assert "csrftoken=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax" in response.all("set-cookie")


@pytest.mark.h1_only("Chromium picks its own protocol (test_http2.py has the h2 browser test)")
def test_chromium_script_reads_the_csrf_cookie_while_impersonating(fresh):
    """Django's AJAX pattern in a real browser: the page's script reads `csrftoken` from
    `document.cookie` and sends it as `X-CSRFToken`; after exit the administrator's own
    `csrftoken` is back and their own (HttpOnly) app session was never touched."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from browser import chromium_driver, screenshot, sign_in
    from conftest import PASSWORD
    proxy = fresh()
    driver = chromium_driver()
    base = f"https://localhost:{proxy.https_port}"

    def token():
        return driver.execute_script("return (document.cookie.split('; ').find(c => c.startsWith('csrftoken=')) || '').slice(10)")

    try:
        sign_in(driver, base, "admin", PASSWORD)
        driver.get(base + "/csrf-app?as-admin")
        assert driver.execute_script("return window.csrfResult") == 200
        own_token = token()
        assert own_token
        own_session = [c for c in app_cookies_seen(proxy, "/csrf-app/post")[-1].split("; ") if c.startswith("sessionid=")]

        csrf = driver.execute_script("return fetch('/.actas/api/v1/me').then(r => r.json()).then(j => j.csrf_token)")
        status = driver.execute_script(
            "return fetch('/.actas/api/v1/impersonation', {method: 'POST', headers: {'Content-Type': 'application/json',"
            " 'X-CSRF-Token': arguments[0]}, body: JSON.stringify({target: 'emp', reason: 'Ticket 4711: the report page is blank',"
            " mode: 'read-write'})}).then(r => r.status)", csrf)
        assert status == 201

        driver.get(base + "/csrf-app?as-emp")
        assert driver.find_element(By.ID, "user").text == "emp"
        assert driver.execute_script("return window.csrfResult") == 200, driver.page_source
        assert token() and token() != own_token
        screenshot(driver, "app-cookies-csrf-while-impersonating")

        # Exit from the banner (a real form POST; the browser comes back to this page as itself).
        banner = driver.find_element(By.TAG_NAME, "actas-banner")
        driver.execute_script("arguments[0].shadowRoot.querySelector('form[data-actas=exit] button').click()", banner)
        WebDriverWait(driver, 10, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
            lambda d: d.find_element(By.ID, "user").text == "admin")
        assert token() == own_token
        driver.get(base + "/csrf-app?back")
        assert driver.find_element(By.ID, "user").text == "admin"
        assert driver.execute_script("return window.csrfResult") == 200
        back = [r for r in Upstream_records(proxy) if r["target"] == "/csrf-app/post"][-1]
        assert [c for c in header_values(back, "Cookie")[0].split("; ") if c.startswith("sessionid=")] == own_session
        screenshot(driver, "app-cookies-after-exit")
    finally:
        driver.quit()
