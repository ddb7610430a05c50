"""The request side of the data path under attack (issue 21 items 1, 4, 5; issue 14 items 5, 7):
request trailers, hidden-path spellings, routing headers, Host, cross-site WebSocket upgrades,
upstream 101s that did not read the handshake, and the log records of refused requests."""
import base64
import hashlib
import json
import socket
import time

import jwt
import pytest

from conftest import (
    ORIGIN, Proxy, Upstream, complete_lines, header_values, me, read_response, request_bytes, run, session_header, wait_for,
)
from test_impersonation import Admin, REASON, config, setup_site

pytestmark = pytest.mark.protocols("http/1.1", "h2")

WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
WS_HEADERS = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", WS_KEY), ("Sec-WebSocket-Version", "13")]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One proxy: `admin` acts as `emp` read-only; `mgr` is signed in as themselves; `token`
    is an API token of `mgr`."""
    tmp = tmp_path_factory.mktemp("hardening")
    upstream = Upstream(tmp)
    (tmp / "proxy").mkdir()
    proxy = Proxy(tmp / "proxy", upstream.port, config(**{"impersonation.mode": "choose"}))
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    response, body = admin.start("emp", mode="read-only")
    assert response.status == 201 and body["mode"] == "read-only", body
    mgr = Admin(proxy, "mgr")
    token = run(["tokens", "create", "mgr", "--config", str(proxy.config_path)]).stdout.strip()
    yield proxy, upstream, admin, mgr, token
    proxy.stop()
    upstream.stop()


def audit(proxy):
    return [json.loads(line) for line in complete_lines(proxy.dir / "logs" / "audit.jsonl")]


def record_of(proxy, response, kind="request"):
    """The log's `kind` record of one answered request (found by its X-Request-Id)."""
    request_id = response.header("x-request-id")
    assert request_id, response
    found = []

    def written():
        found[:] = [r for r in audit(proxy) if r.get("request_id") == request_id and r["type"] == kind]
        return bool(found)
    wait_for(written, timeout=5, what=f"{kind} record of {request_id}")
    return found[0]


_test_started = [0.0]


@pytest.fixture(autouse=True)
def _since_this_test():
    # Module-scoped proxies serve a test's [h1] and [h2] runs: only this run's requests count.
    _test_started[0] = time.time()


def upstream_saw(upstream, marker):
    return [r for r in upstream.requests() if marker in r["target"] and r["t"] >= _test_started[0]]


# ---- issue 21 item 1: request trailers ------------------------------------------------------------

def chunked(method, path, headers, body, trailers):
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Transfer-Encoding: chunked", "Trailer: " + ", ".join(n for n, _ in trailers)]
    lines += [f"{n}: {v}" for n, v in headers]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    tail = "".join(f"{n}: {v}\r\n" for n, v in trailers).encode()
    return head + b"%x\r\n%s\r\n" % (len(body), body) + b"0\r\n" + tail + b"\r\n"


def trailer_fields(site):
    proxy, upstream, admin, mgr, token = site
    return [
        ("X-Forwarded-User", "admin"),
        ("X-Impersonation-Mode", "read-write"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("Impersonate-User", "admin"),
        ("Cookie", f"__Host-actas_session={admin.cookie}"),
        ("Authorization", f"Bearer {token}"),
    ]


TRAILER_NAMES = ["X-Forwarded-User", "X-Impersonation-Mode", "X-HTTP-Method-Override", "Impersonate-User", "Cookie", "Authorization"]


@pytest.mark.parametrize("who", ["anonymous", "signed_in", "impersonating_read_only"])
@pytest.mark.parametrize("name", TRAILER_NAMES)
@pytest.mark.h1_only("the log names dropped trailers as sent and HTTP/2 sends them lower-case (its h2 run passed every upstream assertion)")
def test_request_trailers_never_reach_the_app(site, who, name):
    proxy, upstream, admin, mgr, token = site
    value = dict(trailer_fields(site))[name]
    marker = f"/static/trailers-{who}-{name}"
    headers = {"anonymous": [], "signed_in": [session_header(mgr.cookie)], "impersonating_read_only": [session_header(admin.cookie)]}[who]
    # Read-only refuses POST, so the impersonated one is a GET with a body, which HTTP allows.
    method = "GET" if who == "impersonating_read_only" else "POST"
    response = proxy.request(chunked(method, marker, headers, b"a=1", [(name, value), ("X-Harmless", "1")]))
    assert response.status == 200, response
    [seen] = upstream_saw(upstream, marker)
    assert seen["trailers"] == [], seen
    assert header_values(seen, "Trailer") == []  # no trailer is announced when none is sent
    assert seen["method"] == method and seen["body_len"] == 3
    if who == "impersonating_read_only":
        assert header_values(seen, "X-Forwarded-User") == ["emp"]
        assert header_values(seen, "X-Impersonation-Mode") == ["read-only"]
    record = record_of(proxy, response)
    # What was dropped is logged by name (never by value).
    assert name in record.get("detail", "") and "X-Harmless" in record["detail"], record
    assert value not in record["detail"]
    if name in ("Cookie", "Authorization"):
        assert value.split("=", 1)[-1].split(" ")[-1] not in json.dumps(record)


# ---- issue 21 item 4: hidden paths and routing headers --------------------------------------------

@pytest.mark.parametrize("path, status, code", [
    ("/private./x", 403, "hidden_path"),
    ("/private%20/x", 403, "hidden_path"),
    ("/private.%20./x", 403, "hidden_path"),
    ("/PRIVATE%2E/x", 403, "hidden_path"),
    ("/pr%C4%B1vate/x", 403, "hidden_path"),           # dotless ı: upper-cases to I
    ("/account/%C5%BFecurity", 403, "hidden_path"),   # long s: upper-cases to S
    ("/x/%c0%ae%c0%ae/private/x", 400, "bad_path_encoding"),  # overlong "..": not UTF-8
    ("/private%c0%afx", 400, "bad_path_encoding"),             # overlong "/"
    ("/a%ff/x", 400, "bad_path_encoding"),
    ("/a%ed%a0%80/x", 400, "bad_path_encoding"),  # an encoded surrogate
])
def test_hidden_path_spellings_are_refused_while_impersonating(site, path, status, code):
    proxy, upstream, admin, mgr, token = site
    before = len(upstream.requests())
    response = admin.fetch(path)
    assert response.status == status, (path, response)
    assert json.loads(response.body)["error"] == code
    assert len(upstream.requests()) == before


def test_valid_utf8_and_ordinary_dots_still_pass_while_impersonating(site):
    proxy, upstream, admin, mgr, token = site
    for path in ("/caf%C3%A9/menu", "/files/report.v2.pdf", "/privateer/x", "/private-notes./x"):
        response = admin.fetch(path)
        assert response.status == 200, (path, response)


def test_invalid_utf8_is_never_public(site):
    proxy, upstream, admin, mgr, token = site
    before = len(upstream.requests())
    response = proxy.request(request_bytes("GET", "/static/%c0%ae%c0%ae/secret", [("Accept", "application/json")]))
    assert response.status == 401, response
    assert len(upstream.requests()) == before


ROUTING_HEADERS = ["X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Original-Path", "X-Forwarded-Path", "X-Forwarded-Prefix",
                   "X_Original_URL"]


@pytest.mark.parametrize("who", ["anonymous", "impersonating_read_only"])
def test_routing_headers_are_stripped(site, who):
    proxy, upstream, admin, mgr, token = site
    marker = f"/static/routing-{who}"
    headers = [(name, "/private/x") for name in ROUTING_HEADERS]
    if who != "anonymous":
        headers.append(session_header(admin.cookie))
    response = proxy.request(request_bytes("GET", marker, headers))
    assert response.status == 200, response
    [seen] = upstream_saw(upstream, marker)
    names = {n.lower().replace("_", "-") for n, _ in seen["headers"]}
    for name in ROUTING_HEADERS:
        assert name.lower().replace("_", "-") not in names, seen["headers"]


# ---- issue 21 item 5: Host ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hosts")
    upstream = Upstream(tmp)
    (tmp / "proxy").mkdir()
    proxy = Proxy(tmp / "proxy", upstream.port, config(**{"listen.public_hosts": ["localhost", "app.example", "Portal.Example:8443"]}))
    setup_site(proxy)
    yield proxy, upstream, Admin(proxy, "mgr")
    proxy.stop()
    upstream.stop()


@pytest.mark.parametrize("target, host", [
    ("/hosts/other", "evil.example"),
    ("/hosts/other-port", "evil.example:443"),
    ("/hosts/suffix", "app.example.evil.example"),
    pytest.param("https://evil.example/hosts/absolute", "localhost", marks=pytest.mark.h1_only("absolute-form target")),
])
def test_a_host_that_is_not_served_gets_421(hosted, target, host):
    proxy, upstream, mgr = hosted
    before = len(upstream.requests())
    response = proxy.request(request_bytes("GET", target, [session_header(mgr.cookie)], host=host))
    assert response.status == 421, response
    assert json.loads(response.body)["error"] == "misdirected_request"
    assert len(upstream.requests()) == before
    record = record_of(proxy, response)
    assert record["status"] == 421 and record["user"] == "mgr" and "/hosts/" in record["path"]


def test_a_served_host_is_forwarded_and_signed_as_the_public_origin(hosted):
    proxy, upstream, mgr = hosted
    response = proxy.request(request_bytes("GET", "/hosts/served", [session_header(mgr.cookie)], host=f"APP.Example:{proxy.https_port}"))
    assert response.status == 200, response
    [seen] = upstream_saw(upstream, "/hosts/served")
    assert header_values(seen, "X-Forwarded-Host") == [f"app.example:{proxy.https_port}"]
    assertion = jwt.decode(header_values(seen, "X-ActAs-Jwt-Assertion")[0], options={"verify_signature": False})
    assert assertion["iss"] == f"https://app.example:{proxy.https_port}"


@pytest.mark.parametrize("marker, host", [
    ("/hosts/port-chosen", "app.example:31337"),
    ("/hosts/port-443", "app.example:443"),
    ("/hosts/port-of-another-entry", "app.example:8443"),
    ("/hosts/entry-port-wrong", "portal.example:9443"),
    ("https://app.example:31337/hosts/absolute-port", "app.example"),
])
@pytest.mark.h1_only("asserts the HTTP/1.1 reason phrase (HTTP/2 has none)")
def test_a_host_port_the_proxy_does_not_serve_gets_421(hosted, marker, host):
    """With public_hosts, the client may not choose the port of the public origin (it reaches
    X-Forwarded-Host and the assertion's iss: password-reset links would point there)."""
    proxy, upstream, mgr = hosted
    before = len(upstream.requests())
    response = proxy.request(request_bytes("GET", marker, [session_header(mgr.cookie)], host=host))
    assert response.status == 421, (host, response)
    assert response.reason == "Misdirected Request", response
    assert json.loads(response.body)["error"] == "misdirected_request"
    assert len(upstream.requests()) == before


@pytest.mark.h1_only("asserts the HTTP/1.1 reason phrase (HTTP/2 has none)")
def test_an_unknown_method_status_line_has_its_reason(site):
    proxy, upstream, admin, mgr, token = site
    response = proxy.request(request_bytes("BREW", "/static/coffee", [session_header(mgr.cookie)]))
    assert (response.status, response.reason) == (501, "Not Implemented"), response


@pytest.mark.parametrize("marker, host, forwarded", [
    ("/hosts/no-port", "app.example", "app.example"),
    ("/hosts/listener-port", "app.example:{port}", "app.example:{port}"),
    ("/hosts/entry-port", "PORTAL.example:8443", "portal.example:8443"),
    ("/hosts/entry-no-port", "portal.example", "portal.example"),
])
def test_only_the_listener_or_configured_port_reaches_the_origin(hosted, marker, host, forwarded):
    proxy, upstream, mgr = hosted
    host, forwarded = host.format(port=proxy.https_port), forwarded.format(port=proxy.https_port)
    response = proxy.request(request_bytes("GET", marker, [session_header(mgr.cookie)], host=host))
    assert response.status == 200, (host, response)
    [seen] = upstream_saw(upstream, marker)
    assert header_values(seen, "X-Forwarded-Host") == [forwarded]
    assertion = jwt.decode(header_values(seen, "X-ActAs-Jwt-Assertion")[0], options={"verify_signature": False})
    assert assertion["iss"] == f"https://{forwarded}"


@pytest.mark.parametrize("entry", ["https://app.example", "app.example/", "app.example/path", "app example", "app.example:0",
                                   "app.example:99999", "app.example:", "user@app.example", "*.example", ""])
@pytest.mark.h1_only("CLI and store only: the protocol adds nothing")
def test_a_bad_public_hosts_entry_is_a_config_error(tmp_path, entry):
    proxy = Proxy(tmp_path, 9, start=False)
    proxy.write_config({"listen.public_hosts": ["localhost", entry]})
    result = run(["check", "--config", str(proxy.config_path)], check=False)
    assert result.returncode == 2, result.stderr
    assert f"{proxy.config_path}:" in result.stderr and ": listen.public_hosts: " in result.stderr, result.stderr


@pytest.mark.parametrize("host", ["localhost,evil.example", "evil.example;x", "a(b)", "evil.example%0d", "a!b", "[::1", "localhost:99999",
                                  "localhost:8x"])
def test_a_host_that_could_inject_is_refused(site, host):
    proxy, upstream, admin, mgr, token = site
    before = len(upstream.requests())
    response = proxy.request(request_bytes("GET", "/static/host", [session_header(mgr.cookie)], host=host))
    assert response.status == 400, (host, response)
    assert len(upstream.requests()) == before


def test_any_well_formed_host_is_served_without_public_hosts(site):
    proxy, upstream, admin, mgr, token = site
    response = proxy.request(request_bytes("GET", "/static/any-host", [session_header(mgr.cookie)], host="Intranet.Example:8443"))
    assert response.status == 200, response
    [seen] = upstream_saw(upstream, "/static/any-host")
    assertion = jwt.decode(header_values(seen, "X-ActAs-Jwt-Assertion")[0], options={"verify_signature": False})
    assert assertion["iss"] == "https://intranet.example:8443"
    assert header_values(seen, "X-Forwarded-Host") == ["intranet.example:8443"]


# ---- issue 14 item 7: WebSockets ------------------------------------------------------------------

def upgrade(proxy, path, headers):
    sock = proxy.connect()
    sock.sendall(request_bytes("GET", path, WS_HEADERS + headers))
    return sock, read_response(sock)


def expected_accept(key=WS_KEY):
    return base64.b64encode(hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()


@pytest.mark.parametrize("origin_headers", [
    [("Origin", "https://evil.example")],
    [("Origin", "https://localhost.evil.example")],
    [("Origin", "http://localhost")],
    [("Sec-Fetch-Site", "cross-site")],
    [("Origin", "null"), ("Sec-Fetch-Site", "same-site")],
])
@pytest.mark.h1_only("WebSocket upgrades stay on HTTP/1.1 (SPEC 10.4: no RFC 8441)")
def test_cross_site_websocket_with_the_session_cookie_is_refused(site, origin_headers):
    proxy, upstream, admin, mgr, token = site
    before = len(upstream.requests())
    sock, response = upgrade(proxy, "/ws?cross", [session_header(mgr.cookie), *origin_headers])
    sock.close()
    assert response.status == 403, response
    assert json.loads(response.body)["error"] == "csrf"
    assert len(upstream.requests()) == before


@pytest.mark.parametrize("how", ["same_origin", "same_origin_port_443", "fetch_metadata", "token_cross_origin"])
@pytest.mark.h1_only("WebSocket upgrades stay on HTTP/1.1 (SPEC 10.4: no RFC 8441)")
def test_same_origin_and_token_websockets_are_tunnelled(site, how):
    proxy, upstream, admin, mgr, token = site
    headers = {
        "same_origin": [session_header(mgr.cookie), ("Origin", ORIGIN)],
        "same_origin_port_443": [session_header(mgr.cookie), ("Origin", ORIGIN + ":443")],
        "fetch_metadata": [session_header(mgr.cookie), ("Sec-Fetch-Site", "same-origin")],
        "token_cross_origin": [("Authorization", f"Bearer {token}"), ("Origin", "https://evil.example")],
    }[how]
    sock, response = upgrade(proxy, f"/ws?{how}", headers)
    with sock:
        assert response.status == 101, response
        assert response.header("sec-websocket-accept") == expected_accept()
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"


@pytest.mark.parametrize("path", ["/ws-bad-accept", "/ws-no-accept"])
@pytest.mark.h1_only("WebSocket upgrades stay on HTTP/1.1 (SPEC 10.4: no RFC 8441)")
def test_an_upstream_101_that_did_not_read_the_key_is_a_502(site, path):
    proxy, upstream, admin, mgr, token = site
    sock, response = upgrade(proxy, path, [session_header(mgr.cookie), ("Origin", ORIGIN)])
    with sock:
        assert response.status == 502, response
        assert json.loads(response.body)["error"] == "bad_upstream_response"
    record = record_of(proxy, response)
    assert record["status"] == 502 and record["path"] == path


# ---- issue 14 item 5: refused requests are logged with who and where ------------------------------

def test_impersonate_header_refusal_is_logged_with_who_and_where(site):
    proxy, upstream, admin, mgr, token = site
    response = proxy.request(request_bytes("GET", "/static/imp?a=1", [
        session_header(mgr.cookie), ("Impersonate-User", "admin"), ("X-Request-Id", "client-77")]))
    assert response.status == 403 and json.loads(response.body)["error"] == "impersonation_header"
    record = record_of(proxy, response)
    assert (record["path"], record["query"], record["user"], record["client_request_id"], record["status"]) == (
        "/static/imp", {"a": "1"}, "mgr", "client-77", 403), record


def test_a_refusal_while_impersonating_is_logged_with_the_session(site):
    proxy, upstream, admin, mgr, token = site
    session = me(proxy, admin.cookie)["impersonation"]
    for request in (request_bytes("GET", "/static/imp-session", [session_header(admin.cookie), ("Impersonate-User", "mgr")]),
                    request_bytes("TRACE", "/static/imp-session", [session_header(admin.cookie)])):
        response = proxy.request(request)
        assert response.status in (403, 405), response
        record = record_of(proxy, response)
        assert (record["user"], record["impersonator"], record.get("session_id"), record.get("mode")) == (
            "emp", "admin", session["id"], "read-only"), record


@pytest.mark.parametrize("method, target, path", [("TRACE", "/static/trace?b=2", "/static/trace"), pytest.param(
    "CONNECT", "evil.example:443", "evil.example:443", marks=pytest.mark.h1_only("authority-form target"))])
def test_refused_methods_are_logged_with_who_and_where(site, method, target, path):
    proxy, upstream, admin, mgr, token = site
    response = proxy.request(request_bytes(method, target, [session_header(mgr.cookie), ("X-Request-Id", "client-78")]))
    assert response.status == 405, response
    record = record_of(proxy, response)
    assert (record["method"], record["path"], record.get("user"), record["client_request_id"]) == (method, path, "mgr", "client-78"), record


@pytest.mark.h1_only("absolute-form target with userinfo is HTTP/1.1's")
def test_a_bad_request_target_is_logged_as_read(site):
    proxy, upstream, admin, mgr, token = site
    response = proxy.request(request_bytes("GET", "http://user@evil.example/x?c=3", [session_header(mgr.cookie), ("X-Request-Id", "client-79")]))
    assert response.status == 400, response
    record = record_of(proxy, response)
    assert record["method"] == "GET" and record["path"] == "http://user@evil.example/x" and record["query"] == {"c": "3"}
    assert record["user"] == "mgr" and record["client_request_id"] == "client-79"


PARSER_REFUSALS = [
    ("control_character", b"GET /static/ctl?d=4 HTTP/1.1\r\nHost: localhost\r\nX-A: b\x01c\r\n\r\n", 400, "/static/ctl"),
    ("cl_and_te", b"POST /static/smuggle HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
     "/static/smuggle"),
    ("too_large_body", b"POST /static/big HTTP/1.1\r\nHost: localhost\r\nContent-Length: 999999999999\r\n\r\n", 413, "/static/big"),
    ("too_many_headers", b"GET /static/many HTTP/1.1\r\nHost: localhost\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n", 431,
     "/static/many"),
    ("version", b"GET /static/version HTTP/3.0\r\nHost: localhost\r\n\r\n", 505, "/static/version"),
    ("long_line", b"GET /static/long" + b"a" * 20000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414, "/static/long"),
]


@pytest.mark.parametrize("name, data, status, path", PARSER_REFUSALS, ids=[p[0] for p in PARSER_REFUSALS])
@pytest.mark.h1_only("HTTP/1.1 parser refusals from raw bytes (test_http2.py has HTTP/2's malformed requests)")
def test_requests_the_parser_refuses_are_logged(site, name, data, status, path):
    proxy, upstream, admin, mgr, token = site
    response = proxy.request(data)
    assert response.status == status, response
    record = record_of(proxy, response)
    assert record["status"] == status and record["path"].startswith(path), record
    assert record["method"] in ("GET", "POST")
    assert len(record["path"]) <= 2100


@pytest.mark.h1_only("HTTP/1.1 parser refusals from raw bytes (test_http2.py has HTTP/2's malformed requests)")
def test_a_refused_target_cannot_forge_a_log_line(site):
    proxy, upstream, admin, mgr, token = site
    forged = '{"type":"login","user":"forged"}'
    for data in (f'GET /x"\r\n{forged} HTTP/1.1\r\nHost: localhost\r\n\r\n'.encode(),
                 f'GET /x"\n{forged}\rHTTP/1.1\r\nHost: localhost\r\n\r\n'.encode(),
                 f'GET /x\\"}}\r\n{forged} HTTP/1.1\r\nHost: localhost\r\n\r\n'.encode()):
        response = proxy.request(data)
        assert response.status == 400, response
        record = record_of(proxy, response)
        assert record["path"].startswith("/x"), record
    for line in complete_lines(proxy.dir / "logs" / "audit.jsonl"):
        entry = json.loads(line)
        assert entry.get("user") != "forged"
    run(["audit", "verify", "--config", str(proxy.config_path)])


@pytest.mark.h1_only("raw HTTP/1.1 socket (a head that never ends)")
def test_a_head_that_times_out_is_logged(site):
    proxy, upstream, admin, mgr, token = site
    with proxy.connect() as sock:
        sock.sendall(b"GET /static/slow-head?e=5 HTTP/1.1\r\nHost: localhost\r\n")
        response = read_response(sock)
    assert response.status == 408, response
    record = record_of(proxy, response)
    assert (record["method"], record["path"], record["query"], record["status"]) == ("GET", "/static/slow-head", {"e": "5"}, 408), record
