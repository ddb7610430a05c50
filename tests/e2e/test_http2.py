"""HTTP/2 as clients meet it (SPEC §10.4): ALPN, the same identity headers and log record as
HTTP/1.1 (with "proto"), response fields as HTTP/2 wants them, trailers both ways, flow
control, and an impersonation that ends between two streams of one connection. The attacks
and limits are in test_http2_attacks.py, the browser in test_http2_browser.py."""
import base64
import json
import os
import subprocess
import time

import pytest

from conftest import (
    ORIGIN, Proxy, Upstream, complete_lines, header_values, import_users, login, me, request_bytes, run, session_header,
    wait_for,
)
from h2_frames import H2, Tls, fields

NOW = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400))
USERS = [
    {"username": "admin", "name": "Ada Admin", "email": "admin@example.com", "role": "super_admin", "org_unit": "acme",
     "last_login": NOW},
    {"username": "emp", "name": "Emma Employee", "email": "emp@example.com", "role": "employee", "org_unit": "acme/emea/sales",
     "groups": ["sales", "emea"], "last_login": NOW},
]
REASON = "Ticket 4711: the report page is blank"
CONFIG = {"auth.public_paths": ["/static/*"], "auth.methods": ["password", "token"]}

# SPEC §5: what the proxy tells the application about the request and who makes it.
IDENTITY = ["x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-impersonator-user", "x-impersonator-email",
            "x-impersonation-id", "x-impersonation-mode", "x-impersonation-expires", "x-forwarded-for", "x-forwarded-proto",
            "x-forwarded-host"]
# RFC 9113 §8.2.2
CONNECTION_SPECIFIC = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"}


def setup_users(proxy):
    import_users(proxy, USERS)
    run(["consent", "grant", "emp", "--hours", "24", "--config", str(proxy.config_path)])


def start_impersonation(proxy, cookie, target="emp"):
    """Starts acting as `target` through the JSON API (over HTTP/1.1); returns the session object."""
    csrf = me(proxy, cookie)["csrf_token"]
    body = json.dumps({"target": target, "reason": REASON}).encode()
    response = proxy.request(request_bytes("POST", "/.actas/api/v1/impersonation", [
        session_header(cookie), ("X-CSRF-Token", csrf), ("Origin", ORIGIN), ("Content-Type", "application/json"),
        ("Accept", "application/json")], body))
    assert response.status == 201, response
    return json.loads(response.body)


def records(proxy):
    return [json.loads(line) for line in complete_lines(proxy.dir / "logs" / "audit.jsonl")]


def record_of(proxy, request_id):
    found = []

    def written():
        found[:] = [r for r in records(proxy) if r.get("type") == "request" and r.get("request_id") == request_id]
        return bool(found)
    wait_for(written, timeout=5, what=f"the request record of {request_id}")
    return found[0]


def seen_by_upstream(upstream, path):
    return [r for r in upstream.requests() if r["target"].split("?")[0] == path]


def identity(record):
    return {name: header_values(record, name) for name in IDENTITY}


def assertion_claims(record):
    import jwt
    [token] = header_values(record, "X-ActAs-Jwt-Assertion")
    claims = jwt.decode(token, options={"verify_signature": False})
    return {k: v for k, v in claims.items() if k not in ("iat", "exp", "nbf", "jti")}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A proxy with two people (admin, emp who consents) in front of a recording upstream."""
    tmp = tmp_path_factory.mktemp("http2")
    upstream = Upstream(tmp)
    (tmp / "proxy").mkdir()
    proxy = Proxy(tmp / "proxy", upstream.port, CONFIG)
    setup_users(proxy)
    yield proxy, upstream, login(proxy, "emp")
    proxy.stop()
    upstream.stop()


# ---- ALPN and curl ----------------------------------------------------------------------------------

def test_alpn_prefers_h2_and_still_speaks_http1(site):
    proxy, upstream, _ = site
    both = Tls(proxy, ["h2", "http/1.1"])
    assert both.alpn == "h2"
    both.close()
    old = Tls(proxy, ["http/1.1"])
    assert old.alpn == "http/1.1"
    old.close()
    response = proxy.request(request_bytes("GET", "/static/still-http1"))  # conftest's client offers http/1.1 only
    assert response.status == 200, response


def curl_h2(proxy, path, headers=()):
    """`curl --http2` as an operator would run it; returns (http_version, status, headers, body)."""
    arguments = ["curl", "--http2", "-s", "--cacert", str(proxy.ca), "--resolve", f"localhost:{proxy.https_port}:127.0.0.1",
                 "-D", "-", "-o", os.devnull, "-w", "\n%{http_version} %{response_code}"]
    for name, value in headers:
        arguments += ["-H", f"{name}: {value}"]
    result = subprocess.run(arguments + [f"https://localhost:{proxy.https_port}{path}"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    head, _, tail = result.stdout.rpartition("\n")
    version, status = tail.split()
    response_headers = [tuple(part.strip() for part in line.split(":", 1)) for line in head.splitlines()[1:] if ":" in line]
    return version, int(status), response_headers


@pytest.mark.parametrize("who", ["signed_in", "impersonating"])
def test_curl_over_h2_gets_the_same_identity_headers_as_http1(make_proxy, upstream, who):
    proxy = make_proxy(CONFIG)
    setup_users(proxy)
    cookie = login(proxy, "admin" if who == "impersonating" else "emp")
    if who == "impersonating":
        start_impersonation(proxy, cookie)
    # Spoofed identity in the request is stripped on both protocols.
    spoofed = [("X-Forwarded-User", "mallory"), ("X-Impersonator-User", "mallory"), ("X-Forwarded-Proto", "http"),
               ("X_Forwarded_Email", "mallory@example.com")]
    version, status, response_headers = curl_h2(proxy, "/who-h2", [session_header(cookie), *spoofed])
    assert version == "2" and status == 200, (version, status)
    assert all(name == name.lower() for name, _ in response_headers), response_headers
    # curl sends the port in :authority; the HTTP/1.1 request names the same authority in Host.
    h1 = proxy.request(request_bytes("GET", "/who-h1", [session_header(cookie), *spoofed], host=f"localhost:{proxy.https_port}"))
    assert h1.status == 200, h1
    [over_h2] = seen_by_upstream(upstream, "/who-h2")
    [over_h1] = seen_by_upstream(upstream, "/who-h1")
    assert over_h2["version"] == "HTTP/1.1"  # the app is still spoken to in HTTP/1.1
    assert identity(over_h2) == identity(over_h1)
    assert header_values(over_h2, "x-forwarded-user") == ["emp"]
    assert header_values(over_h2, "x-forwarded-proto") == ["https"]
    assert header_values(over_h2, "x-impersonator-user") == (["admin"] if who == "impersonating" else [])
    assert assertion_claims(over_h2) == assertion_claims(over_h1)
    assert header_values(over_h2, "cookie") == []
    [request_id] = header_values(over_h2, "x-request-id")
    assert ("x-request-id", request_id) in response_headers


# ---- the request log ---------------------------------------------------------------------------------

# Values that differ between any two requests, whatever their protocol.
PER_REQUEST = {"ts", "seq", "request_id", "duration_ms", "upstream_ms", "prev", "hash", "proto"}


@pytest.mark.parametrize("who", ["signed_in", "impersonating"])
def test_log_record_is_the_same_with_proto(make_proxy, upstream, who):
    proxy = make_proxy(CONFIG)
    setup_users(proxy)
    cookie = login(proxy, "admin" if who == "impersonating" else "emp")
    if who == "impersonating":
        start_impersonation(proxy, cookie)
    body = b'{"note":"same","password":"hunter2"}'
    head = [session_header(cookie), ("content-type", "application/json"), ("x-note", "visible")]
    h1 = proxy.request(request_bytes("POST", "/logged?q=1", head, body))
    with H2(proxy) as connection:
        h2 = connection.exchange(fields("/logged?q=1", "POST", extra=[(k.lower(), v) for k, v in head]
                                        + [("content-length", str(len(body)))]), body)
    assert h1.status == 200 and h2.status == 200, (h1, connection.summary())
    h1_record = record_of(proxy, h1.header("x-request-id"))
    h2_record = record_of(proxy, h2.header("x-request-id"))
    assert h1_record["proto"] == "http/1.1" and h2_record["proto"] == "h2"
    assert list(h2_record) == list(h1_record)
    for key in h1_record:
        if key not in PER_REQUEST:
            assert h2_record[key] == h1_record[key], key
    assert h2_record["user"] == "emp" and h2_record["bytes_in"] == len(body) and h2_record["bytes_out"] > 0
    if who == "impersonating":
        assert h2_record["impersonator"] == "admin" and h2_record["request_body"]["password"] == "[REDACTED]"


# ---- fields and trailers ---------------------------------------------------------------------------

def test_response_fields_are_lower_case_without_connection_fields(site):
    proxy, upstream, cookie = site
    with H2(proxy) as connection:
        hop = connection.exchange(fields("/hop", extra=[("cookie", f"__Host-actas_session={cookie}")]))
        cookies = connection.exchange(fields("/set-cookie?name=app&value=v1", extra=[("cookie", f"__Host-actas_session={cookie}")]))
    assert hop.status == 200 and bytes(hop.data) == b"hop\n", connection.summary()
    names = [name for name, _ in hop.headers]
    assert all(name == name.lower() for name in names), names
    assert not CONNECTION_SPECIFIC & set(names), names
    assert "x-secret-hop" not in names and hop.header("x-kept") == "yes"
    assert [v.split(";")[0] for k, v in cookies.headers if k == "set-cookie"] == ["app=v1", "second=2"]


def test_response_trailers_arrive_as_trailing_headers(site):
    proxy, upstream, cookie = site
    with H2(proxy) as connection:
        stream = connection.exchange(fields("/chunked", extra=[("cookie", f"__Host-actas_session={cookie}"), ("te", "trailers")]))
    assert stream.status == 200, connection.summary()
    assert bytes(stream.data) == b"first,second,third"
    assert stream.trailers == [("x-checksum", "42")], connection.summary()
    assert "transfer-encoding" not in dict(stream.headers)


@pytest.mark.parametrize("with_length", [False, True], ids=["no_content_length", "content_length"])
def test_request_trailers_never_carry_identity_or_credentials(site, with_length):
    proxy, upstream, cookie = site
    path = f"/trailers-{with_length}"
    admin_token = run(["tokens", "create", "admin", "--config", str(proxy.config_path)]).stdout.strip()
    body = b"a=1"
    trailers = [("x-forwarded-user", "mallory"), ("x-impersonator-user", "mallory"), ("x-impersonation-mode", "read-write"),
                ("authorization", f"Bearer {admin_token}"), ("cookie", "__Host-actas_session=stolen-mallory"),
                ("x-http-method-override", "DELETE"), ("x-forwarded-proto", "mallory")]
    head = [("cookie", f"__Host-actas_session={cookie}"), ("content-type", "application/x-www-form-urlencoded")]
    if with_length:
        head.append(("content-length", str(len(body))))
    with H2(proxy) as connection:
        stream = connection.exchange(fields(path, "POST", extra=head), body, trailers)
    assert stream.status == 200, connection.summary()
    [seen] = seen_by_upstream(upstream, path)
    assert base64.b64decode(seen["body_b64"]) == body and seen["method"] == "POST"
    assert header_values(seen, "x-forwarded-user") == ["emp"]
    assert header_values(seen, "authorization") == [] and header_values(seen, "cookie") == []
    assert header_values(seen, "x-http-method-override") == []
    names = {name.lower() for name, _ in seen["trailers"]}
    assert not names & {name for name, _ in trailers}, seen["trailers"]
    assert "mallory" not in json.dumps(seen) and admin_token not in json.dumps(seen)
    # Dropped, and named (never valued) in the request's record, with or without a length.
    logged = lambda: [r for r in records(proxy) if r.get("type") == "request" and r.get("path") == path]
    wait_for(logged, what="the request's record")
    [record] = logged()
    assert record.get("detail", "").startswith("request trailers dropped: "), record
    assert {"x-forwarded-user", "authorization", "cookie"} <= set(record["detail"].split(": ", 1)[1].split(", ")), record
    assert admin_token not in json.dumps(record) and "stolen-mallory" not in json.dumps(record)


def test_trailers_after_an_empty_sized_body_are_named_in_the_log(site):
    """content-length 0: the head's own last byte waits for the stream's end, and the record
    that byte starts must still name the trailers."""
    proxy, upstream, cookie = site
    path = "/trailers-empty-body"
    head = [("cookie", f"__Host-actas_session={cookie}"), ("content-length", "0")]
    with H2(proxy) as connection:
        stream = connection.exchange(fields(path, "POST", extra=head), b"", [("x-forwarded-user", "mallory"), ("x-trace", "1")])
    assert stream.status == 200, connection.summary()
    [seen] = seen_by_upstream(upstream, path)
    assert header_values(seen, "x-forwarded-user") == ["emp"] and seen["trailers"] == []
    logged = lambda: [r for r in records(proxy) if r.get("type") == "request" and r.get("path") == path]
    wait_for(logged, what="the request's record")
    [record] = logged()
    assert record.get("detail") == "request trailers dropped: x-forwarded-user, x-trace", record


# ---- flow control ---------------------------------------------------------------------------------------

def test_a_1mib_upload_and_2mib_answer_stream_through_flow_control(make_proxy, upstream):
    proxy = make_proxy()
    body = os.urandom(1 << 20)
    with H2(proxy) as connection:
        # Our receive windows stay at the default 64 KiB: the proxy must wait for WINDOW_UPDATE.
        stream = connection.exchange(fields("/echo?times=2", "POST", extra=[("content-length", str(len(body)))]), body)
    assert stream.status == 200, connection.summary()
    [seen] = seen_by_upstream(upstream, "/echo")
    assert seen["body_len"] == len(body) and base64.b64decode(seen["body_b64"]) == body
    assert len(stream.data) == 2 * len(body) and bytes(stream.data) == body * 2


# ---- an impersonation that ends between two streams of one connection --------------------------------

@pytest.mark.parametrize("kind", ["navigation", "script"])
def test_the_next_stream_after_an_end_gets_the_notice_on_the_same_connection(make_proxy, upstream, kind):
    proxy = make_proxy(CONFIG)
    setup_users(proxy)
    cookie = login(proxy, "admin")
    session = start_impersonation(proxy, cookie)["id"]
    headers = {"navigation": [("accept", "text/html"), ("sec-fetch-mode", "navigate")],
               "script": [("accept", "application/json"), ("sec-fetch-mode", "cors")]}[kind]
    ask = [("cookie", f"__Host-actas_session={cookie}"), *headers]
    with H2(proxy) as connection:
        before = connection.exchange(fields("/before-end", extra=ask))
        assert before.status == 200, connection.summary()
        assert header_values(seen_by_upstream(upstream, "/before-end")[0], "x-forwarded-user") == ["emp"]
        run(["sessions", "end", session, "--config", str(proxy.config_path)])  # returns once the server enforces it
        after = connection.exchange(fields("/after-end", extra=ask))
        if kind == "navigation":
            assert after.status == 303, (after.headers, connection.summary())
            assert after.header("location") == f"/.actas/ended?id={session}"
        else:
            assert after.status == 403, (after.headers, connection.summary())
            answer = json.loads(bytes(after.data))
            assert answer["error"] == "impersonation_ended" and answer["end_reason"] == "ended_by_operator" and answer["message"]
        assert seen_by_upstream(upstream, "/after-end") == []
        # After the notice the administrator browses as themselves, still on the same connection.
        own = connection.exchange(fields("/as-myself", extra=ask))
        assert own.status == 200, connection.summary()
    [record] = seen_by_upstream(upstream, "/as-myself")
    assert header_values(record, "x-forwarded-user") == ["admin"] and header_values(record, "x-impersonator-user") == []


# ---- cookies split over several fields (RFC 9113 §8.2.3, as browsers send them) ----------------------

@pytest.mark.parametrize("order", ["session_first", "session_last"])
def test_split_cookie_fields_identify_and_never_forward_the_session(site, order):
    proxy, upstream, cookie = site
    path = f"/split-cookies-{order}"
    session = ("cookie", f"__Host-actas_session={cookie}")
    app = [("cookie", "app=1"), ("cookie", "theme=dark")]
    with H2(proxy) as connection:
        stream = connection.exchange(fields(path, extra=[session, *app] if order == "session_first" else [*app, session]))
    assert stream.status == 200, connection.summary()
    [seen] = seen_by_upstream(upstream, path)
    assert header_values(seen, "x-forwarded-user") == ["emp"]
    # One Cookie line for the HTTP/1.1 application, the proxy's own cookie taken out.
    assert header_values(seen, "cookie") == ["app=1; theme=dark"]
    assert cookie not in json.dumps(seen)
