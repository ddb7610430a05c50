"""SPEC §10.5: the target ends an impersonation of them ("End it now"): `POST
/.actas/sessions/{id}/end`, CSRF as §4, only the target, `200` JSON or `303` back for forms,
`end_reason: "ended_by_target"`, enforced before the administrator's next request is
forwarded — on every instance."""
import json
import urllib.parse

import pytest

from conftest import ORIGIN, request_bytes, session_header
from postgres_fixtures import make_pair, pg_database, postgres_server  # noqa: F401
from test_changes_acknowledged import forwarded_as
from test_impersonation import Admin, config, events, setup_site

pytestmark = pytest.mark.protocols("http/1.1", "h2")


@pytest.fixture
def site(make_proxy):
    proxy = make_proxy(config())
    setup_site(proxy)
    return proxy


def end(person, session_id, headers=(), body=b"", content_type="application/json"):
    return person.proxy.request(request_bytes("POST", f"/.actas/sessions/{session_id}/end", [
        session_header(person.cookie), ("Content-Type", content_type), ("Accept", "application/json"), *headers], body))


def test_the_target_ends_it_and_the_administrators_next_request_is_refused(site):
    admin = Admin(site, "admin")
    session = admin.start("emp")[1]["id"]
    assert admin.fetch("/before-kill").status == 200
    emp = Admin(site, "emp")
    response = end(emp, session, [("X-CSRF-Token", emp.csrf), ("Origin", ORIGIN)])
    assert response.status == 200, response
    body = json.loads(response.body)
    assert body["id"] == session and body["end_reason"] == "ended_by_target" and body["ended_at"]
    refused = admin.fetch("/after-kill")
    assert refused.status == 403, refused
    assert json.loads(refused.body)["end_reason"] == "ended_by_target"
    assert forwarded_as(site, "/after-kill") == []
    ended = [e for e in events(site, "impersonation_ended") if e.get("session_id") == session]
    assert [e["end_reason"] for e in ended] == ["ended_by_target"]


def test_a_form_post_is_sent_back_and_the_browser_sees_the_ended_page(site):
    admin = Admin(site, "admin")
    session = admin.start("emp")[1]["id"]
    emp = Admin(site, "emp")
    form = urllib.parse.urlencode({"csrf_token": emp.csrf, "rd": "/.actas/"}).encode()
    response = end(emp, session, [("Origin", ORIGIN)], form, "application/x-www-form-urlencoded")
    assert response.status == 303 and response.header("location") == "/.actas/", response
    navigation = admin.browse("/after-form-kill")
    assert navigation.status == 303 and navigation.header("location") == f"/.actas/ended?id={session}", navigation
    page = admin.browse(navigation.header("location"))
    assert page.status == 200 and b"ended_by_target" in page.body or b"ended the session" in page.body, page
    assert forwarded_as(site, "/after-form-kill") == []


@pytest.mark.parametrize("attack", ["no-token", "wrong-token", "cross-site-origin", "cross-site-fetch"])
def test_csrf_on_the_end_endpoint_is_refused_and_the_session_goes_on(site, attack):
    admin = Admin(site, "admin")
    session = admin.start("emp")[1]["id"]
    emp = Admin(site, "emp")
    headers = {
        "no-token": [("Origin", ORIGIN)],
        "wrong-token": [("X-CSRF-Token", "x" * len(emp.csrf)), ("Origin", ORIGIN)],
        "cross-site-origin": [("X-CSRF-Token", emp.csrf), ("Origin", "https://evil.example")],
        "cross-site-fetch": [("X-CSRF-Token", emp.csrf), ("Sec-Fetch-Site", "cross-site")],
    }[attack]
    response = end(emp, session, headers)
    assert response.status == 403 and json.loads(response.body)["error"] == "csrf", response
    assert admin.fetch(f"/still-acting-{attack}").status == 200
    assert forwarded_as(site, f"/still-acting-{attack}") == [["emp"]]


@pytest.mark.parametrize("who", ["admin", "admin2", "mgr"])
def test_only_the_target_may_end_it(site, who):
    admin = Admin(site, "admin")
    session = admin.start("emp")[1]["id"]
    other = admin if who == "admin" else Admin(site, who)
    response = end(other, session, [("X-CSRF-Token", other.csrf), ("Origin", ORIGIN)])
    assert response.status == 404 and json.loads(response.body)["error"] == "not_found", response
    assert admin.fetch(f"/not-ended-by-{who}").status == 200
    assert forwarded_as(site, f"/not-ended-by-{who}") == [["emp"]]


def test_get_is_not_allowed_and_signed_out_is_refused(site):
    admin = Admin(site, "admin")
    session = admin.start("emp")[1]["id"]
    response = site.request(request_bytes("GET", f"/.actas/sessions/{session}/end", [session_header(Admin(site, "emp").cookie)]))
    assert response.status == 405, response
    response = site.request(request_bytes("POST", f"/.actas/sessions/{session}/end", [("Origin", ORIGIN), ("Accept", "application/json")]))
    assert response.status == 401, response
    assert admin.fetch("/still-on").status == 200


def test_ended_through_one_postgresql_instance_is_enforced_by_the_other(pg_database, make_proxy):
    first, second = make_pair(make_proxy, pg_database)
    admin = Admin(second, "admin")
    session = admin.start("emp")[1]["id"]
    assert admin.fetch("/pg-before-kill").status == 200
    emp = Admin(first, "emp")
    assert end(emp, session, [("X-CSRF-Token", emp.csrf), ("Origin", ORIGIN)]).status == 200
    refused = admin.fetch("/pg-after-kill")
    assert refused.status == 403 and json.loads(refused.body)["end_reason"] == "ended_by_target", refused
    assert forwarded_as(second, "/pg-after-kill") == []


@pytest.mark.h1_only("Chromium picks its own protocol (test_http2.py has the h2 browser test)")
def test_the_target_sees_the_notice_on_the_console_home_and_ends_it_in_chromium(site):
    """SPEC §10.5: "NAME (username) is acting as you since HH:MM — reason: … — See what they
    do — End it now"; the click ends it and the administrator's next page is the ended page."""
    import re

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from browser import chromium_driver, screenshot, sign_in
    from conftest import PASSWORD
    admin = Admin(site, "admin")
    session = admin.start("emp")[1]["id"]
    driver = chromium_driver()
    base = f"https://localhost:{site.https_port}"
    try:
        sign_in(driver, base, "emp", PASSWORD)
        driver.get(base + "/.actas/")
        notice = driver.find_element(By.CSS_SELECTOR, ".target-notice")
        text = " ".join(notice.text.split())
        assert re.fullmatch(r"Ada Admin \(admin\) is acting as you since \d\d:\d\d — reason: Ticket 4711: the report page is blank"
                            r" — See what they do — End it now", text), text
        link = notice.find_element(By.LINK_TEXT, "See what they do")
        assert link.get_attribute("href") == f"{base}/.actas/sessions/{session}"
        screenshot(driver, "target-notice-console-home")
        notice.find_element(By.XPATH, ".//button[normalize-space()='End it now']").click()
        WebDriverWait(driver, 10).until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".target-notice"))
        assert driver.current_url == base + "/.actas/"
    finally:
        driver.quit()
    navigation = admin.browse("/after-the-click")
    assert navigation.status == 303 and navigation.header("location") == f"/.actas/ended?id={session}", navigation
    assert forwarded_as(site, "/after-the-click") == []
