"""Client-certificate sign-in over HTTP/2 (SPEC §10.3 with §10.4: ALPN offers h2 on an mTLS
listener too, and each stream signs in as a connection's first HTTP/1.1 request does)."""
import subprocess

from conftest import header_values
from h2_frames import H2, fields
from test_mtls import Authority, USERS, audit, site, wait_events  # noqa: F401 (site is a fixture)


def cookies_of(stream):
    return [v for k, v in stream.headers if k == "set-cookie"]


def test_a_certificate_signs_in_over_h2_and_every_stream_is_that_user(site):
    proxy, upstream, ca = site()
    cert = ca.issue("alice", cn="Alice Andersen", emails=["alice@example.com"])
    with H2(proxy, cert=cert) as conn:
        first = conn.exchange(fields("/app/report?x=1", extra=[("accept", "application/json")]))
        assert first.status == 200, conn.summary()
        assert any(c.startswith("__Host-actas_session=") for c in cookies_of(first))
        second = conn.exchange(fields("/app/second"))
        assert second.status == 200, conn.summary()
    records = upstream.requests()
    assert [r["target"] for r in records] == ["/app/report?x=1", "/app/second"]
    for record in records:
        assert header_values(record, "X-Forwarded-User") == ["alice"]
        assert header_values(record, "Cookie") == []
    logins = wait_events(proxy, "login", user="alice")
    assert len(logins) == 1 and logins[0]["auth_method"] == "mtls", logins
    requests = wait_events(proxy, "request", count=2)
    assert {r["proto"] for r in requests} == {"h2"} and {r["user"] for r in requests} == {"alice"}


def test_an_unknown_certificate_user_gets_403_on_its_stream_and_nothing_upstream(site):
    proxy, upstream, ca = site()
    cert = ca.issue("mallory", cn="Mallory", emails=["mallory@example.com"])
    with H2(proxy, cert=cert) as conn:
        stream = conn.exchange(fields("/app/secret", extra=[("accept", "application/json")]))
        assert stream.status == 403, conn.summary()
        assert b"unknown_user" in bytes(stream.data)
    assert upstream.requests() == []
    failed = wait_events(proxy, "login_failed", reason="unknown_user")
    assert failed[0]["cert_sha256"] == cert[2]


def test_curl_with_a_certificate_uses_h2(site):
    proxy, upstream, ca = site()
    cert = ca.issue("bob", cn="Bob", emails=["bob@example.com"])
    result = subprocess.run(
        ["curl", "-s", "--http2", "--cacert", str(proxy.ca), "--cert", str(cert[0]), "--key", str(cert[1]),
         "-o", "/dev/null", "-w", "%{http_version} %{http_code}", f"https://localhost:{proxy.https_port}/app/curl"],
        capture_output=True, text=True, timeout=30)
    assert result.stdout == "2 200", (result.stdout, result.stderr)
    assert header_values(upstream.requests()[-1], "X-Forwarded-User") == ["bob"]


def test_a_refused_certificate_ends_the_connection_with_goaway(site):
    proxy, upstream, ca = site()
    cert = ca.issue("nobody", cn="Nobody", emails=["nobody@example.com"])
    with H2(proxy, cert=cert) as conn:
        first = conn.exchange(fields("/app/one", extra=[("accept", "application/json")]))
        assert first.status == 403, conn.summary()
        conn.wait_for_end(timeout=10)
        assert conn.goaway is not None, conn.summary()
    assert upstream.requests() == []


def test_concurrent_first_streams_share_one_sign_in(site):
    """A browser's first page over h2 opens many streams at once before any cookie exists: one
    sign-in, one session, one `login` event for all of them."""
    proxy, upstream, ca = site()
    cert = ca.issue("alice", cn="Alice Andersen", emails=["alice@example.com"])
    with H2(proxy, cert=cert) as conn:
        ids = [conn.request(fields(f"/app/asset-{n}", extra=[("accept", "application/json")])) for n in range(8)]
        streams = [conn.wait(i) for i in ids]
    assert [s.status for s in streams] == [200] * 8, conn.summary()
    sessions = {c.split(";")[0] for s in streams for c in cookies_of(s) if c.startswith("__Host-actas_session=")}
    assert len(sessions) == 1, sessions
    assert {tuple(header_values(r, "X-Forwarded-User")) for r in upstream.requests()} == {("alice",)}
    wait_events(proxy, "request", count=8)
    assert len(wait_events(proxy, "login", user="alice")) == 1


def test_trailers_of_a_stream_that_signs_in_are_named_in_its_record(site):
    """The stream's request waits while its certificate signs in; the trailers it dropped
    meanwhile still reach its record."""
    proxy, upstream, ca = site()
    cert = ca.issue("alice", cn="Alice Andersen", emails=["alice@example.com"])
    with H2(proxy, cert=cert) as conn:
        stream = conn.exchange(fields("/app/upload", "POST", extra=[("content-length", "3"), ("accept", "application/json")]),
                               b"a=1", [("authorization", "Bearer stolen"), ("x-impersonator-user", "mallory")])
    assert stream.status == 200, conn.summary()
    [seen] = upstream.requests()
    assert header_values(seen, "X-Forwarded-User") == ["alice"] and seen["trailers"] == []
    [record] = wait_events(proxy, "request", path="/app/upload")
    assert record.get("detail") == "request trailers dropped: authorization, x-impersonator-user", record
    assert "stolen" not in str(record)
