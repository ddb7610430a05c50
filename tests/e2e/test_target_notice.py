"""SPEC §10.5: while an impersonation of them is active, every HTML page the target loads
through the proxy shows "NAME (username) is acting as you since HH:MM — reason: … — See what
they do — End it now", inserted like the banner (§7); End it now and Revoke consent (§6) end
the session before the administrator's next request is forwarded."""
import html
import json
import re
import urllib.parse

import pytest

from conftest import ORIGIN, PASSWORD, import_users, request_bytes, session_header
from postgres_fixtures import pg_pair, pg_site_database, pg_site_template, postgres_server  # noqa: F401
from test_changes_acknowledged import forwarded_as
from test_impersonation import NOW, REASON, Admin, config, events, setup_site

pytestmark = pytest.mark.protocols("http/1.1", "h2")

SENTENCE = re.compile(r"Ada Admin \(admin\) is acting as you since (\d\d:\d\d) — reason: Ticket 4711: the report page is blank"
                      r" — See what they do — End it now")


@pytest.fixture
def site(make_proxy):
    proxy = make_proxy(config())
    setup_site(proxy)
    return proxy


def notice_text(body: bytes) -> str:
    """The notice's visible text, tags dropped and references decoded, or "" without one."""
    page = body.decode()
    found = re.search(r"<actas-notice\b.*?</actas-notice>", page, re.S)
    if not found:
        return ""
    text = re.sub(r"<[^>]+>", " ", found.group(0))
    return " ".join(html.unescape(text).split()).replace(" )", ")").replace("( ", "(")


def hhmm(started_at: str) -> str:
    return started_at[11:16]  # RFC 3339 UTC: the notice says the time in UTC


def browse(person, path, extra=()):
    return person.get(path, [("Accept", "text/html"), ("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "document"), *extra])


@pytest.mark.h1_only("Chromium picks its own protocol (test_http2.py has the h2 browser test)")
def test_the_target_sees_the_notice_on_an_app_page_and_ends_it_in_chromium(site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from browser import chromium_driver, screenshot, sign_in
    admin = Admin(site, "admin")
    started = admin.start("emp")[1]
    session = started["id"]
    driver = chromium_driver()
    base = f"https://localhost:{site.https_port}"
    try:
        sign_in(driver, base, "emp", PASSWORD)
        driver.get(base + "/page?kind=gzip")
        notice = driver.find_element(By.CSS_SELECTOR, "actas-notice")
        text = " ".join(notice.text.split())
        match = SENTENCE.search(text)
        assert match and match.group(1) == hhmm(started["started_at"]), text
        assert "hello page" in driver.find_element(By.TAG_NAME, "body").text
        link = notice.find_element(By.LINK_TEXT, "See what they do")
        assert link.get_attribute("href") == f"{base}/.actas/sessions/{session}"
        screenshot(driver, "target-notice-app-page")
        notice.find_element(By.XPATH, ".//button[normalize-space()='End it now']").click()
        WebDriverWait(driver, 10).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "actas-notice"))
        assert driver.current_url == base + "/page?kind=gzip"  # back on the page it was on
        assert "hello page" in driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.quit()
    navigation = admin.browse("/after-the-notice-click")
    assert navigation.status == 303 and navigation.header("location") == f"/.actas/ended?id={session}", navigation
    page = admin.browse(navigation.header("location"))
    assert page.status == 200, page
    assert forwarded_as(site, "/after-the-notice-click") == []
    ended = [e for e in events(site, "impersonation_ended") if e.get("session_id") == session]
    assert [e["end_reason"] for e in ended] == ["ended_by_target"]


@pytest.mark.h1_only("Chromium picks its own protocol (test_http2.py has the h2 browser test)")
def test_revoking_consent_from_the_notice_in_chromium(site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from browser import chromium_driver, sign_in
    admin = Admin(site, "admin")
    session = admin.start("emp")[1]["id"]
    driver = chromium_driver()
    base = f"https://localhost:{site.https_port}"
    try:
        sign_in(driver, base, "emp", PASSWORD)
        driver.get(base + "/page")
        notice = driver.find_element(By.CSS_SELECTOR, "actas-notice")
        notice.find_element(By.XPATH, ".//button[normalize-space()='Revoke consent']").click()
        WebDriverWait(driver, 10).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "actas-notice"))
        assert driver.current_url == base + "/page"
    finally:
        driver.quit()
    emp = Admin(site, "emp")
    consent = json.loads(emp.get("/.actas/api/v1/me").body)["consent"]
    assert consent["active"] is False, consent
    navigation = admin.browse("/after-the-revocation")
    assert navigation.status == 303 and navigation.header("location") == f"/.actas/ended?id={session}", navigation
    assert forwarded_as(site, "/after-the-revocation") == []
    ended = [e for e in events(site, "impersonation_ended") if e.get("session_id") == session]
    assert [e["end_reason"] for e in ended] == ["consent_revoked"]
    assert any(e.get("user") == "emp" for e in events(site, "consent_revoked"))
    assert admin.start("emp")[1]["error"] == "consent_required"


def notice_forms(body: bytes):
    """The notice's forms: action and hidden fields."""
    found = re.search(r"<actas-notice\b.*?</actas-notice>", body.decode(), re.S).group(0)
    forms = []
    for form in re.finditer(r"<form [^>]*action=\"([^\"]+)\"[^>]*>(.*?)</form>", found, re.S):
        fields = dict(re.findall(r"<input type=\"hidden\" name=\"([^\"]+)\" value=\"([^\"]*)\"", form.group(2)))
        forms.append((html.unescape(form.group(1)), {k: html.unescape(v) for k, v in fields.items()}))
    return forms


def test_end_it_now_from_the_notice_over_http_goes_back_and_the_notice_is_gone(site):
    admin = Admin(site, "admin")
    session = admin.start("emp")[1]["id"]
    emp = Admin(site, "emp")
    page = browse(emp, "/page?kind=chunked&x=1")
    assert page.status == 200 and SENTENCE.search(notice_text(page.body)), page
    (action, fields), *_ = notice_forms(page.body)
    assert action == f"/.actas/sessions/{session}/end" and fields["csrf_token"] == emp.csrf, (action, fields)
    assert fields["rd"] == "/page?kind=chunked&x=1"
    posted = emp.proxy.request(request_bytes("POST", action, [
        session_header(emp.cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN), ("Accept", "text/html")],
        urllib.parse.urlencode(fields).encode()))
    assert posted.status == 303 and posted.header("location") == "/page?kind=chunked&x=1", posted
    after = browse(emp, "/page")
    assert after.status == 200 and b"hello page" in after.body and notice_text(after.body) == "", after
    assert admin.fetch("/after-http-end").status == 403
    assert forwarded_as(site, "/after-http-end") == []


@pytest.mark.parametrize("kind", ["length", "chunked", "gzip", "gzip-chunked"])
def test_compressed_and_chunked_pages_get_the_notice(site, kind):
    admin = Admin(site, "admin")
    admin.start("emp")
    emp = Admin(site, "emp")
    page = browse(emp, f"/page?kind={kind}", [("Accept-Encoding", "gzip, deflate, br, zstd")])
    assert page.status == 200, page
    assert page.header("content-encoding") is None, page
    body = page.body
    assert SENTENCE.search(notice_text(body)), body
    assert body.count(b"<actas-notice") == 1
    assert body.index(b"<actas-notice") == body.index(b"<body class=\"app\">") + len(b"<body class=\"app\">")
    assert b"hello page" in body
    # The upstream was asked only for what the proxy can rewrite.
    lines = (site.dir.parent / f"upstream-{site.upstream_port}.jsonl").read_text().splitlines()
    record = [r for r in map(json.loads, filter(None, lines)) if r["target"] == f"/page?kind={kind}"][-1]
    encodings = [v for k, v in record["headers"] if k.lower() == "accept-encoding"]
    assert encodings in ([], ["gzip"]), encodings


def test_json_and_script_fetches_are_untouched(site):
    admin = Admin(site, "admin")
    admin.start("emp")
    emp = Admin(site, "emp")
    plain = browse(emp, "/plain-json-route")
    assert plain.status == 200 and b"actas-notice" not in plain.body, plain
    fetched = emp.get("/page", [("Accept", "*/*"), ("Sec-Fetch-Mode", "cors"), ("Sec-Fetch-Dest", "empty")])
    assert fetched.status == 200 and b"actas-notice" not in fetched.body and b"hello page" in fetched.body, fetched


def test_nobody_else_sees_the_notice_and_the_administrator_sees_only_the_banner(site):
    admin = Admin(site, "admin")
    admin.start("emp")
    for username in ("mgr", "admin2"):
        other = Admin(site, username)
        page = browse(other, "/page")
        assert page.status == 200 and b"hello page" in page.body and b"actas-notice" not in page.body, (username, page)
    acting = admin.browse("/page")
    assert b"<actas-banner" in acting.body and b"actas-notice" not in acting.body, acting
    emp = Admin(site, "emp")
    assert SENTENCE.search(notice_text(browse(emp, "/page").body))
    signed_out = site.request(request_bytes("GET", "/static/page", [("Accept", "text/html")]))
    assert b"actas-notice" not in signed_out.body


def test_names_and_reason_are_escaped(site):
    evil_name = "<img src=x onerror=alert(1)>\"'&"
    import_users(site, [{"username": "xadm", "name": evil_name, "email": "x@example.com", "role": "super_admin",
                         "org_unit": "acme", "last_login": NOW}])
    xadm = Admin(site, "xadm")
    reason = "</actas-notice><script>alert('reason')</script> & more"
    assert xadm.start("emp", reason=reason)[0].status == 201
    emp = Admin(site, "emp")
    body = browse(emp, "/page").body
    assert b"<script>alert(" not in body and b"<img src=x" not in body, body
    text = notice_text(body)
    assert f"{evil_name} (xadm) is acting as you since" in text, text
    assert f"reason: {reason} — See what they do" in text, text


def test_several_impersonations_show_one_line_each(site):
    admin = Admin(site, "admin")
    admin2 = Admin(site, "admin2")
    assert admin.start("emp")[0].status == 201
    assert admin2.start("emp", reason="Ticket 99: second look")[0].status == 201
    text = notice_text(browse(Admin(site, "emp"), "/page").body)
    assert SENTENCE.search(text) and "Bea Admin (admin2) is acting as you since" in text, text


def test_the_notice_is_gone_once_the_administrator_exits(site):
    admin = Admin(site, "admin")
    admin.start("emp")
    emp = Admin(site, "emp")
    assert SENTENCE.search(notice_text(browse(emp, "/page").body))
    assert admin.api("DELETE", "/.actas/api/v1/impersonation")[0].status in (200, 204)
    after = browse(emp, "/page")
    assert after.status == 200 and b"actas-notice" not in after.body, after


def test_an_impersonation_started_on_another_postgresql_instance_shows(pg_pair):
    first, second = pg_pair
    emp = Admin(first, "emp")
    assert notice_text(browse(emp, "/page").body) == ""  # and the connection's memo is warm
    admin = Admin(second, "admin")
    session = admin.start("emp")[1]["id"]
    # SPEC §10.1: the start returned, so every instance knows: no waiting.
    page = browse(emp, "/page")
    assert SENTENCE.search(notice_text(page.body)), page
    assert f"/.actas/sessions/{session}/end".encode() in page.body
    assert admin.api("DELETE", "/.actas/api/v1/impersonation")[0].status in (200, 204)
    assert notice_text(browse(emp, "/page").body) == ""


def test_the_console_home_notice_still_shows(site):
    admin = Admin(site, "admin")
    admin.start("emp")
    emp = Admin(site, "emp")
    home = emp.get("/.actas/", [("Accept", "text/html")])
    assert b"target-notice" in home.body and b"is acting as you since" in home.body, home
