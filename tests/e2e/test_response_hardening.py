"""The response side against a hostile or careless upstream (issues 14 and 21): the app
cannot set the proxy's cookies (in the browser or in an impersonation session's jar), its
own address never leaks through Location-like headers, and a gzip bomb on a page that gets
the banner is cut with bounded memory."""
import json
import time

import pytest

from conftest import complete_lines, header_values, read_response, request_bytes, session_header, set_cookies, wait_for
from test_impersonation import Admin, acting_on_a_shared_site, config, setup_site

OWNED = {"__Host-actas_session", "__host-ACTAS_Session", "__Host-actas_login", "__Secure-actas_session", "__Host-actas_oidc",
         "actas_session"}


def audit(proxy):
    return [json.loads(line) for line in complete_lines(proxy.dir / "logs" / "audit.jsonl")]


def records_of(proxy, response, kind, at_least=1):
    """The log's records of `kind` for this response, once at least `at_least` are written (the
    events of one response reach the log one by one)."""
    request_id = response.header("x-request-id")
    found = []

    def written():
        found[:] = [r for r in audit(proxy) if r["type"] == kind and r.get("request_id") == request_id]
        return len(found) >= at_least
    wait_for(written, timeout=5, what=f"{kind} record of {request_id}")
    return found


def raw_set_cookie_names(response):
    names = []
    for line in response.all("set-cookie"):
        pair = line.split(";", 1)[0]
        names.append(pair.split("=", 1)[0].strip(" \t") if "=" in pair else pair.strip(" \t"))
    return names


@pytest.fixture(scope="module")
def acting(tmp_path_factory):
    yield from acting_on_a_shared_site(tmp_path_factory, "response-hardening")


# ---- issue 14 item 6: the app cannot set the proxy's cookies --------------------------------

def test_upstream_cannot_set_proxy_cookies_in_the_browser(proxy):
    response = proxy.request(request_bytes("GET", "/crafted?kind=cookies"))
    assert response.status == 200
    names = raw_set_cookie_names(response)
    assert not any("actas" in name.lower() for name in names), names
    assert not any("actas" in line.lower() for line in response.all("set-cookie")), response.all("set-cookie")
    # The app's own cookies still reach the browser, as the app set them.
    assert "keep=1; Path=/" in response.all("set-cookie") and "csrftoken=abc; Path=/" in response.all("set-cookie")
    # Logged: one event per refused cookie, with the name (never the value).
    denied = records_of(proxy, response, "request_denied", at_least=8)
    assert {r["reason"] for r in denied} == {"proxy_owned_cookie"}
    assert len(denied) == 8, denied  # also the nameless `=__Host-actas_session=…`, sent back by browsers as that cookie
    assert all("upstream-fixed" not in json.dumps(r) for r in denied)
    assert any("__Host-actas_session" in r["detail"] for r in denied)


def test_signed_in_user_keeps_their_session_when_the_app_tries_to_replace_it(make_proxy, upstream):
    proxy = make_proxy(config())
    setup_site(proxy)
    user = Admin(proxy, "emp")
    response = user.get("/crafted?kind=cookies", [("Accept", "text/html")])
    assert response.status == 200
    assert not any("actas" in name.lower() for name in raw_set_cookie_names(response))
    # The session is untouched: the same cookie still works.
    assert user.api("GET", "/.actas/api/v1/me")[0].status == 200


# ---- issue 21 item 12: the session's jar refuses what the proxy owns ---------------------------

def test_impersonation_jar_refuses_proxy_cookies_and_bad_names(acting):
    proxy, upstream, admin = acting
    response = admin.get("/crafted?kind=cookies", [("Accept", "text/html")])
    assert response.status == 200
    # While impersonating only the two fine cookies reach the browser (no HttpOnly: SPEC §7 lets scripts read them).
    assert response.all("set-cookie") == ["keep=1; Path=/", "csrftoken=abc; Path=/"]
    admin.get("/after-cookies", [("Accept", "application/json")])
    sent = [r for r in upstream.requests() if r["target"] == "/after-cookies"][-1]
    cookies = header_values(sent, "cookie")
    assert len(cookies) == 1, cookies
    pairs = [p.strip() for p in cookies[0].split(";")]
    names = {p.split("=", 1)[0] for p in pairs}
    assert names == {"keep", "csrftoken"}, pairs
    denied = records_of(proxy, response, "request_denied", at_least=8)
    assert {r["reason"] for r in denied} == {"proxy_owned_cookie"} and len(denied) == 8


# ---- issue 21 item 5: Location-like headers never expose the upstream's address ---------------

@pytest.mark.parametrize("to, expected", [
    ("http://127.0.0.1:PORT/next?a=1", "https://localhost/next?a=1"),
    ("HTTP://127.0.0.1:PORT", "https://localhost/"),
    ("https://127.0.0.1:PORT/x#frag", "https://localhost/x#frag"),
    ("//127.0.0.1:PORT/x", "https://localhost/x"),
    ("http://localhost:PORT/x", "https://localhost/x"),
    ("ws://127.0.0.1:PORT/socket", "https://localhost/socket"),
    ("http://user@127.0.0.1:PORT/x", "https://localhost/x"),
    ("http:\\\\127.0.0.1:PORT\\x", "https://localhost/x"),
])
def test_location_to_the_upstream_is_rewritten(proxy, upstream, to, expected):
    import urllib.parse
    response = proxy.request(request_bytes("GET", "/crafted?kind=redirect&to=" + urllib.parse.quote(to, safe="")))
    assert response.status == 302
    assert response.all("location") == [expected], response.headers
    assert str(upstream.port) not in json.dumps(response.headers)


@pytest.mark.parametrize("name", ["Content-Location", "Refresh"])
def test_other_location_headers_are_rewritten(proxy, upstream, name):
    response = proxy.request(request_bytes("GET", f"/crafted?kind=redirect&status=200&header={name}"))
    value = response.header(name)
    assert value is not None and str(upstream.port) not in value and "127.0.0.1" not in value, response.headers
    assert value.endswith("https://localhost/next?a=1"), value


def test_location_keeps_the_public_port(proxy, upstream):
    response = proxy.request(request_bytes("GET", "/crafted?kind=redirect", host=f"localhost:{proxy.https_port}"))
    assert response.all("location") == [f"https://localhost:{proxy.https_port}/next?a=1"]


@pytest.mark.parametrize("to", ["https://elsewhere.example/x", "/relative?y=2", "http://127.0.0.1:1/x", "http://127.0.0.2:PORT/x"])
def test_other_locations_pass_untouched(proxy, upstream, to):
    import urllib.parse
    response = proxy.request(request_bytes("GET", "/crafted?kind=redirect&to=" + urllib.parse.quote(to, safe="")))
    assert response.all("location") == [to.replace("PORT", str(upstream.port))]


# ---- issue 14 item 10: a gzip bomb on a page that gets the banner ------------------------------

def test_gzip_bomb_is_cut_with_bounded_memory(acting):
    proxy, upstream, admin = acting
    rss_before = proxy.rss_kb()
    with proxy.connect(timeout=30) as sock:
        sock.sendall(request_bytes("GET", "/crafted?kind=bomb&mb=128", [
            session_header(admin.cookie), ("Accept", "text/html"), ("Sec-Fetch-Mode", "navigate"), ("Accept-Encoding", "gzip")]))
        received = 0
        data = b""
        peak = 0
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except OSError:
                break
            if not chunk:
                break
            received += len(chunk)
            data = (data + chunk)[-64:]
            peak = max(peak, proxy.rss_kb())
    # Cut before the end: far less than the 128 MB the page inflates to, and no last chunk.
    assert received < 32 * 1024 * 1024, received
    assert not data.endswith(b"0\r\n\r\n")
    peak = max(peak, proxy.rss_kb())
    assert peak - rss_before < 48 * 1024, f"proxy grew by {peak - rss_before} kB"
    # The process is alive and serving; the exchange is logged with why it was cut.
    assert proxy.process.poll() is None
    assert admin.get("/anything", [("Accept", "application/json")]).status == 200
    bomb = []

    def logged():
        bomb[:] = [r for r in audit(proxy) if r["type"] == "request" and r.get("path") == "/crafted"
                   and "max_rewritten_page" in (r.get("detail") or "")]
        return bool(bomb)
    wait_for(logged, timeout=5, what="the bomb's request record")
    assert bomb[-1]["session_id"].startswith("imp_")


def test_gzip_bomb_before_the_body_is_refused_with_502(make_proxy, upstream):
    """Nothing of the page has left yet (a navigation's start is held until the banner's place
    is known): the answer is a clean 502 with its code, and the connection stays usable."""
    proxy = make_proxy(config(**{"limits.max_rewritten_page": "64KB"}))
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    assert admin.start("emp")[0].status == 201
    with proxy.connect(timeout=30) as sock:
        sock.sendall(request_bytes("GET", "/crafted?kind=bomb&mb=8&where=head", [
            session_header(admin.cookie), ("Accept", "text/html"), ("Sec-Fetch-Mode", "navigate")]))
        response = read_response(sock)
        assert response.status == 502, response
        assert b"rewritten_page_too_large" in response.body and b"<actas-banner" in response.body
        sock.sendall(request_bytes("GET", "/anything", [session_header(admin.cookie), ("Accept", "application/json")]))
        assert read_response(sock).status == 200
    record = records_of(proxy, response, "request")[0]
    assert record["status"] == 502
    assert [r["reason"] for r in records_of(proxy, response, "request_denied")] == ["rewritten_page_too_large"]
