"""Every document shown as the target carries the banner (SPEC §7, issue 21 item 6), whatever
shape the upstream gives it: no Content-Type (sniffing), deflate/br/stacked encodings,
XHTML, XML and SVG documents, conflicting Content-Types, UTF-16, framesets. What the proxy
cannot rewrite is refused on a navigation (502 unrewritable_response, a page with the banner);
downloads never get the banner. Socket-level cases first, then a real Chromium."""
import json
import xml.etree.ElementTree as ElementTree

import pytest

from conftest import ORIGIN, PASSWORD, Proxy, Upstream, complete_lines, request_bytes, session_header, wait_for
from test_impersonation import Admin, acting_on_a_shared_site, config, setup_site

MARKER = b"<actas-banner"
NAVIGATE = [("Accept", "text/html,application/xhtml+xml"), ("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "document"),
            ("Accept-Encoding", "gzip, deflate, br")]
FETCH = [("Accept", "*/*"), ("Sec-Fetch-Mode", "cors"), ("Sec-Fetch-Dest", "empty"), ("Accept-Encoding", "gzip, deflate, br")]


@pytest.fixture(scope="module")
def acting(tmp_path_factory):
    yield from acting_on_a_shared_site(tmp_path_factory, "banner-coverage")


def crafted(admin, kind, headers=NAVIGATE, extra=""):
    return admin.get(f"/crafted?kind={kind}{extra}", headers)


def assert_refused(proxy, response):
    assert response.status == 502, response
    assert response.header("content-type").startswith("text/html")
    assert response.body.count(MARKER) == 1, response.body[:400]
    assert b"target data" not in response.body
    assert b"unrewritable_response" in response.body
    request_id = response.header("x-request-id")
    found = []

    def logged():
        records = [json.loads(line) for line in complete_lines(proxy.dir / "logs" / "audit.jsonl")]
        found[:] = [r for r in records if r.get("request_id") == request_id]
        return any(r["type"] == "request_denied" for r in found) and any(r["type"] == "request" for r in found)
    wait_for(logged, timeout=5, what="the refusal's records")
    assert [r["reason"] for r in found if r["type"] == "request_denied"] == ["unrewritable_response"]
    assert [r["status"] for r in found if r["type"] == "request"] == [502]
    assert all(r.get("detail") for r in found), found  # why, in both records


def test_every_response_while_impersonating_is_nosniff(acting):
    proxy, upstream, admin = acting
    for kind, headers in (("no-type", NAVIGATE), ("no-type", FETCH), ("nosniff-other", FETCH), ("attachment", NAVIGATE)):
        response = crafted(admin, kind, headers)
        assert response.all("x-content-type-options") == ["nosniff"], (kind, response.headers)
    plain = admin.get("/anything", [("Accept", "application/json")])
    assert plain.all("x-content-type-options") == ["nosniff"]


def test_no_content_type_is_not_rendered_as_html_without_banner(acting):
    proxy, upstream, admin = acting
    response = crafted(admin, "no-type")
    # Either the browser is told not to sniff (so it shows text), or the page carries the banner.
    assert response.all("x-content-type-options") == ["nosniff"] or MARKER in response.body


@pytest.mark.parametrize("kind", ["deflate-zlib", "deflate-raw"])
def test_deflate_pages_get_the_banner(acting, kind):
    proxy, upstream, admin = acting
    response = crafted(admin, kind)
    assert response.status == 200
    assert response.header("content-encoding") is None
    assert response.body.count(MARKER) == 1 and b'<p id="app-content">target data</p>' in response.body
    assert response.body.index(MARKER) > response.body.index(b"<body>")


@pytest.mark.parametrize("kind", ["br", "gzip-gzip", "gzip-two-fields"])
def test_encodings_the_proxy_cannot_rewrite_are_refused_on_navigation(acting, kind):
    proxy, upstream, admin = acting
    assert_refused(proxy, crafted(admin, kind))


def test_unrewritable_encoding_passes_for_a_script(acting):
    proxy, upstream, admin = acting
    response = crafted(admin, "br", FETCH)
    assert response.status == 200 and response.header("content-encoding") == "br" and MARKER not in response.body


def test_xhtml_gets_the_banner_and_stays_well_formed(acting):
    proxy, upstream, admin = acting
    response = crafted(admin, "xhtml")
    assert response.status == 200 and response.body.count(MARKER) == 1
    root = ElementTree.fromstring(response.body)  # the banner did not break the XML
    assert root.tag == "{http://www.w3.org/1999/xhtml}html"
    assert response.body.index(MARKER) > response.body.index(b"<body>")


@pytest.mark.parametrize("kind, extra", [("xhtml", "&type=text/xml"), ("xhtml", "&type=application/xml"), ("svg", "")])
def test_xml_and_svg_documents_are_refused_on_navigation(acting, kind, extra):
    proxy, upstream, admin = acting
    assert_refused(proxy, crafted(admin, kind, extra=extra))


def test_svg_as_an_image_passes(acting):
    proxy, upstream, admin = acting
    response = crafted(admin, "svg", [("Accept", "image/svg+xml,image/*"), ("Sec-Fetch-Mode", "no-cors"), ("Sec-Fetch-Dest", "image")])
    assert response.status == 200 and response.header("content-type") == "image/svg+xml" and MARKER not in response.body


def test_a_form_post_that_navigates_is_refused_like_a_get(acting):
    # A form submission is a navigation too: its answer is shown as a document.
    proxy, upstream, admin = acting
    response = proxy.request(request_bytes("POST", "/crafted?kind=br", [
        session_header(admin.cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN),
        *NAVIGATE], b"q=1"))
    assert_refused(proxy, response)


def test_a_partial_answer_to_a_navigation_is_refused(acting):
    proxy, upstream, admin = acting
    assert_refused(proxy, crafted(admin, "partial"))


def test_the_same_type_twice_is_not_a_conflict(acting):
    proxy, upstream, admin = acting
    response = crafted(admin, "same-type-twice")
    assert response.status == 200 and response.body.count(MARKER) == 1


def test_conflicting_content_types_are_refused(acting):
    proxy, upstream, admin = acting
    assert_refused(proxy, crafted(admin, "two-types"))


@pytest.mark.parametrize("extra", ["", "&type=text/html", "&type=text/html;%20charset=%22UTF-16LE%22"])
def test_utf16_pages_are_refused(acting, extra):
    proxy, upstream, admin = acting
    assert_refused(proxy, crafted(admin, "utf16", extra=extra))


def test_frameset_pages_are_refused(acting):
    proxy, upstream, admin = acting
    assert_refused(proxy, crafted(admin, "frameset"))


def test_html_download_gets_no_banner(acting):
    proxy, upstream, admin = acting
    response = crafted(admin, "attachment")
    assert response.status == 200 and MARKER not in response.body
    assert admin.csrf.encode() not in response.body
    assert response.header("content-disposition") == "attachment; filename=report.html"


def test_plain_browsing_is_untouched(make_proxy, upstream):
    """Not impersonating: none of this applies (no nosniff added, nothing refused)."""
    proxy = make_proxy(config())
    setup_site(proxy)
    user = Admin(proxy, "admin")
    response = user.get("/crafted?kind=br", NAVIGATE)
    assert response.status == 200 and response.header("content-encoding") == "br"
    assert response.header("x-content-type-options") is None


# ---- a real browser ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser_acting(tmp_path_factory):
    from browser import chromium_driver, sign_in, start_impersonating
    tmp = tmp_path_factory.mktemp("banner-coverage-browser")
    upstream = Upstream(tmp)
    (tmp / "proxy").mkdir()
    proxy = Proxy(tmp / "proxy", upstream.port, config())
    driver = None
    try:
        setup_site(proxy)
        driver = chromium_driver()
        base = f"https://localhost:{proxy.https_port}"
        sign_in(driver, base, "admin", PASSWORD)
        assert start_impersonating(driver, "emp") == 201
        yield driver, base
    finally:
        if driver:
            driver.quit()
        proxy.stop()
        upstream.stop()


def rendered(driver, base, path):
    """(banner elements, whether the target's content was rendered as a document element)."""
    from selenium.webdriver.common.by import By
    driver.get(base + path)
    banners = driver.find_elements(By.TAG_NAME, "actas-banner")
    content = driver.execute_script("return !!document.getElementById('app-content')")
    return banners, content


@pytest.mark.parametrize("kind", ["no-type", "xhtml", "xhtml&type=text/xml", "svg", "two-types", "utf16&type=text/html", "frameset",
                                  "deflate-raw"])
def test_chromium_never_shows_the_target_without_the_banner(browser_acting, kind):
    from browser import screenshot
    driver, base = browser_acting
    banners, content = rendered(driver, base, f"/crafted?kind={kind}")
    screenshot(driver, "banner-coverage-" + kind.replace("&", "-").replace("=", "-").replace("/", "-"))
    assert banners or not content, f"{kind}: the target's page rendered without the banner"
    if kind in ("xhtml", "deflate-raw"):
        assert banners and content  # rewritable: shown, with the banner
    if kind in ("xhtml&type=text/xml", "svg", "two-types", "utf16&type=text/html", "frameset"):
        assert banners and not content  # refused: the refusal page, with the banner
    if kind == "frameset":
        assert driver.execute_script("return document.getElementsByTagName('frame').length") == 0
