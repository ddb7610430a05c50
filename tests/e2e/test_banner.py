"""The impersonation banner end to end (SPEC §7): on every HTML page, once, right after
<body>, whatever the framing or encoding; nothing else touched; visible in a real browser."""
import gzip
import json
import time

import pytest

from conftest import Proxy, free_port, import_users, read_response, request_bytes, run, session_header
from test_impersonation import Admin, config, parse_time, setup_site

pytestmark = pytest.mark.protocols("http/1.1", "h2")

MARKER = b"<actas-banner"


def visible_text(body):
    """The banner's text as a reader sees it (tags dropped)."""
    import html
    import re
    banner = body[body.index(MARKER):body.index(b"</actas-banner>")].decode()
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", banner)).split())


@pytest.fixture
def acting(make_proxy, upstream):
    proxy = make_proxy(config())
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    response, body = admin.start("emp")
    assert response.status == 201
    return proxy, upstream, admin


def page(admin, kind, extra=()):
    return admin.get(f"/page?kind={kind}", [("Accept", "text/html"), *extra])


def assert_banner_after_body(body):
    assert body.count(MARKER) == 1, body[:600]
    import re
    opening = body.index(b'<body class="app">') + len(b'<body class="app">')
    # Right after the opening tag: the banner's stylesheet link, then the banner itself.
    assert re.match(rb'<link[^>]*banner\.css[^>]*>\s*<actas-banner', body[opening:]), body[opening:opening + 120]
    # Not inside the decoys in the head.
    assert body.index(MARKER) > body.index(b"<body class=")
    assert b"hello page" in body


@pytest.mark.parametrize("kind", ["length", "chunked"])
@pytest.mark.h1_only("asserts HTTP/1.1 framing (Transfer-Encoding: chunked), which HTTP/2 does not have")
def test_banner_on_html_pages(acting, kind):
    proxy, upstream, admin = acting
    response = page(admin, kind)
    assert response.status == 200
    assert_banner_after_body(response.body)
    assert "You are acting as Emma Employee (emp)" in visible_text(response.body)
    # SPEC §7: "You are acting as NAME (username) — MM:SS left — Exit"; minutes go past 59.
    import re
    shown = re.search(r"You are acting as Emma Employee \(emp\) \u2014 (\d{2,}):(\d{2}) left", visible_text(response.body))
    assert shown, visible_text(response.body)
    expires = admin.api("GET", "/.actas/api/v1/me")[1]["impersonation"]["expires_at"]
    left = int(shown.group(1)) * 60 + int(shown.group(2))
    assert abs((parse_time(expires) - time.time()) - left) < 5, (left, expires)
    assert response.header("content-length") is None and response.header("transfer-encoding") == "chunked"
    assert response.header("etag") is None and response.header("accept-ranges") is None
    assert response.header("cache-control") == "no-store"
    assert b'action="/.actas/impersonate/exit"' in response.body and admin.csrf.encode() in response.body


@pytest.mark.parametrize("kind", ["gzip", "gzip-chunked"])
def test_banner_on_gzip_pages(acting, kind):
    proxy, upstream, admin = acting
    response = page(admin, kind, [("Accept-Encoding", "gzip, deflate, br")])
    assert response.status == 200
    assert response.header("content-encoding") is None  # sent as identity, headers fixed
    assert_banner_after_body(response.body)
    # The upstream was asked only for what the proxy can rewrite.
    sent = [r for r in upstream.requests() if r["target"] == f"/page?kind={kind}"][-1]
    assert [v for k, v in sent["headers"] if k.lower() == "accept-encoding"] == ["gzip"]


def test_non_html_passes_byte_for_byte(acting):
    proxy, upstream, admin = acting
    json_response = admin.get("/anything", [("Accept", "application/json")])
    assert json.loads(json_response.body)["path"] == "/anything" and MARKER not in json_response.body
    big = admin.get("/big?bytes=300000")
    assert big.body == b"x" * 300000 and big.header("content-length") == "300000"


def test_no_banner_when_not_impersonating(acting):
    proxy, upstream, admin = acting
    admin.api("DELETE", "/.actas/api/v1/impersonation")
    response = page(admin, "length")
    assert MARKER not in response.body and response.header("etag") == '"v1"' and response.header("content-length")


@pytest.mark.h1_only("raw HTTP/1.1 socket (HEAD then a request on the same connection)")
def test_no_banner_for_script_fetches_head_and_ranges(acting):
    proxy, upstream, admin = acting
    fetched = page(admin, "length", [("Sec-Fetch-Dest", "empty")])
    assert MARKER not in fetched.body
    xhr = page(admin, "length", [("X-Requested-With", "XMLHttpRequest")])
    assert MARKER not in xhr.body
    with proxy.connect() as sock:
        sock.sendall(request_bytes("HEAD", "/page?kind=length", [session_header(admin.cookie), ("Accept", "text/html")]))
        head = read_response(sock, method="HEAD")
        assert head.status == 200 and head.body == b""
        # The connection stays usable: nothing of a body follows a HEAD answer.
        sock.sendall(request_bytes("GET", "/anything", [session_header(admin.cookie), ("Accept", "application/json")]))
        assert read_response(sock).status == 200


def test_big_html_page_streams_with_bounded_memory(acting):
    proxy, upstream, admin = acting
    rss_before = proxy.rss_kb()
    response = admin.get("/page?kind=big&n=20000", [("Accept", "text/html")])  # ~20 MB
    assert response.status == 200 and response.body.count(MARKER) == 1
    assert len(response.body) > 20_000_000
    assert proxy.rss_kb() - rss_before < 64 * 1024, "the page was buffered"


def test_hostile_name_is_escaped(make_proxy, upstream):
    proxy = make_proxy(config())
    setup_site(proxy)
    run(["users", "set", "emp", "--name", "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>", "--config", str(proxy.config_path)])
    admin = Admin(proxy, "admin")
    admin.start("emp")
    body = page(admin, "length").body
    banner = body[body.index(MARKER):]
    assert b"<script>alert(1)" not in banner and b"<img" not in banner
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in banner


@pytest.mark.h1_only("Chromium picks its own protocol (test_http2.py has the h2 browser test)")
def test_banner_in_a_real_browser(tmp_path):
    from browser import chromium_driver, screenshot, sign_in, start_impersonating
    from conftest import PASSWORD, Upstream
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    upstream = Upstream(tmp_path)
    proxy = Proxy(tmp_path, upstream.port, config())
    try:
        setup_site(proxy)
        run(["users", "set", "emp", "--name", "<script>window.pwned=1</script>Emma", "--config", str(proxy.config_path)])
        driver = chromium_driver()
        try:
            base = f"https://localhost:{proxy.https_port}"
            sign_in(driver, base, "admin", PASSWORD)
            assert start_impersonating(driver, "emp") == 201
            driver.get(base + "/page?kind=overlay")
            banner = WebDriverWait(driver, 10).until(lambda d: d.find_element(By.TAG_NAME, "actas-banner"))
            time.sleep(1.2)  # banner.js ticks the countdown
            rect = driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", banner)
            assert rect["y"] == 0 and rect["height"] >= 20 and rect["width"] > 600
            # Nothing the page drew covers it: the topmost element at its centre is the banner.
            topmost = driver.execute_script(
                "var r = arguments[0].getBoundingClientRect(); var e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
                " return e === arguments[0] || arguments[0].contains(e)", banner)
            assert topmost
            visible = driver.execute_script("return arguments[0].shadowRoot.textContent", banner)
            assert "You are acting as" in " ".join(visible.split()) and "left" in visible
            assert "<script>window.pwned=1</script>Emma" in visible  # shown as text
            assert driver.execute_script("return window.pwned") is None  # the hostile name is inert
            screenshot(driver, "banner-over-hostile-page")
            # Exit works from the banner (a real form POST).
            exit_button = driver.execute_script("return arguments[0].shadowRoot.querySelector('form[data-actas=exit] button')", banner)
            exit_button.click()
            # The form POST ends the session and brings the browser back to the page.
            WebDriverWait(driver, 10).until(
                lambda d: d.execute_script("return fetch('/.actas/api/v1/me').then(r => r.json())")["impersonation"] is None)
            driver.get(base + "/page?kind=length")
            assert len(driver.find_elements(By.TAG_NAME, "actas-banner")) == 0
        finally:
            driver.quit()
    finally:
        proxy.stop()
        upstream.stop()


@pytest.mark.h1_only("Chromium picks its own protocol (test_http2.py has the h2 browser test)")
def test_banner_says_when_the_session_ends_while_the_page_is_open(tmp_path):
    from browser import chromium_driver, screenshot, sign_in, start_impersonating
    from conftest import PASSWORD, Upstream
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    upstream = Upstream(tmp_path)
    proxy = Proxy(tmp_path, upstream.port, config(**{"impersonation.warn_before_end": "3s"}))
    try:
        setup_site(proxy)
        driver = chromium_driver()
        try:
            base = f"https://localhost:{proxy.https_port}"
            sign_in(driver, base, "admin", PASSWORD)
            assert start_impersonating(driver, "emp", duration="5s") == 201  # extendable: max_duration is 24h
            driver.get(base + "/page?kind=length")
            banner = driver.find_element(By.TAG_NAME, "actas-banner")

            def banner_text(_):
                return " ".join(driver.execute_script("return arguments[0].shadowRoot.textContent", banner).split())
            # Within warn_before_end the banner offers Extend; at the end it says so and offers the way back.
            WebDriverWait(driver, 6).until(lambda d: "Extend" in banner_text(d))
            WebDriverWait(driver, 10).until(lambda d: "ended" in banner_text(d).lower())
            screenshot(driver, "banner-session-ended")
            link = driver.execute_script("return arguments[0].shadowRoot.querySelector('a[href^=\"/.actas/ended\"]')", banner)
            assert link is not None
        finally:
            driver.quit()
    finally:
        proxy.stop()
        upstream.stop()


def test_banner_assets_are_served_to_anyone(make_proxy, upstream):
    proxy = make_proxy(config())
    for path, kind in (("/.actas/banner.js", "text/javascript"), ("/.actas/banner.css", "text/css")):
        response = proxy.request(request_bytes("GET", path))
        assert response.status == 200 and response.header("content-type").startswith(kind), path
        assert response.header("x-content-type-options") == "nosniff"
    assert b"attachShadow" in proxy.request(request_bytes("GET", "/.actas/banner.js")).body
