"""Client-certificate (mTLS) sign-in end to end (SPEC §10.3 "mTLS:", §3 `listen.client_ca`,
§4 sessions): certificates made here with `cryptography`, presented by Python's ssl over real
TLS to the real binary, a real upstream process and a real SQLite file."""
import datetime
import hashlib
import json
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import (
    ORIGIN, complete_lines, header_values, import_users, is_closed, login, me, read_response, request_bytes, run,
    session_header, set_cookies, wait_for,
)
from postgres_fixtures import pg_database, postgres_server  # noqa: F401 (fixtures)

NOW = "2026-01-01T00:00:00Z"
USERS = [
    {"username": "alice", "email": "alice@example.com", "name": "Alice Andersen", "role": "employee",
     "groups": ["sales"], "org_unit": "acme/emea/sales", "last_login": NOW},
    {"username": "bob", "email": "bob@example.com", "role": "employee", "org_unit": "acme/emea", "last_login": NOW},
    {"username": "admin", "email": "admin@example.com", "name": "Ada Admin", "role": "super_admin", "org_unit": "acme",
     "last_login": NOW},
    {"username": "emp", "email": "emp@example.com", "role": "employee", "org_unit": "acme/emea/sales", "last_login": NOW},
    {"username": "sus", "email": "sus@example.com", "role": "employee", "org_unit": "acme", "last_login": NOW},
    {"username": "gone", "email": "gone@example.com", "role": "employee", "org_unit": "acme", "last_login": NOW},
    {"username": "alice@example.com", "role": "employee", "org_unit": "acme", "last_login": NOW},
    {"username": "alice.devices.example.com", "role": "employee", "org_unit": "acme", "last_login": NOW},
    {"username": "Carol.Smith", "role": "employee", "org_unit": "acme", "last_login": NOW},
]
REASON = "Ticket 4711: the report page is blank"


# ---- certificates --------------------------------------------------------------------------

class Authority:
    """A CA that issues client certificates (PEM files under `directory`)."""

    def __init__(self, directory, name):
        self.directory = directory
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} client CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False, data_encipherment=False,
                                                  key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.path = directory / f"{name}-ca.crt"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, label, cn=None, emails=(), dns=(), expired=False):
        """A client certificate: (cert path, key path, lower-case hex SHA-256 of its DER)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = (now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)) if expired else \
            (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")]
        if cn is not None:
            attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        builder = (x509.CertificateBuilder().subject_name(x509.Name(attributes)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        names = [x509.RFC822Name(e) for e in emails] + [x509.DNSName(d) for d in dns]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path = self.directory / f"{self.name}-{label}.crt"
        key_path = self.directory / f"{self.name}-{label}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path, hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def connect(proxy, cert=None):
    """A TLS connection to the proxy, presenting `cert` ((cert, key, sha) or None)."""
    ctx = proxy.context()
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    raw = socket.create_connection(("127.0.0.1", proxy.https_port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def exchange(sock, method, path, headers=(), body=b""):
    sock.sendall(request_bytes(method, path, list(headers), body))
    return read_response(sock, method)


def audit(proxy):
    return [json.loads(line) for line in complete_lines(proxy.dir / "logs" / "audit.jsonl")]


def wait_events(proxy, kind, count=1, **fields):
    found = []

    def written():
        found[:] = [e for e in audit(proxy) if e["type"] == kind and all(e.get(k) == v for k, v in fields.items())]
        return len(found) >= count
    wait_for(written, timeout=15, what=f"{count} {kind} event(s) with {fields}")
    return found


def refused_at_handshake(proxy, cert):
    """True when the server refuses the handshake (TLS 1.3 reports it at the first read)."""
    try:
        sock = connect(proxy, cert)
    except (ssl.SSLError, ConnectionError):
        return True
    try:
        sock.sendall(request_bytes("GET", "/app"))
        return is_closed(sock)
    except (ssl.SSLError, ConnectionError):
        return True
    finally:
        sock.close()


# ---- fixtures ------------------------------------------------------------------------------

@pytest.fixture
def site(make_proxy, upstream, tmp_path):
    """A proxy with password, token and mtls sign-in; returns a factory of (proxy, upstream, ca)."""
    ca = Authority(tmp_path, "acme")

    def make(username_from="san_email_local", methods=("password", "token", "mtls"), store_url=None, **extra):
        if store_url:
            extra["store.url"] = store_url
        proxy = make_proxy({"listen.client_ca": str(ca.path), "auth.methods": list(methods),
                            "auth.mtls.username_from": username_from, "auth.public_paths": ["/static/*"], **extra})
        import_users(proxy, USERS)
        return proxy, upstream, ca
    return make


# ---- signing in ----------------------------------------------------------------------------

@pytest.fixture
def pg_url(request, store):
    """The PostgreSQL database for `store == "postgres"`. Listed before `site` in a test's
    arguments, so the proxies stop before the database is dropped (teardown is in reverse)."""
    return request.getfixturevalue("pg_database") if store == "postgres" else None


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_certificate_signs_in_and_the_request_goes_on_as_that_user(pg_url, site, store):
    proxy, upstream, ca = site(store_url=pg_url)
    cert = ca.issue("alice", cn="Alice Andersen", emails=["alice@example.com"])
    with connect(proxy, cert) as sock:
        first = exchange(sock, "GET", "/app/report?x=1", [("Accept", "application/json")])
        assert first.status == 200, first
        record = upstream.requests()[-1]
        assert record["target"] == "/app/report?x=1"
        assert header_values(record, "X-Forwarded-User") == ["alice"]
        assert header_values(record, "X-Forwarded-Email") == ["alice@example.com"]
        assert header_values(record, "Cookie") == []
        cookie, attributes = set_cookies(first)["__Host-actas_session"]
        for attribute in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax"):
            assert attribute in attributes
        assert "Domain" not in attributes
        # Later requests on the connection reuse that session: no second sign-in.
        second = exchange(sock, "GET", "/app/second")
        assert second.status == 200, second
        assert "__Host-actas_session" not in set_cookies(second)
        assert header_values(upstream.requests()[-1], "X-Forwarded-User") == ["alice"]
    # The cookie is an ordinary session: it works on a connection without a certificate.
    with connect(proxy) as sock:
        shown = exchange(sock, "GET", "/.actas/api/v1/me", [session_header(cookie)])
        assert shown.status == 200, shown
        assert json.loads(shown.body)["user"]["username"] == "alice"
    logins = wait_events(proxy, "login", user="alice")
    assert len(logins) == 1, logins
    assert logins[0]["method"] == "mtls"
    assert logins[0]["auth_method"] == "mtls"
    assert logins[0]["cert_sha256"] == cert[2]


def test_later_connections_with_the_certificate_reuse_its_session(site):
    """A script with `curl --cert` keeps no cookies: one sign-in, not one per connection."""
    proxy, upstream, ca = site()
    cert = ca.issue("alice-script", emails=["alice@example.com"])
    cookies = []
    for _ in range(3):
        with connect(proxy, cert) as sock:
            response = exchange(sock, "GET", "/app/script")
            assert response.status == 200, response
            cookies.append(set_cookies(response)["__Host-actas_session"][0])
    assert len(set(cookies)) == 1
    assert [header_values(r, "X-Forwarded-User") for r in upstream.requests()] == [["alice"]] * 3
    # Another certificate of the same user is another sign-in.
    laptop = ca.issue("alice-laptop", emails=["alice@example.com"])
    with connect(proxy, laptop) as sock:
        other = exchange(sock, "GET", "/app/laptop")
        assert set_cookies(other)["__Host-actas_session"][0] != cookies[0]
    logins = wait_events(proxy, "login", count=2, user="alice")
    assert sorted(e["cert_sha256"] for e in logins) == sorted([cert[2], laptop[2]])


def test_parallel_first_connections_with_one_certificate_share_one_sign_in(site):
    """A browser opens several connections at once on its first page: the ones that arrive
    while the certificate's sign-in runs wait for it instead of each signing in."""
    proxy, upstream, ca = site()
    cert = ca.issue("alice-browser", emails=["alice@example.com"])
    barrier = threading.Barrier(6)
    responses = [None] * 6

    def first_request(n):
        with connect(proxy, cert) as sock:
            barrier.wait(timeout=10)
            responses[n] = exchange(sock, "GET", f"/app/parallel-{n}")

    threads = [threading.Thread(target=first_request, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [r.status for r in responses] == [200] * 6, responses
    assert len({set_cookies(r)["__Host-actas_session"][0] for r in responses}) == 1
    wait_events(proxy, "request", count=6)
    assert len(wait_events(proxy, "login", user="alice")) == 1


def test_request_with_a_body_is_forwarded_whole_after_sign_in(site):
    proxy, upstream, ca = site()
    cert = ca.issue("alice-post", emails=["alice@example.com"])
    with connect(proxy, cert) as sock:
        response = exchange(sock, "POST", "/app/form", [("Content-Type", "text/plain")], b"hello " * 1000)
        assert response.status == 200, response
    record = upstream.requests()[-1]
    assert record["method"] == "POST"
    assert header_values(record, "X-Forwarded-User") == ["alice"]
    assert header_values(record, "Content-Length") == ["6000"]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize("username, reason", [("nobody", "unknown_user"), ("sus", "user_suspended"), ("gone", "user_suspended")])
def test_unknown_suspended_or_deleted_user_gets_403_and_nothing_goes_upstream(pg_url, site, store, username, reason):
    proxy, upstream, ca = site(store_url=pg_url)
    run(["users", "suspend", "sus", "--config", str(proxy.config_path)])
    run(["users", "delete", "gone", "--config", str(proxy.config_path)])
    cert = ca.issue(username, emails=[f"{username}@example.com"])
    before = len(upstream.requests())
    with connect(proxy, cert) as sock:
        response = exchange(sock, "GET", "/app", [("Accept", "application/json")])
        assert response.status == 403, response
        assert json.loads(response.body)["error"] == reason
        assert "__Host-actas_session" not in set_cookies(response)
    with connect(proxy, cert) as sock:
        page = exchange(sock, "GET", "/.actas/", [("Accept", "text/html")])
        assert page.status == 403, page
    assert len(upstream.requests()) == before
    failed = wait_events(proxy, "login_failed", count=2, target=username)  # one per connection
    assert failed[0]["reason"] == reason
    assert failed[0]["auth_method"] == "mtls"
    assert failed[0]["cert_sha256"] == cert[2]
    assert not [e for e in audit(proxy) if e["type"] == "login"]
    # SPEC §8, every request: both refused requests have their request record, with no user.
    refused = wait_events(proxy, "request", count=2, status=403)
    assert sorted(r["path"] for r in refused) == ["/.actas/", "/app"]
    assert {f["request_id"] for f in failed} == {r["request_id"] for r in refused}
    assert not any(r.get("user") for r in refused)


def test_certificate_without_a_usable_name_gets_403(site):
    proxy, upstream, ca = site("san_email_local")
    cert = ca.issue("no-san", cn="alice")
    with connect(proxy, cert) as sock:
        response = exchange(sock, "GET", "/app", [("Accept", "application/json")])
        assert response.status == 403, response
        assert json.loads(response.body)["error"] == "no_username"
    assert upstream.requests() == []


def test_certificate_from_another_ca_or_expired_fails_the_handshake(site, tmp_path):
    proxy, upstream, ca = site()
    other = Authority(tmp_path, "other")
    assert refused_at_handshake(proxy, other.issue("alice", emails=["alice@example.com"]))
    assert refused_at_handshake(proxy, ca.issue("expired", emails=["alice@example.com"], expired=True))
    assert upstream.requests() == []
    assert not [e for e in audit(proxy) if e["type"] == "login"]


def test_without_a_certificate_password_sign_in_still_works(site):
    proxy, upstream, ca = site()
    with connect(proxy) as sock:
        redirect = exchange(sock, "GET", "/app", [("Accept", "text/html")])
        assert redirect.status == 302, redirect
        assert redirect.header("location").startswith("/.actas/login?rd=")
    cookie = login(proxy, "bob")
    with connect(proxy) as sock:
        response = exchange(sock, "GET", "/app", [session_header(cookie)])
        assert response.status == 200, response
    assert header_values(upstream.requests()[-1], "X-Forwarded-User") == ["bob"]


def test_mtls_as_the_only_method_still_answers_a_client_without_a_certificate(site):
    """SPEC §10: §4–§9 hold for every sign-in method. Without a certificate the client still
    gets HTTP: public paths, the JWKS, and §4's 401 for scripts; a certificate it presents must
    verify (test_certificate_from_another_ca_or_expired_fails_the_handshake)."""
    proxy, upstream, ca = site(methods=("mtls",))
    assert not refused_at_handshake(proxy, None)
    with connect(proxy, None) as sock:
        refused = exchange(sock, "GET", "/app", [("Accept", "application/json")])
        assert refused.status == 401, refused
    with connect(proxy, None) as sock:
        public = exchange(sock, "GET", "/static/app.css")
        assert public.status == 200, public
    with connect(proxy, None) as sock:
        assert exchange(sock, "GET", "/.well-known/actas/jwks.json").status == 200
    assert not [r for r in upstream.requests() if r["target"] == "/app"]
    with connect(proxy, ca.issue("alice", emails=["alice@example.com"])) as sock:
        response = exchange(sock, "GET", "/app")
        assert response.status == 200, response
    assert header_values(upstream.requests()[-1], "X-Forwarded-User") == ["alice"]


@pytest.mark.parametrize("mode, names, username", [
    ("cn", {"cn": "Carol.Smith", "emails": ["someone@example.com"]}, "Carol.Smith"),
    ("san_email", {"cn": "bob", "emails": ["Alice@Example.COM", "bob@example.com"]}, "alice@example.com"),
    ("san_email_local", {"cn": "bob", "dns": ["bob.example.com"], "emails": ["ALICE@example.com"]}, "alice"),
    ("san_dns", {"cn": "bob", "emails": ["bob@example.com"], "dns": ["Alice.Devices.Example.com"]}, "alice.devices.example.com"),
])
def test_each_username_from_mode(site, mode, names, username):
    proxy, upstream, ca = site(mode)
    with connect(proxy, ca.issue(mode, **names)) as sock:
        response = exchange(sock, "GET", "/app")
        assert response.status == 200, response
    assert header_values(upstream.requests()[-1], "X-Forwarded-User") == [username]


def test_a_session_cookie_of_another_user_does_not_override_the_certificate(site):
    proxy, upstream, ca = site()
    bob = login(proxy, "bob")
    cert = ca.issue("alice-cookie", emails=["alice@example.com"])
    with connect(proxy, cert) as sock:
        first = exchange(sock, "GET", "/app/one", [session_header(bob)])
        assert first.status == 200, first
        assert header_values(upstream.requests()[-1], "X-Forwarded-User") == ["alice"]
        assert "__Host-actas_session" in set_cookies(first)
        later = exchange(sock, "GET", "/app/two", [session_header(bob)])
        assert later.status == 200, later
        assert header_values(upstream.requests()[-1], "X-Forwarded-User") == ["alice"]
    # A cookie of the certificate's own user is simply used: no second sign-in.
    alice = login(proxy, "alice")
    with connect(proxy, cert) as sock:
        response = exchange(sock, "GET", "/app/three", [session_header(alice)])
        assert response.status == 200, response
        assert "__Host-actas_session" not in set_cookies(response)
    assert len(wait_events(proxy, "login", user="alice", method="mtls")) == 1


def test_sign_out_on_a_certificate_connection_is_not_a_loop(site):
    proxy, upstream, ca = site()
    cert = ca.issue("alice-out", emails=["alice@example.com"])
    with connect(proxy, cert) as sock:
        shown = exchange(sock, "GET", "/.actas/api/v1/me")
        assert shown.status == 200, shown
        csrf = json.loads(shown.body)["csrf_token"]
        out = exchange(sock, "POST", "/.actas/logout", [("X-CSRF-Token", csrf), ("Origin", ORIGIN), ("Accept", "text/html")])
        assert out.status == 303, out
        # The connection's session is gone: the login page, not a new sign-in per request.
        after = exchange(sock, "GET", "/app", [("Accept", "text/html")])
        assert after.status == 302, after
        assert after.header("location").startswith("/.actas/login")
        page = exchange(sock, "GET", after.header("location"), [("Accept", "text/html")])
        assert page.status == 200, page
    assert len(wait_events(proxy, "login", user="alice")) == 1
    # A new connection presents the certificate again: a new sign-in.
    with connect(proxy, cert) as sock:
        assert exchange(sock, "GET", "/app").status == 200
    assert len(wait_events(proxy, "login", count=2, user="alice")) == 2


def test_impersonation_started_from_a_certificate_session_follows_the_rules(site):
    proxy, upstream, ca = site()
    run(["consent", "grant", "emp", "--hours", "24", "--config", str(proxy.config_path)])
    cert = ca.issue("admin", emails=["admin@example.com"])

    with connect(proxy, cert) as sock:
        shown = exchange(sock, "GET", "/.actas/api/v1/me")
        assert shown.status == 200, shown
        csrf = json.loads(shown.body)["csrf_token"]
        cookie = set_cookies(shown)["__Host-actas_session"][0]

        def start():
            body = json.dumps({"target": "emp", "reason": REASON}).encode()
            return exchange(sock, "POST", "/.actas/api/v1/impersonation", [
                ("X-CSRF-Token", csrf), ("Origin", ORIGIN), ("Content-Type", "application/json"), ("Accept", "application/json")], body)
        started = []
        # The CLI's consent reaches the running server through the store's change feed.
        wait_for(lambda: started.append(start()) or started[-1].status == 201, what="impersonation to start")
        forwarded = exchange(sock, "GET", "/app/page", [("Accept", "application/json")])
        assert forwarded.status == 200, forwarded
        record = upstream.requests()[-1]
        assert header_values(record, "X-Forwarded-User") == ["emp"]
        hidden = exchange(sock, "GET", "/private/notes", [("Accept", "application/json")])
        assert hidden.status == 403, hidden
        assert json.loads(hidden.body)["error"] == "hidden_path"
    # The impersonation belongs to the sign-in session: its cookie carries it elsewhere too.
    assert me(proxy, cookie)["impersonation"]["target"]["username"] == "emp"
    # A new connection with the same certificate but no cookie (a script; a cross-site POST
    # sent without the SameSite cookie) goes on as the administrator, never as the target.
    with connect(proxy, cert) as sock:
        plain = exchange(sock, "GET", "/app/script", [("Accept", "application/json")])
        assert plain.status == 200, plain
        assert set_cookies(plain)["__Host-actas_session"][0] != cookie
    assert header_values(upstream.requests()[-1], "X-Forwarded-User") == ["admin"]
    assert me(proxy, cookie)["impersonation"]["target"]["username"] == "emp"
    wait_for(lambda: [e for e in audit(proxy) if e["type"] == "request" and e.get("path") == "/app/page"], what="request record")
    logged = [e for e in audit(proxy) if e["type"] == "request" and e.get("path") == "/app/page"]
    assert logged[-1]["user"] == "emp" and logged[-1]["impersonator"] == "admin"


def test_check_reports_mtls_and_refuses_a_bad_ca_file(make_proxy, tmp_path):
    ca = Authority(tmp_path, "check")
    proxy = make_proxy({"listen.client_ca": str(ca.path), "auth.methods": ["password", "mtls"]}, start=False)
    assert run(["check", "--config", str(proxy.config_path)]).returncode == 0
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("this is not PEM\n")
    proxy.write_config({"listen.client_ca": str(bad), "auth.methods": ["password", "mtls"]})
    failed = run(["check", "--config", str(proxy.config_path)], check=False)
    assert failed.returncode == 2, failed
    text = failed.stdout + failed.stderr
    assert "listen.client_ca" in text and str(bad) in text
    proxy.write_config({"auth.methods": ["password", "mtls"]})
    failed = run(["check", "--config", str(proxy.config_path)], check=False)
    assert failed.returncode == 2 and "listen.client_ca" in failed.stdout + failed.stderr
