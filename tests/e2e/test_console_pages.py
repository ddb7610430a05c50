"""Console pages people meet while using an application (SPEC §4, §7): the sign-out page an
app's own "log out" link can point at, refusal pages that are not dead ends while
impersonating, and a session's audit page that stays readable on a real app."""
import html
import json
import re
import urllib.parse

import pytest

from conftest import ORIGIN, Proxy, Upstream, me, request_bytes, session_header, set_cookies, wait_for
from test_impersonation import Admin, acting_on_a_shared_site, config, setup_site

MARKER = b"<actas-banner"


def hidden_fields(body, action):
    """The hidden fields of the form posting to `action`."""
    form = re.search(rb'<form[^>]*action="' + re.escape(action.encode()) + rb'"[^>]*>(.*?)</form>', body, re.S)
    assert form, body[:2000]
    return {html.unescape(m.group(1).decode()): html.unescape(m.group(2).decode())
            for m in re.finditer(rb'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(1))}


def logout_page(proxy, cookie=None, rd=None):
    target = "/.actas/logout" + (f"?rd={urllib.parse.quote(rd, safe='')}" if rd is not None else "")
    headers = [("Accept", "text/html"), ("Sec-Fetch-Mode", "navigate")] + ([session_header(cookie)] if cookie else [])
    return proxy.request(request_bytes("GET", target, headers))


def post_logout(proxy, cookie, fields):
    body = urllib.parse.urlencode(fields).encode()
    return proxy.request(request_bytes("POST", "/.actas/logout", [
        session_header(cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN),
        ("Accept", "text/html")], body))


@pytest.fixture
def site(make_proxy, upstream):
    proxy = make_proxy(config())
    setup_site(proxy)
    return proxy, upstream


# ---- GET /.actas/logout -----------------------------------------------------------------------

def test_logout_page_has_one_sign_out_button_and_carries_rd(site):
    proxy, upstream = site
    admin = Admin(proxy, "admin")
    page = logout_page(proxy, admin.cookie, rd="/reports?year=2026")
    assert page.status == 200, page
    assert page.header("content-type").startswith("text/html")
    assert page.body.count(b"<button") == 1
    fields = hidden_fields(page.body, "/.actas/logout")
    assert fields["csrf_token"] == admin.csrf and fields["rd"] == "/reports?year=2026"
    assert b">Sign out<" in page.body
    # The page changed nothing: still signed in.
    assert me(proxy, admin.cookie)["user"]["username"] == "admin"
    # Pressing the button signs out and goes where rd said.
    out = post_logout(proxy, admin.cookie, fields)
    assert out.status == 303 and out.header("location") == "/reports?year=2026"
    assert set_cookies(out)["__Host-actas_session"][0] == ""
    gone = proxy.request(request_bytes("GET", "/.actas/api/v1/me", [session_header(admin.cookie)]))
    assert gone.status == 401


@pytest.mark.parametrize("rd", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_logout_rd_is_same_origin_only(site, rd):
    proxy, _ = site
    admin = Admin(proxy, "admin")
    page = logout_page(proxy, admin.cookie, rd=rd)
    assert page.status == 200 and hidden_fields(page.body, "/.actas/logout")["rd"] == "/"
    out = post_logout(proxy, admin.cookie, {"csrf_token": admin.csrf, "rd": rd})
    assert out.status == 303 and out.header("location") == "/"


def test_logout_post_without_rd_still_goes_to_the_sign_in_page(site):
    proxy, _ = site
    admin = Admin(proxy, "admin")
    out = post_logout(proxy, admin.cookie, {"csrf_token": admin.csrf})
    assert out.status == 303 and out.header("location") == "/.actas/login"


def test_logout_page_when_not_signed_in_meets_the_sign_in_rule(site):
    proxy, _ = site
    # SPEC §4: the page is for signed-in people; browsers go to the sign-in page, scripts get 401.
    page = logout_page(proxy, rd="/goodbye")
    assert page.status == 302 and page.header("location").startswith("/.actas/login?rd="), page
    dead = logout_page(proxy, cookie="not-a-session", rd="/x")
    assert dead.status == 302 and dead.header("location").startswith("/.actas/login?rd="), dead
    script = proxy.request(request_bytes("GET", "/.actas/logout", [("Accept", "application/json")]))
    assert script.status == 401 and json.loads(script.body)["error"] == "unauthenticated", script


def test_logout_page_while_impersonating_says_it_ends_the_impersonation(site):
    proxy, _ = site
    admin = Admin(proxy, "admin")
    assert admin.start("emp")[0].status == 201
    page = logout_page(proxy, admin.cookie)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.body.decode())).split())
    assert "acting as Emma Employee (emp)" in text and "also ends" in text, text
    out = post_logout(proxy, admin.cookie, hidden_fields(page.body, "/.actas/logout"))
    assert out.status == 303
    ended = [e for e in (json.loads(line) for line in (proxy.dir / "logs" / "audit.jsonl").read_text().splitlines())
             if e["type"] == "impersonation_ended"]
    assert ended and ended[-1]["end_reason"] == "actor_signed_out"


def test_other_methods_on_logout_are_405(site):
    proxy, _ = site
    admin = Admin(proxy, "admin")
    response = admin.get("/.actas/logout", [("Accept", "application/json")])
    assert response.status == 200  # GET is the page now (SPEC §4)
    put = proxy.request(request_bytes("PUT", "/.actas/logout", [session_header(admin.cookie)]))
    assert put.status == 405 and "GET" in put.header("allow") and "POST" in put.header("allow")


def test_app_logout_link_signs_out_in_a_real_browser(tmp_path):
    """An application's "log out" link points at /.actas/logout?rd=…: one click on the page's
    button signs out of ActAs, and the next visit asks to sign in again."""
    from browser import chromium_driver, screenshot, sign_in
    from conftest import PASSWORD
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    upstream = Upstream(tmp_path)
    proxy = Proxy(tmp_path, upstream.port, config())
    try:
        setup_site(proxy)
        driver = chromium_driver()
        try:
            base = f"https://localhost:{proxy.https_port}"
            sign_in(driver, base, "emp", PASSWORD)
            driver.get(base + "/.actas/logout?rd=%2Fpage%3Fkind%3Dlength")
            buttons = driver.find_elements(By.CSS_SELECTOR, "main form[action='/.actas/logout'] button")
            assert [b.text for b in buttons] == ["Sign out"]
            screenshot(driver, "logout-page")
            buttons[0].click()
            # rd was a protected page: signed out, the browser is asked to sign in, and comes back there after.
            WebDriverWait(driver, 10).until(lambda d: "/.actas/login" in d.current_url)
            assert urllib.parse.parse_qs(urllib.parse.urlparse(driver.current_url).query)["rd"] == ["/page?kind=length"]
        finally:
            driver.quit()
    finally:
        proxy.stop()
        upstream.stop()


# ---- refusal pages while impersonating ---------------------------------------------------------

@pytest.fixture(scope="module")
def read_only_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pages-ro")
    upstream = Upstream(tmp)
    (tmp / "proxy").mkdir()
    proxy = Proxy(tmp / "proxy", upstream.port, config(**{"impersonation.mode": "read-only"}))
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    assert admin.start("emp")[0].status == 201
    yield proxy, upstream, admin
    proxy.stop()
    upstream.stop()


def refused_form_post(admin, referer):
    headers = [session_header(admin.cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN),
               ("Accept", "text/html,application/xhtml+xml"), ("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "document")]
    if referer:
        headers.append(("Referer", referer))
    return admin.proxy.request(request_bytes("POST", "/orders/42/cancel", headers, b"confirm=yes"))


def back_link(body):
    found = re.search(rb'<a href="([^"]*)"[^>]*data-actas-back', body)
    assert found, body[:3000]
    return html.unescape(found.group(1).decode())


def test_read_only_refusal_page_carries_the_banner_and_a_way_back(read_only_site):
    proxy, _, admin = read_only_site
    referer = ORIGIN + "/orders/42?tab=summary"  # the origin of the Host these requests send
    response = refused_form_post(admin, referer)
    assert response.status == 403
    assert response.body.count(MARKER) == 1
    assert response.body.index(MARKER) > response.body.index(b"<body")
    exit_fields = hidden_fields(response.body, "/.actas/impersonate/exit")
    assert exit_fields["csrf_token"] == admin.csrf
    assert b"read-only" in response.body
    assert back_link(response.body) == "/orders/42?tab=summary"
    # Exit goes back there too, as the administrator.
    assert exit_fields["rd"] == "/orders/42?tab=summary"


@pytest.mark.parametrize("referer", [None, "https://evil.example/orders", "http://localhost/orders", "not a url",
                                     "https://localhost.evil.example/x"])
def test_refusal_back_link_is_same_origin_or_home(read_only_site, referer):
    proxy, _, admin = read_only_site
    response = refused_form_post(admin, referer)
    assert response.status == 403 and back_link(response.body) == "/"


def test_read_only_refusal_for_scripts_stays_json(read_only_site):
    proxy, _, admin = read_only_site
    response, body = admin.api("POST", "/orders/42/cancel", {"confirm": True})
    assert response.status == 403 and body["error"] == "read_only" and MARKER not in response.body
    assert response.header("content-type") == "application/json"


def test_hidden_path_refusal_page_carries_the_banner_and_a_way_back(read_only_site):
    proxy, _, admin = read_only_site
    response = admin.get("/private/payroll", [("Accept", "text/html"), ("Sec-Fetch-Mode", "navigate"),
                                              ("Referer", ORIGIN + ":443/page?kind=length")])
    assert response.status == 403 and response.body.count(MARKER) == 1
    assert b"not available while acting as another user" in response.body
    assert back_link(response.body) == "/page?kind=length"
    json_response = admin.fetch("/private/payroll")
    assert json_response.status == 403 and json.loads(json_response.body)["error"] == "hidden_path"


def test_refusal_page_in_a_real_browser(tmp_path):
    """A read-only administrator submits a form: the refusal shows the banner with Exit and a
    link that leads back to the page the form was on."""
    from browser import chromium_driver, screenshot, sign_in, start_impersonating
    from conftest import PASSWORD
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    upstream = Upstream(tmp_path)
    proxy = Proxy(tmp_path, upstream.port, config(**{"impersonation.mode": "read-only"}))
    try:
        setup_site(proxy)
        driver = chromium_driver()
        try:
            base = f"https://localhost:{proxy.https_port}"
            sign_in(driver, base, "admin", PASSWORD)
            assert start_impersonating(driver, "emp") == 201
            driver.get(base + "/page?kind=length")
            # A form on the application's page, as the application would have it.
            driver.execute_script(
                "var f = document.createElement('form'); f.method = 'post'; f.action = '/orders/42/cancel';"
                " var b = document.createElement('button'); b.id = 'cancel'; b.textContent = 'Cancel order';"
                " f.appendChild(b); document.body.appendChild(f);")
            driver.find_element(By.ID, "cancel").click()
            WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith("/orders/42/cancel"))
            banner = driver.find_element(By.TAG_NAME, "actas-banner")
            text = " ".join(driver.execute_script("return arguments[0].shadowRoot.textContent", banner).split())
            assert "You are acting as Emma Employee (emp)" in text and "Exit" in text
            assert "read-only" in driver.find_element(By.TAG_NAME, "body").text
            screenshot(driver, "refusal-read-only")
            driver.find_element(By.CSS_SELECTOR, "a[data-actas-back]").click()
            WebDriverWait(driver, 10).until(lambda d: d.current_url == base + "/page?kind=length")
            assert len(driver.find_elements(By.TAG_NAME, "actas-banner")) == 1
        finally:
            driver.quit()
    finally:
        proxy.stop()
        upstream.stop()


# ---- the session's audit page -----------------------------------------------------------------

@pytest.fixture(scope="module")
def long_session(tmp_path_factory):
    """An administrator's session with 120 asset requests, 30 pages and a long JSON body, then exited."""
    from conftest import read_response
    tmp = tmp_path_factory.mktemp("pages-audit")
    upstream = Upstream(tmp)
    (tmp / "proxy").mkdir()
    proxy = Proxy(tmp / "proxy", upstream.port, config())
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    response, body = admin.start("emp")
    assert response.status == 201
    long_title = "x" * 900 + "END-OF-BODY"
    with proxy.connect() as sock:
        def send(method, path, headers=(), data=b""):
            sock.sendall(request_bytes(method, path, [session_header(admin.cookie), *headers], data))
            assert read_response(sock, method).status < 500
        for i in range(60):
            send("GET", f"/assets/app-{i}.css", [("Sec-Fetch-Dest", "style"), ("Accept", "text/css,*/*;q=0.1")])
            send("GET", f"/media/logo-{i}.png?v=2")
        for i in range(30):
            send("GET", f"/orders/{i}", [("Sec-Fetch-Dest", "document"), ("Accept", "text/html")])
        send("POST", "/orders", [("Content-Type", "application/json"), ("Origin", ORIGIN)],
             json.dumps({"title": long_title, "password": "hunter2"}).encode())
    admin.api("DELETE", "/.actas/api/v1/impersonation")
    # The store's copy of a session's records follows the log by up to ~0.2 s (gathered for
    # 100 ms, then one transaction); the pages read that copy.
    def ended_is_copied():
        _, events = admin.api("GET", f"/.actas/api/v1/sessions/{body['id']}/events")
        return any(e.get("type") == "impersonation_ended" for e in events["events"])
    wait_for(ended_is_copied, what="the session's end in the store's copy")
    yield proxy, admin, body["id"], long_title
    proxy.stop()
    upstream.stop()


def audit_page(admin, session_id, query=""):
    response = admin.get(f"/.actas/sessions/{session_id}" + (f"?{query}" if query else ""), [("Accept", "text/html")])
    assert response.status == 200, response
    return response.body.decode()


def table_rows(page):
    return re.search(r"<tbody>(.*?)</tbody>", page, re.S).group(1).count("<tr>")


def logged_paths(page):
    return re.findall(r"<code>(?:GET|POST) ([^<]+)</code>", page)


def test_audit_page_is_paged(long_session):
    proxy, admin, session_id, _ = long_session
    first = audit_page(admin, session_id)
    assert table_rows(first) == 100
    assert "Page 1 of 2" in first and "Showing 1&#x2013;100 of" in first
    next_link = html.unescape(re.search(r'<a href="([^"]+)" rel="next"', first).group(1))
    second = audit_page(admin, session_id, next_link.lstrip("?"))
    assert "Page 2 of 2" in second and 'rel="prev"' in second and 'rel="next"' not in second
    assert set(logged_paths(first)).isdisjoint(logged_paths(second))
    assert len(logged_paths(first)) + len(logged_paths(second)) == 151
    # A page past the end shows the last one.
    assert "Page 2 of 2" in audit_page(admin, session_id, "page=99")


def test_audit_page_hides_static_assets_and_paths(long_session):
    proxy, admin, session_id, _ = long_session
    page = audit_page(admin, session_id, "assets=hide")
    paths = logged_paths(page)
    assert paths and not any(p.startswith(("/assets/", "/media/")) for p in paths), paths
    assert "/orders/0" in paths and "/orders" in paths
    assert "120 hidden by the filter" in page
    assert 'name="assets" value="hide" checked' in page
    # Events are never hidden: the session's start and end are still there.
    assert "impersonation_started" in page and "impersonation_ended" in page
    by_pattern = audit_page(admin, session_id, "exclude=" + urllib.parse.quote("/assets/*, .png"))
    assert not any(p.startswith(("/assets/", "/media/")) for p in logged_paths(by_pattern))
    assert 'value="/assets/*, .png"' in by_pattern
    # The filter survives paging links.
    only_media = audit_page(admin, session_id, "exclude=/orders*")
    next_link = re.search(r'<a href="([^"]+)" rel="next"', only_media)
    assert next_link is None or "exclude=" in next_link.group(1)


def test_audit_page_folds_long_bodies(long_session):
    proxy, admin, session_id, long_title = long_session
    page = audit_page(admin, session_id, "assets=hide")
    folded = re.search(r"<details><summary><code>([^<]*)</code></summary><pre>([^<]*)</pre></details>", page)
    assert folded, page[-3000:]
    preview, full = html.unescape(folded.group(1)), html.unescape(folded.group(2))
    assert len(preview) < 200 and preview.endswith("\u2026") and "END-OF-BODY" not in preview
    assert long_title in full and "hunter2" not in page  # redacted, as in the log


def test_audit_page_in_a_real_browser(long_session):
    """The log stays inside its card, a long body opens with a click, and the filter is a plain
    form (console pages run no script)."""
    from browser import chromium_driver, screenshot, sign_in
    from conftest import PASSWORD
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    proxy, admin, session_id, long_title = long_session
    driver = chromium_driver()
    try:
        base = f"https://localhost:{proxy.https_port}"
        sign_in(driver, base, "admin", PASSWORD)
        driver.get(base + f"/.actas/sessions/{session_id}")
        driver.find_element(By.CSS_SELECTOR, "input[name=assets]").click()
        driver.find_element(By.CSS_SELECTOR, "form.log-filter button").click()
        WebDriverWait(driver, 10).until(lambda d: "assets=hide" in d.current_url)
        card = driver.find_element(By.CSS_SELECTOR, "table.log").find_element(By.XPATH, "./ancestor::section")
        width = driver.execute_script("return [arguments[0].scrollWidth, arguments[0].clientWidth]", card)
        assert width[0] <= width[1], f"the log runs off its card: {width}"
        details = driver.find_element(By.CSS_SELECTOR, "table.log details")
        assert not details.find_element(By.TAG_NAME, "pre").is_displayed()
        details.find_element(By.TAG_NAME, "summary").click()
        assert details.find_element(By.TAG_NAME, "pre").is_displayed()
        assert "END-OF-BODY" in details.find_element(By.TAG_NAME, "pre").text
        screenshot(driver, "audit-page-filtered")
    finally:
        driver.quit()
