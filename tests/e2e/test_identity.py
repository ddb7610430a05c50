"""Identity end to end (SPEC §4–§6): sign-in, sessions, identity headers, the signed
assertion, API tokens and anti-spoofing — real binary, real TLS, real upstream process."""
import json
import time
import urllib.parse

import jwt
import pytest
from jwt import PyJWKSet

from conftest import (
    ORIGIN, PASSWORD, Proxy, Upstream, header_values, import_users, login, login_form, me, post_login,
    request_bytes, run, session_header, set_cookies, wait_for,
)

pytestmark = pytest.mark.protocols("http/1.1", "h2")

ALICE = {"username": "alice", "email": "alice@example.com", "name": "Alice Andersen", "role": "employee",
         "groups": ["sales", "emea"], "org_unit": "acme/emea/sales"}
ADMIN = {"username": "admin", "email": "admin@example.com", "name": "Ada Admin", "role": "super_admin",
         "groups": ["admins"], "org_unit": "acme"}
IDENTITY_CONFIG = {"auth.public_paths": ["/static/*", "/favicon.ico"], "auth.methods": ["password", "token"]}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One upstream and one proxy with alice and admin, shared by the read-only tests here."""
    tmp = tmp_path_factory.mktemp("identity")
    upstream = Upstream(tmp)
    directory = tmp / "proxy"
    directory.mkdir()
    proxy = Proxy(directory, upstream.port, IDENTITY_CONFIG)
    import_users(proxy, [ALICE, ADMIN])
    cookie = login(proxy, "alice")
    yield proxy, upstream, cookie
    proxy.stop()
    upstream.stop()


@pytest.fixture
def fresh(make_proxy, upstream):
    proxy = make_proxy(IDENTITY_CONFIG)
    import_users(proxy, [ALICE, ADMIN])
    return proxy, upstream


def last(upstream):
    return upstream.requests()[-1]


def alice_id(proxy):
    shown = run(["users", "show", "alice", "--json", "--config", str(proxy.config_path)])
    return json.loads(shown.stdout)["id"]


# ---- identity headers ------------------------------------------------------------------------

def test_signed_in_request_carries_exactly_the_identity_headers(site):
    proxy, upstream, cookie = site
    response = proxy.request(request_bytes("GET", "/app?x=1", [
        ("Cookie", f"theme=dark; __Host-actas_session={cookie}; lang=en"), ("Accept", "application/json")]))
    assert response.status == 200, response
    record = last(upstream)
    assert record["target"] == "/app?x=1"
    assert header_values(record, "X-Forwarded-User") == ["alice"]
    assert header_values(record, "X-Forwarded-Email") == ["alice@example.com"]
    assert header_values(record, "X-Forwarded-Groups") == ["sales,emea"]
    assert len(header_values(record, "X-ActAs-Jwt-Assertion")) == 1
    assert header_values(record, "X-Request-Id") == [response.header("x-request-id")]
    assert header_values(record, "X-Forwarded-Proto") == ["https"]
    # Other cookies reach the app; the proxy's own never do.
    assert header_values(record, "Cookie") == ["theme=dark; lang=en"]
    for name, _ in record["headers"]:
        assert not name.lower().startswith("x-impersonat"), name


def test_only_cookie_of_ours_means_no_cookie_header_upstream(site):
    proxy, upstream, cookie = site
    proxy.request(request_bytes("GET", "/only-ours", [session_header(cookie)]))
    assert header_values(last(upstream), "Cookie") == []
    assert header_values(last(upstream), "X-Forwarded-User") == ["alice"]


def test_me_has_the_spec_shape(site):
    proxy, _, cookie = site
    body = me(proxy, cookie)
    assert set(body) == {"user", "impersonation", "consent", "csrf_token"}
    assert set(body["user"]) == {"id", "username", "email", "name", "role", "groups", "org_unit"}
    assert body["user"]["username"] == "alice" and body["user"]["groups"] == ["sales", "emea"]
    assert body["user"]["org_unit"] == "acme/emea/sales" and body["user"]["role"] == "employee"
    assert body["impersonation"] is None
    assert body["consent"] == {"active": False, "expires_at": None}
    assert isinstance(body["csrf_token"], str) and len(body["csrf_token"]) >= 32


# ---- the signed assertion ----------------------------------------------------------------------

def jwks(proxy):
    response = proxy.request(request_bytes("GET", "/.well-known/actas/jwks.json"))
    assert response.status == 200 and response.header("content-type") == "application/json"
    return json.loads(response.body)


def verify(proxy, token, audience):
    keys = PyJWKSet.from_dict(jwks(proxy))
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    return jwt.decode(token, key=key.key, algorithms=["ES256"], audience=audience, issuer="https://localhost")


def test_assertion_verifies_with_the_published_jwks(site):
    proxy, upstream, cookie = site
    proxy.request(request_bytes("GET", "/assert", [session_header(cookie)]))
    [token] = header_values(last(upstream), "X-ActAs-Jwt-Assertion")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"]
    claims = verify(proxy, token, audience=f"http://127.0.0.1:{upstream.port}")
    assert claims["sub"] == alice_id(proxy)
    assert claims["preferred_username"] == "alice"
    assert claims["email"] == "alice@example.com"
    assert claims["groups"] == ["sales", "emea"]
    assert claims["role"] == "employee"
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert abs(claims["iat"] - time.time()) < 120
    assert claims["jti"]
    for absent in ("act", "sid", "mode"):
        assert absent not in claims


def test_tampered_assertion_does_not_verify(site):
    proxy, upstream, cookie = site
    proxy.request(request_bytes("GET", "/assert", [session_header(cookie)]))
    [token] = header_values(last(upstream), "X-ActAs-Jwt-Assertion")
    head, payload, signature = token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["preferred_username"] = "admin"
    forged = ".".join([head, jwt.utils.base64url_encode(json.dumps(claims).encode()).decode(), signature])
    with pytest.raises(jwt.InvalidSignatureError):
        verify(proxy, forged, audience=f"http://127.0.0.1:{upstream.port}")


def test_assertion_is_reused_not_signed_per_request(site):
    proxy, upstream, cookie = site
    tokens = set()
    for _ in range(5):
        proxy.request(request_bytes("GET", "/reuse", [session_header(cookie)]))
        tokens.update(header_values(last(upstream), "X-ActAs-Jwt-Assertion"))
    assert len(tokens) == 1


def test_issuer_and_audience_from_config(make_proxy, upstream):
    proxy = make_proxy({**IDENTITY_CONFIG, "headers.assertion_issuer": "https://app.example.com",
                        "headers.assertion_audience": "legacy-app"})
    import_users(proxy, [ALICE])
    cookie = login(proxy, "alice")
    proxy.request(request_bytes("GET", "/", [session_header(cookie)]))
    [token] = header_values(last(upstream), "X-ActAs-Jwt-Assertion")
    keys = PyJWKSet.from_dict(jwks(proxy))
    claims = jwt.decode(token, key=keys.keys[0].key, algorithms=["ES256"], audience="legacy-app", issuer="https://app.example.com")
    assert claims["preferred_username"] == "alice"


def test_key_rotation_publishes_both_and_signs_with_the_new(fresh):
    proxy, upstream = fresh
    cookie = login(proxy, "alice")
    proxy.request(request_bytes("GET", "/before", [session_header(cookie)]))
    [before] = header_values(last(upstream), "X-ActAs-Jwt-Assertion")
    old_kid = jwt.get_unverified_header(before)["kid"]
    assert [k["kid"] for k in jwks(proxy)["keys"]] == [old_kid]

    rotated = run(["keys", "rotate", "--config", str(proxy.config_path)])
    assert "signing key is now" in rotated.stdout
    wait_for(lambda: len(jwks(proxy)["keys"]) == 2, timeout=5, what="the JWKS to publish the new key")
    kids = [k["kid"] for k in jwks(proxy)["keys"]]
    assert old_kid in kids
    new_kid = next(k for k in kids if k != old_kid)

    proxy.request(request_bytes("GET", "/after", [session_header(cookie)]))
    [after] = header_values(last(upstream), "X-ActAs-Jwt-Assertion")
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    audience = f"http://127.0.0.1:{upstream.port}"
    # Both the assertion minted before the rotation and the new one verify.
    assert verify(proxy, before, audience)["preferred_username"] == "alice"
    assert verify(proxy, after, audience)["preferred_username"] == "alice"


# ---- anti-spoofing -----------------------------------------------------------------------------

SPOOFED = [
    ("X-Forwarded-User", "mallory"),
    ("x-forwarded-user", "mallory"),
    ("X-FORWARDED-USER", "mallory"),
    ("X_Forwarded_User", "mallory"),
    ("x_forwarded-user", "mallory"),
    ("X-Forwarded-Email", "mallory@evil"),
    ("X_FORWARDED_EMAIL", "mallory@evil"),
    ("X-Forwarded-Groups", "admins"),
    ("x_forwarded_groups", "admins"),
    ("X-ActAs-Jwt-Assertion", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0."),
    ("X_ActAs_Jwt_Assertion", "forged"),
    ("X-Impersonator-User", "admin"),
    ("X-Impersonator-Email", "admin@example.com"),
    ("X-Impersonation-Id", "imp_forged"),
    ("X-Impersonation-Mode", "read-write"),
    ("X-Impersonation-Expires", "2099-01-01T00:00:00Z"),
    ("x_impersonation_id", "imp_forged"),
    ("X-Impersonated-By", "admin"),
    ("X-Impersonating", "yes"),
    ("X-Forwarded-For", "10.9.9.9"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "http"),
    ("X-Forwarded-Prefix", "/evil"),
    ("X-Request-Id", "client-chosen"),
]

PROTECTED = ["x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-actas-jwt-assertion",
             "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-request-id"]


def normalised(name):
    return name.lower().replace("_", "-")


def assert_no_spoof(record, signed_in, response=None):
    names = [normalised(name) for name, _ in record["headers"]]
    # The proxy's own values, not merely one value each.
    assert header_values(record, "X-Forwarded-For") == ["127.0.0.1"]
    assert header_values(record, "X-Forwarded-Proto") == ["https"]
    assert header_values(record, "X-Forwarded-Host") == ["localhost"]
    if response is not None:
        assert header_values(record, "X-Request-Id") == [response.header("x-request-id")]
    for name in names:
        assert not name.startswith("x-impersonat"), record["headers"]
        assert name != "x-forwarded-prefix"
    for value in (v for _, v in record["headers"]):
        assert "mallory" not in value and "forged" not in value and "evil" not in value and "10.9.9.9" not in value
    for name in PROTECTED:
        expected = 1 if (signed_in or name in ("x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-request-id")) else 0
        assert names.count(name) == expected, (name, record["headers"])
    if signed_in:
        assert header_values(record, "X-Forwarded-User") == ["alice"]
        assert header_values(record, "X-Forwarded-Groups") == ["sales,emea"]


@pytest.mark.parametrize("name,value", SPOOFED)
def test_each_spoofed_header_is_removed_signed_in(site, name, value):
    proxy, upstream, cookie = site
    response = proxy.request(request_bytes("GET", "/spoof", [(name, value), session_header(cookie)]))
    assert response.status == 200, response
    assert_no_spoof(last(upstream), signed_in=True, response=response)


@pytest.mark.parametrize("name,value", SPOOFED)
def test_each_spoofed_header_is_removed_on_a_public_path(site, name, value):
    proxy, upstream, _ = site
    response = proxy.request(request_bytes("GET", "/static/app.css", [(name, value)]))
    assert response.status == 200, response
    assert_no_spoof(last(upstream), signed_in=False, response=response)


def test_all_spoofed_headers_together_twice_each_with_connection_tricks(site):
    proxy, upstream, cookie = site
    headers = SPOOFED + SPOOFED + [
        ("Connection", "keep-alive, X-Forwarded-User, X-Forwarded-Email, X-ActAs-Jwt-Assertion, X-Forwarded-Groups"),
        session_header(cookie)]
    response = proxy.request(request_bytes("GET", "/spoof-all", headers))
    assert response.status == 200, response
    assert_no_spoof(last(upstream), signed_in=True)


def test_connection_cannot_remove_injected_identity_anonymously(site):
    proxy, upstream, _ = site
    proxy.request(request_bytes("GET", "/static/x", [("Connection", "X-Forwarded-For, X-Request-Id"), ("X-Forwarded-User", "mallory")]))
    record = last(upstream)
    assert header_values(record, "X-Forwarded-For") == ["127.0.0.1"]
    assert header_values(record, "X-Forwarded-User") == []


@pytest.mark.parametrize("name", ["Impersonate-User", "impersonate-group", "Impersonate_User", "IMPERSONATE-UID",
                                  "Impersonate-Extra-Scopes"])
def test_impersonate_headers_are_refused(site, name):
    proxy, upstream, cookie = site
    before = len(upstream.requests())
    response = proxy.request(request_bytes("GET", "/k8s", [(name, "admin"), session_header(cookie), ("Accept", "application/json")]))
    assert response.status == 403
    assert json.loads(response.body)["error"] == "impersonation_header"
    assert len(upstream.requests()) == before


@pytest.mark.h1_only("WebSocket upgrades stay on HTTP/1.1 (SPEC 10.4: no RFC 8441)")
def test_spoofing_over_a_websocket_upgrade(site):
    proxy, upstream, cookie = site
    with proxy.connect() as sock:
        sock.sendall(request_bytes("GET", "/ws", [
            ("Upgrade", "websocket"), ("Connection", "Upgrade, X-Forwarded-User"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"), ("X-Forwarded-User", "mallory"), ("X_Forwarded_Groups", "admins"),
            ("X-Impersonator-User", "admin"), session_header(cookie)]))
        from conftest import read_response
        response = read_response(sock)
        assert response.status == 101
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
    record = next(r for r in reversed(upstream.requests()) if r["target"] == "/ws")
    assert_no_spoof(record, signed_in=True)
    assert header_values(record, "Upgrade") == ["websocket"]


@pytest.mark.h1_only("WebSocket upgrades stay on HTTP/1.1 (SPEC 10.4: no RFC 8441)")
def test_upgrade_without_sign_in_is_refused(site):
    proxy, upstream, _ = site
    before = len(upstream.requests())
    response = proxy.request(request_bytes("GET", "/ws", [
        ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13")]))
    assert response.status == 401
    assert len(upstream.requests()) == before


# ---- unauthenticated requests and public paths ---------------------------------------------------

def test_browser_is_sent_to_sign_in_with_return_path(site):
    proxy, upstream, _ = site
    before = len(upstream.requests())
    response = proxy.request(request_bytes("GET", "/reports/q3?year=2026", [("Accept", "text/html,application/xhtml+xml")]))
    assert response.status == 302
    location = urllib.parse.urlsplit(response.header("location"))
    assert location.path == "/.actas/login"
    assert urllib.parse.parse_qs(location.query) == {"rd": ["/reports/q3?year=2026"]}
    assert len(upstream.requests()) == before


def test_program_gets_401_json(site):
    proxy, upstream, _ = site
    before = len(upstream.requests())
    response = proxy.request(request_bytes("POST", "/api/things", [("Accept", "application/json"), ("Content-Type", "application/json")], b"{}"))
    assert response.status == 401
    body = json.loads(response.body)
    assert body["error"] == "unauthenticated" and body["message"]
    assert len(upstream.requests()) == before


@pytest.mark.parametrize("path", ["/static/app.css", "/favicon.ico", "/static/deep/er/x.js"])
def test_public_paths_are_forwarded_without_identity(site, path):
    proxy, upstream, _ = site
    response = proxy.request(request_bytes("GET", path))
    assert response.status == 200
    assert last(upstream)["target"] == path
    assert header_values(last(upstream), "X-Forwarded-User") == []


def test_public_path_keeps_identity_of_a_signed_in_visitor(site):
    proxy, upstream, cookie = site
    proxy.request(request_bytes("GET", "/static/app.css", [session_header(cookie)]))
    assert header_values(last(upstream), "X-Forwarded-User") == ["alice"]


@pytest.mark.parametrize("path", ["/static/../admin", "/static/%2e%2e/admin", "/static/..%2fadmin", "/static/..%2Fadmin",
                                  "/static/..;/admin", "/static/%252e%252e/admin", "/static\\..\\admin", "/favicon.ico/../admin",
                                  "/static/..%5cadmin", "/static/%00/x"])
def test_public_paths_cannot_be_escaped(site, path):
    proxy, upstream, _ = site
    before = len(upstream.requests())
    response = proxy.request(request_bytes("GET", path, [("Accept", "application/json")]))
    assert response.status in (400, 401), response
    assert len(upstream.requests()) == before


def test_unknown_session_cookie_is_not_signed_in(site):
    proxy, upstream, _ = site
    response = proxy.request(request_bytes("GET", "/x", [session_header("A" * 43), ("Accept", "application/json")]))
    assert response.status == 401


# ---- sign-in, cookies, sessions -----------------------------------------------------------------

def test_session_cookie_attributes(fresh):
    proxy, _ = fresh
    response = post_login(proxy, "alice")
    assert response.status == 303
    value, attributes = set_cookies(response)["__Host-actas_session"]
    parts = [p.strip().lower() for p in attributes.split(";")]
    assert "secure" in parts and "httponly" in parts and "samesite=lax" in parts and "path=/" in parts
    assert not any(p.startswith("domain") for p in parts)
    assert len(value) >= 43


def test_every_sign_in_gets_a_fresh_session_value(fresh):
    proxy, _ = fresh
    first = login(proxy, "alice")
    second = login(proxy, "alice")
    assert first != second
    assert me(proxy, second)["user"]["username"] == "alice"


def test_wrong_password_and_unknown_user(fresh):
    proxy, upstream = fresh
    for username, password in (("alice", "wrong password"), ("nobody", PASSWORD)):
        response = post_login(proxy, username, password)
        assert response.status == 401
        assert "__Host-actas_session" not in set_cookies(response)
        assert b"not right" in response.body


@pytest.mark.parametrize("rd,expected", [
    ("/reports?q=1", "/reports?q=1"),
    ("/.actas/", "/.actas/"),
    ("//evil.example/", "/"),
    ("/\\evil.example", "/"),
    ("\\/evil.example", "/"),
    ("/%09/evil.example", "/"),
    ("/%2f/evil.example", "/"),
    ("/%5cevil.example", "/"),
    ("https://evil.example/", "/"),
    ("javascript:alert(1)", "/"),
    ("JavaScript:alert(1)", "/"),
    ("data:text/html,<script>alert(1)</script>", "/"),
    ("/\t/evil.example", "/"),
    ("/ok\r\nSet-Cookie: x=1", "/"),
    ("", "/"),
])
def test_return_path_only_same_origin(fresh, rd, expected):
    proxy, _ = fresh
    response = post_login(proxy, "alice", rd=rd)
    assert response.status == 303
    assert response.header("location") == expected


def test_login_form_carries_rd_in_a_hidden_field(fresh):
    proxy, _ = fresh
    _, _, page = login_form(proxy, rd="/reports?q=1")
    assert b'name="rd" value="/reports?q=1"' in page.body
    _, _, page = login_form(proxy, rd="//evil.example")
    assert b'name="rd" value="/"' in page.body


@pytest.mark.parametrize("case", ["no_token", "wrong_token", "no_login_cookie", "cross_origin", "null_origin",
                                  "no_origin_wrong_token", "no_origin_no_login_cookie", "cross_site_fetch"])
def test_login_csrf(fresh, case):
    proxy, _ = fresh
    token, cookie, _ = login_form(proxy)
    kwargs = {"token": token, "login_cookie": cookie}
    if case == "no_token":
        kwargs["token"] = ""
    elif case == "wrong_token":
        kwargs["token"] = "x" * 43
    elif case == "no_login_cookie":
        kwargs["login_cookie"] = ""
    elif case == "no_origin_wrong_token":
        kwargs.update(origin=None, token="x" * 43)
    elif case == "no_origin_no_login_cookie":
        kwargs.update(origin=None, login_cookie="")
    elif case == "cross_site_fetch":
        kwargs.update(origin=None, extra=[("Sec-Fetch-Site", "cross-site")])
    elif case == "cross_origin":
        kwargs["origin"] = "https://evil.example"
    elif case == "null_origin":
        kwargs["origin"] = "null"
    response = post_login(proxy, "alice", **kwargs)
    assert response.status == 403, response
    assert "__Host-actas_session" not in set_cookies(response)


def test_a_script_signs_in_with_the_form_token_and_no_origin(fresh):
    """No Origin and no Sec-Fetch-Site: not a browser. The form's token and cookie are enough."""
    proxy, _ = fresh
    token, cookie, _ = login_form(proxy)
    response = post_login(proxy, "alice", token=token, login_cookie=cookie, origin=None)
    assert response.status == 303 and "__Host-actas_session" in set_cookies(response)


def test_login_with_sec_fetch_site_instead_of_origin(fresh):
    proxy, _ = fresh
    token, cookie, _ = login_form(proxy)
    ok = post_login(proxy, "alice", token=token, login_cookie=cookie, origin=None, extra=[("Sec-Fetch-Site", "same-origin")])
    assert ok.status == 303
    token, cookie, _ = login_form(proxy)
    bad = post_login(proxy, "alice", token=token, login_cookie=cookie, origin=None, extra=[("Sec-Fetch-Site", "cross-site")])
    assert bad.status == 403


def logout(proxy, cookie, token, origin=ORIGIN, method="POST"):
    body = urllib.parse.urlencode({"csrf_token": token}).encode() if token is not None else b""
    headers = [session_header(cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "text/html")]
    if origin:
        headers.append(("Origin", origin))
    return proxy.request(request_bytes(method, "/.actas/logout", headers, body))


def test_logout_needs_post_csrf_and_same_origin_then_kills_the_session(fresh):
    proxy, upstream = fresh
    cookie = login(proxy, "alice")
    token = me(proxy, cookie)["csrf_token"]
    # GET is the sign-out page (SPEC §4): it changes nothing.
    assert proxy.request(request_bytes("GET", "/.actas/logout", [session_header(cookie)])).status == 200
    assert logout(proxy, cookie, None).status == 403
    assert logout(proxy, cookie, "wrong").status == 403
    assert logout(proxy, cookie, token, origin="https://evil.example").status == 403
    assert me(proxy, cookie)["user"]["username"] == "alice"  # still signed in

    response = logout(proxy, cookie, token)
    assert response.status == 303
    value, attributes = set_cookies(response)["__Host-actas_session"]
    assert value == "" and "max-age=0" in attributes.lower()
    # The old cookie value is dead server-side, whatever the browser keeps.
    after = proxy.request(request_bytes("GET", "/after-logout", [session_header(cookie), ("Accept", "application/json")]))
    assert after.status == 401
    assert all(r["target"] != "/after-logout" for r in upstream.requests())


def test_logout_with_csrf_header(fresh):
    proxy, _ = fresh
    cookie = login(proxy, "alice")
    token = me(proxy, cookie)["csrf_token"]
    response = proxy.request(request_bytes("POST", "/.actas/logout", [session_header(cookie), ("X-CSRF-Token", token), ("Origin", ORIGIN)]))
    assert response.status == 303


def test_session_expires_server_side(make_proxy, upstream):
    proxy = make_proxy({**IDENTITY_CONFIG, "auth.session_ttl": "2s"})
    import_users(proxy, [ALICE])
    cookie = login(proxy, "alice")
    assert proxy.request(request_bytes("GET", "/in-time", [session_header(cookie)])).status == 200
    time.sleep(2.5)
    response = proxy.request(request_bytes("GET", "/too-late", [session_header(cookie), ("Accept", "application/json")]))
    assert response.status == 401
    assert all(r["target"] != "/too-late" for r in upstream.requests())


def test_suspended_and_deleted_users_cannot_sign_in(fresh):
    proxy, _ = fresh
    import_users(proxy, [{"username": "sam", "status": "suspended"}, {"username": "dee", "status": "deleted"}])
    for username in ("sam", "dee"):
        response = post_login(proxy, username)
        assert response.status == 403
        assert "__Host-actas_session" not in set_cookies(response)


def test_suspending_a_signed_in_user_kills_their_session(fresh):
    proxy, upstream = fresh
    cookie = login(proxy, "alice")
    assert proxy.request(request_bytes("GET", "/before", [session_header(cookie)])).status == 200
    run(["users", "suspend", "alice", "--config", str(proxy.config_path)])

    def refused():
        return proxy.request(request_bytes("GET", "/after", [session_header(cookie), ("Accept", "application/json")])).status == 401
    # Another process (the CLI) changed the store: the server learns it from the change feed.
    wait_for(refused, timeout=2, what="the suspension to reach the server")
    for _ in range(5):
        response = proxy.request(request_bytes("GET", "/later", [session_header(cookie), ("Accept", "application/json")]))
        assert response.status == 401
    assert all(r["target"] != "/later" for r in upstream.requests())


def test_deleting_a_signed_in_user_kills_their_session(fresh):
    proxy, _ = fresh
    cookie = login(proxy, "alice")
    run(["users", "delete", "alice", "--config", str(proxy.config_path)])
    wait_for(lambda: proxy.request(request_bytes("GET", "/x", [session_header(cookie)])).status == 401, timeout=2, what="deletion")
    assert post_login(proxy, "alice").status == 403


def test_invited_user_first_sign_in_activates_and_sets_last_login(fresh):
    proxy, _ = fresh
    import_users(proxy, [{"username": "ivy", "status": "invited"}])
    before = json.loads(run(["users", "show", "ivy", "--json", "--config", str(proxy.config_path)]).stdout)
    assert before["status"] == "invited" and before["last_login"] is None
    login(proxy, "ivy")
    after = json.loads(run(["users", "show", "ivy", "--json", "--config", str(proxy.config_path)]).stdout)
    assert after["status"] == "active" and after["last_login"]


def test_sign_in_rate_limit_per_account(fresh):
    # Issue 21 item 7: failures slow down the account from the network they come from (five
    # free, then waits of 1, 2, 4 … s), instead of locking the account for everyone; the full
    # scenario (the owner getting in meanwhile) is in test_signin_throttle.py.
    proxy, _ = fresh
    for _ in range(5):
        assert post_login(proxy, "alice", "wrong").status == 401
    # Keep guessing until the wait is long enough that the next request surely falls inside it.
    wait_for(lambda: (lambda r: r.status == 429 and int(r.header("retry-after")) >= 8)(post_login(proxy, "alice", "wrong")),
             timeout=60, what="a wait of 8 s")
    limited = post_login(proxy, "alice")  # even the right password
    assert limited.status == 429
    assert int(limited.header("retry-after")) > 0
    assert "__Host-actas_session" not in set_cookies(limited)
    # Another account from the same address is still fine.
    assert post_login(proxy, "admin").status == 303


def test_sign_in_rate_limit_per_address(make_proxy, upstream):
    proxy = make_proxy({**IDENTITY_CONFIG, "auth.max_failed_logins_per_ip": 3})
    import_users(proxy, [ALICE])
    for username in ("u1", "u2", "u3"):
        assert post_login(proxy, username, "wrong").status == 401
    assert post_login(proxy, "alice").status == 429


# ---- API tokens ---------------------------------------------------------------------------------

def test_api_token_authenticates_and_is_never_forwarded(fresh):
    proxy, upstream = fresh
    created = json.loads(run(["tokens", "create", "alice", "--name", "ci", "--json", "--config", str(proxy.config_path)]).stdout)
    token = created["token"]
    assert token.startswith("actas_") and created["id"].startswith("tok_")
    plain = run(["tokens", "create", "alice", "--config", str(proxy.config_path)]).stdout.strip()
    assert plain.startswith("actas_") and "\n" not in plain

    def authorised():
        return proxy.request(request_bytes("GET", "/api/data", [("Authorization", f"Bearer {token}")])).status == 200
    wait_for(authorised, timeout=2, what="the new token to reach the server")
    record = last(upstream)
    assert header_values(record, "Authorization") == []
    assert header_values(record, "X-Forwarded-User") == ["alice"]
    for _, value in record["headers"]:
        assert token not in value
    # The token works for the JSON API too.
    response = proxy.request(request_bytes("GET", "/.actas/api/v1/me", [("Authorization", f"Bearer {token}")]))
    assert json.loads(response.body)["user"]["username"] == "alice"

    listed = run(["tokens", "list", "--config", str(proxy.config_path)]).stdout
    assert created["id"] in listed and token not in listed
    run(["tokens", "revoke", created["id"], "--config", str(proxy.config_path)])
    wait_for(lambda: proxy.request(request_bytes("GET", "/api/data", [("Authorization", f"Bearer {token}")])).status == 401,
             timeout=2, what="revocation")


def test_other_authorization_passes_through_untouched(site):
    proxy, upstream, cookie = site
    for value in ("Basic YWxpY2U6c2VjcmV0", "Bearer app-own-token.abc", "Bearer actasX_not_ours"):
        proxy.request(request_bytes("GET", "/app-auth", [("Authorization", value), session_header(cookie)]))
        assert header_values(last(upstream), "Authorization") == [value]


def test_invalid_actas_token_is_401_and_not_forwarded(site):
    proxy, upstream, _ = site
    before = len(upstream.requests())
    response = proxy.request(request_bytes("GET", "/api/data", [("Authorization", "Bearer actas_forged")]))
    assert response.status == 401
    assert json.loads(response.body)["error"] == "invalid_token"
    assert len(upstream.requests()) == before


# ---- CLI ------------------------------------------------------------------------------------------

@pytest.mark.h1_only("CLI and store only: the protocol adds nothing")
def test_users_cli_round_trip_and_errors(fresh):
    proxy, _ = fresh
    config = ["--config", str(proxy.config_path)]
    added = subprocess_run(["users", "add", "zoe", "--email", "zoe@example.com", "--role", "manager", "--groups", "a,b",
                            "--org-unit", "acme/x", "--password-stdin", *config], input="s3cret-pass\n")
    assert added.returncode == 0, added.stderr
    assert "s3cret" not in added.stdout + added.stderr
    shown = json.loads(run(["users", "show", "zoe", "--json", *config]).stdout)
    assert shown["groups"] == ["a", "b"] and shown["role"] == "manager" and shown["org_unit"] == "acme/x"
    assert not {"password", "password_hash"} & set(shown) and "s3cret" not in json.dumps(shown)
    assert login(proxy, "zoe", "s3cret-pass")

    duplicate = subprocess_run(["users", "add", "zoe", *config])
    assert duplicate.returncode != 0 and "already exists" in duplicate.stderr
    bad_role = subprocess_run(["users", "add", "yan", "--role", "emperor", *config])
    assert bad_role.returncode != 0 and "emperor" in bad_role.stderr
    run(["users", "set", "zoe", "--role", "employee", *config])
    assert json.loads(run(["users", "show", "zoe", "--json", *config]).stdout)["role"] == "employee"
    listed = run(["users", "list", *config]).stdout
    assert "zoe" in listed and "alice" in listed


@pytest.mark.h1_only("CLI and store only: the protocol adds nothing")
def test_users_import_csv_and_errors_name_file_and_line(fresh, tmp_path):
    proxy, _ = fresh
    config = ["--config", str(proxy.config_path)]
    good = tmp_path / "users.csv"
    good.write_text('username,email,name,role,groups,org_unit,password\n'
                    'carl,carl@example.com,"Carl, Jr.",employee,sales;emea,acme/emea,pw-carl-123\n'
                    'dana,dana@example.com,Dana,manager,,acme,\n')
    result = run(["users", "import", str(good), *config])
    assert "2 created" in result.stdout
    carl = json.loads(run(["users", "show", "carl", "--json", *config]).stdout)
    assert carl["name"] == "Carl, Jr." and carl["groups"] == ["sales", "emea"]
    assert login(proxy, "carl", "pw-carl-123")
    # Upsert by username keeps what the record leaves out.
    (tmp_path / "update.json").write_text(json.dumps([{"username": "carl", "role": "manager"}]))
    assert "1 updated" in run(["users", "import", str(tmp_path / "update.json"), *config]).stdout
    carl = json.loads(run(["users", "show", "carl", "--json", *config]).stdout)
    assert carl["role"] == "manager" and carl["email"] == "carl@example.com"

    bad = tmp_path / "bad.csv"
    bad.write_text("username,role\nerin,employee\nfred,czar\n")
    failed = subprocess_run(["users", "import", str(bad), *config])
    assert failed.returncode != 0
    assert f"{bad}:3" in failed.stderr and "czar" in failed.stderr
    # All or nothing: erin was not created.
    assert subprocess_run(["users", "show", "erin", *config]).returncode != 0
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps([{"username": "gil", "shoe_size": 44}]))
    failed = subprocess_run(["users", "import", str(unknown), *config])
    assert failed.returncode != 0 and "shoe_size" in failed.stderr


def subprocess_run(args, input=None):
    import subprocess
    from conftest import ACTAS, clean_env
    return subprocess.run([str(ACTAS), *args], capture_output=True, text=True, env=clean_env(), input=input)


@pytest.mark.h1_only("CLI and store only: the protocol adds nothing")
def test_several_processes_open_a_new_store_at_once(tmp_path):
    """Migrations and the switch to WAL are safe when processes start together."""
    import subprocess
    from conftest import ACTAS, clean_env
    for name in "abcd":
        (tmp_path / f"{name}.conf").write_text(f'[store]\nurl = "sqlite:shared.db"\n[audit]\nfile = "{name}.jsonl"\n')
    processes = [subprocess.Popen([str(ACTAS), "users", "list", "--config", str(tmp_path / f"{name}.conf")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env()) for name in "abcd"]
    results = [(p.wait(timeout=60), p.stderr.read().decode()) for p in processes]
    assert all(code == 0 for code, _ in results), results


def test_configured_header_names_are_used_and_their_spoofs_stripped(make_proxy, upstream):
    proxy = make_proxy({**IDENTITY_CONFIG, "headers.user": "X-Remote-User", "headers.email": "X-Remote-Email",
                        "headers.groups": "X-Remote-Groups", "headers.assertion": "X-Remote-Jwt"})
    import_users(proxy, [ALICE])
    cookie = login(proxy, "alice")
    proxy.request(request_bytes("GET", "/custom", [session_header(cookie), ("X-Remote-User", "mallory"), ("x_remote_user", "mallory"),
                                                   ("X-Remote-Jwt", "forged"), ("X-Forwarded-User", "mallory")]))
    record = last(upstream)
    assert header_values(record, "X-Remote-User") == ["alice"]
    assert header_values(record, "X-Remote-Email") == ["alice@example.com"]
    assert header_values(record, "X-Remote-Groups") == ["sales,emea"]
    assert len(header_values(record, "X-Remote-Jwt")) == 1 and header_values(record, "X-Remote-Jwt") != ["forged"]
    assert header_values(record, "x_remote_user") == [] and header_values(record, "X-Forwarded-User") == []


def test_signing_in_again_replaces_the_presented_session(fresh):
    """Session fixation: a cookie the browser already holds is never kept at sign-in."""
    proxy, _ = fresh
    planted = login(proxy, "alice")
    from conftest import post_login as form_login
    token, login_cookie, _ = login_form(proxy)
    response = form_login(proxy, "alice", token=token, login_cookie="",
                          extra=[("Cookie", f"__Host-actas_login={login_cookie}; __Host-actas_session={planted}")])
    assert response.status == 303
    fresh_value = set_cookies(response)["__Host-actas_session"][0]
    assert fresh_value and fresh_value != planted
