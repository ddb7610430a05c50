"""HTTP/2 attacks and limits (SPEC §10.4, §9, §3 limits): malformed requests (RFC 9113 §8.2)
are stream errors that reach nothing upstream and leave the connection serving; more streams
than `limits.h2_max_concurrent_streams` are refused; rapid reset (CVE-2023-44487) and
CONTINUATION floods (CVE-2024-27316) end the connection with GOAWAY while the process serves
everyone else; header lists over `limits.max_header_bytes` get 431."""
import pytest

from conftest import Proxy, Upstream, admin_get, header_values
from h2_frames import (
    CANCEL, ERROR_NAMES, PROTOCOL_ERROR, REFUSED_STREAM, ConnectionEnded, H2, RstStreamFrame, SettingsFrame, fields,
)
from hyperframe.frame import ContinuationFrame, HeadersFrame


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One proxy for the stream-level cases (each test counts only its own marked requests)."""
    tmp = tmp_path_factory.mktemp("http2-attacks")
    upstream = Upstream(tmp)
    (tmp / "proxy").mkdir()
    proxy = Proxy(tmp / "proxy", upstream.port)
    yield proxy, upstream
    proxy.stop()
    upstream.stop()


def marked(upstream, case):
    """What reached the upstream of a case's request: by its x-case field, or its path /m-CASE."""
    return [r for r in upstream.requests() if header_values(r, "x-case") == [case] or f"m-{case}" in r["target"]]


def reached(upstream, target):
    return [r for r in upstream.requests() if r["target"] == target]


def served(proxy, upstream, path):
    """A fresh connection gets a normal answer, and the request reaches the upstream."""
    with H2(proxy) as connection:
        stream = connection.exchange(fields(path))
        assert stream.status == 200, connection.summary()
    assert len(reached(upstream, path)) == 1


def alive(proxy):
    assert proxy.process.poll() is None, "the proxy exited"
    assert admin_get(proxy.admin_port, "/healthz")[0] == 200


# ---- RFC 9113 §8.2: malformed requests ------------------------------------------------------------

def request(case, path=None, method="GET", drop=(), extra=(), pseudo_after=()):
    """A request marked with x-case; `drop` removes pseudo-header fields, `extra` adds fields
    after the pseudo-header fields, `pseudo_after` adds pseudo-header fields after a regular one."""
    base = [(k, v) for k, v in fields(path if path is not None else f"/m-{case}", method) if k not in drop]
    return base + list(extra) + [("x-case", case)] + list(pseudo_after)


MALFORMED = {
    # connection-specific fields (§8.2.2)
    "connection": request("connection", extra=[("connection", "keep-alive")]),
    "keep-alive": request("keep-alive", extra=[("keep-alive", "timeout=5")]),
    "transfer-encoding": request("transfer-encoding", extra=[("transfer-encoding", "chunked")]),
    "upgrade": request("upgrade", extra=[("upgrade", "websocket")]),
    "proxy-connection": request("proxy-connection", extra=[("proxy-connection", "keep-alive")]),
    "te-gzip": request("te-gzip", extra=[("te", "gzip")]),
    "te-trailers-and-gzip": request("te-trailers-and-gzip", extra=[("te", "trailers, gzip")]),
    # field names and values (§8.2.1)
    "upper-case-name": request("upper-case-name", extra=[("X-Upper", "1")]),
    "upper-case-identity-name": request("upper-case-identity-name", extra=[("X-Forwarded-User", "mallory")]),
    "cr-in-name": request("cr-in-name", extra=[("x-a\rb", "1")]),
    "lf-in-name": request("lf-in-name", extra=[("x-a\nb", "1")]),
    "nul-in-name": request("nul-in-name", extra=[("x-a\x00b", "1")]),
    "space-in-name": request("space-in-name", extra=[("x-a b", "1")]),
    "colon-in-name": request("colon-in-name", extra=[("x-a:b", "1")]),
    "cr-in-value": request("cr-in-value", extra=[("x-v", "a\rb")]),
    "lf-in-value": request("lf-in-value", extra=[("x-v", "a\nx-forwarded-user: mallory")]),
    "nul-in-value": request("nul-in-value", extra=[("x-v", "a\x00b")]),
    "leading-space-in-value": request("leading-space-in-value", extra=[("x-v", " a")]),
    "trailing-space-in-value": request("trailing-space-in-value", extra=[("x-v", "a ")]),
    "trailing-tab-in-value": request("trailing-tab-in-value", extra=[("x-v", "a\t")]),
    # pseudo-header fields (§8.3)
    "no-method": request("no-method", drop=[":method"]),
    "no-scheme": request("no-scheme", drop=[":scheme"]),
    "no-path": request("no-path", drop=[":path"]),
    "two-methods": request("two-methods", extra=[(":method", "POST")]),
    "two-paths": request("two-paths", extra=[(":path", "/m-two-paths-again")]),
    "pseudo-after-regular": request("pseudo-after-regular", drop=[":path"], pseudo_after=[(":path", "/m-pseudo-after-regular")]),
    "unknown-pseudo": request("unknown-pseudo", extra=[(":foo", "bar")]),
    "response-pseudo": request("response-pseudo", extra=[(":status", "200")]),
    "extended-connect": [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":authority", "localhost"),
                         (":path", "/m-extended-connect"), ("x-case", "extended-connect")],
    # :path (§8.3.1)
    "relative-path": request("relative-path", path="m-relative-path"),
    "empty-path": request("empty-path", path=""),
    "asterisk-path-for-get": request("asterisk-path-for-get", path="*"),
    "absolute-form-path": request("absolute-form-path", path="https://localhost/m-absolute-form-path"),
    # :authority and Host that name different hosts (§8.3.1)
    "authority-host-differ": request("authority-host-differ", extra=[("host", "other.example")]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_request_is_a_stream_error_and_reaches_nothing(shared, case):
    proxy, upstream = shared
    with H2(proxy) as connection:
        stream = connection.wait(connection.headers(MALFORMED[case]))
        assert stream.reset == PROTOCOL_ERROR, f"{case}: {connection.summary()}"
        # The same connection (and its header compression state) serves the next stream.
        after = connection.exchange(fields(f"/after-{case}", extra=[("x-after", case)]))
        assert after.status == 200, f"{case}: {connection.summary()}"
        assert connection.goaway is None, connection.summary()
    assert marked(upstream, case) == []
    assert len(reached(upstream, f"/after-{case}")) == 1


def test_allowed_fields_are_not_refused(shared):
    """The controls: `te: trailers`, a host equal to :authority, OPTIONS *."""
    proxy, upstream = shared
    with H2(proxy) as connection:
        te = connection.exchange(fields("/allowed-te", extra=[("te", "trailers")]))
        host = connection.exchange(fields("/allowed-host", extra=[("host", "localhost")]))
        assert te.status == 200 and host.status == 200, connection.summary()
        options = connection.exchange(fields("*", "OPTIONS"))
        assert options.reset is None and options.status < 500, connection.summary()
    assert len(reached(upstream, "/allowed-te")) == 1 and len(reached(upstream, "/allowed-host")) == 1


# Requests HTTP/2 can carry but HTTP/1.1 cannot write: forwarded as they are, they would split
# or rewrite the request line or Host the application reads (h2 to HTTP/1.1 downgrade smuggling).
DOWNGRADE = {
    "space-in-method": request("space-in-method", method="GET /m-space-in-method-smuggled"),
    "method-not-a-token": request("method-not-a-token", method="G(T"),
    "space-in-path": request("space-in-path", path="/m-space-in-path HTTP/1.1"),
    "tab-in-path": request("tab-in-path", path="/m-tab-in-path\tx"),
    "userinfo-in-authority": [(k, "mallory@localhost" if k == ":authority" else v) for k, v in request("userinfo-in-authority")],
    "slash-in-authority": [(k, "localhost/m-evil" if k == ":authority" else v) for k, v in request("slash-in-authority")],
    "space-in-authority": [(k, "localhost evil" if k == ":authority" else v) for k, v in request("space-in-authority")],
}


@pytest.mark.parametrize("case", list(DOWNGRADE))
def test_requests_http1_cannot_write_are_refused(shared, case):
    """A stream error or a 4xx, nothing upstream, and the connection serves the next stream."""
    proxy, upstream = shared
    with H2(proxy) as connection:
        stream = connection.wait(connection.headers(DOWNGRADE[case]))
        assert stream.reset is not None or 400 <= stream.status < 500, f"{case}: {stream.status} {connection.summary()}"
        after = connection.exchange(fields(f"/after-{case}"))
        assert after.status == 200 and connection.goaway is None, f"{case}: {connection.summary()}"
    assert marked(upstream, case) == []
    assert len(reached(upstream, f"/after-{case}")) == 1


CONTENT_LENGTH = {
    # case: (declared, DATA frames)
    "more-data-than-declared": (3, [b"abcdef"]),
    "more-data-across-frames": (4, [b"abc", b"de"]),
    "less-data-then-end": (10, [b"abc"]),
    "declared-without-data": (5, []),
}


@pytest.mark.parametrize("case", list(CONTENT_LENGTH))
def test_content_length_that_does_not_match_the_data_is_a_stream_error(shared, case):
    proxy, upstream = shared
    declared, frames = CONTENT_LENGTH[case]
    with H2(proxy) as connection:
        stream_id = connection.headers(request(case, method="POST", extra=[("content-length", str(declared))]),
                                       end_stream=not frames)
        for i, payload in enumerate(frames):
            if connection.stream(stream_id).done():
                break
            connection.data(stream_id, payload, end_stream=i == len(frames) - 1)
        stream = connection.wait(stream_id)
        assert stream.reset == PROTOCOL_ERROR, f"{case}: {connection.summary()}"
        after = connection.exchange(fields(f"/after-{case}"))
        assert after.status == 200 and connection.goaway is None, connection.summary()
    assert marked(upstream, case) == []
    assert len(reached(upstream, f"/after-{case}")) == 1


# ---- SETTINGS_MAX_CONCURRENT_STREAMS ---------------------------------------------------------------

@pytest.mark.parametrize("configured", [None, 5], ids=["default", "five"])
def test_streams_beyond_the_limit_are_refused_and_the_first_complete(make_proxy, upstream, configured):
    proxy = make_proxy({} if configured is None else {"limits.h2_max_concurrent_streams": configured})
    limit = configured or 100
    with H2(proxy) as connection:
        assert connection.settings.get(SettingsFrame.MAX_CONCURRENT_STREAMS) == limit, connection.summary()
        # No RFC 8441 extended CONNECT: WebSockets stay on HTTP/1.1.
        assert connection.settings.get(SettingsFrame.ENABLE_CONNECT_PROTOCOL, 0) == 0
        # Requests whose bodies have not come yet keep their streams open.
        held = [connection.headers(fields(f"/held-{i}", "POST", extra=[("content-length", "4")]), end_stream=False)
                for i in range(limit)]
        extra = connection.headers(fields("/beyond-the-limit"))
        assert connection.wait(extra).reset == REFUSED_STREAM, connection.summary()
        for stream_id in held:
            connection.data(stream_id, b"done")
        for stream_id in held:
            assert connection.wait(stream_id).status == 200, connection.summary()
        # The connection goes on once streams have closed.
        assert connection.exchange(fields("/after-the-limit")).status == 200, connection.summary()
        assert connection.goaway is None, connection.summary()
    targets = [r["target"] for r in upstream.requests()]
    assert sorted(t for t in targets if t.startswith("/held-")) == sorted(f"/held-{i}" for i in range(limit))
    assert all(r["body_len"] == 4 for r in upstream.requests() if r["target"].startswith("/held-"))
    assert "/beyond-the-limit" not in targets and "/after-the-limit" in targets


# ---- floods: the connection ends with GOAWAY, the process serves the others ---------------------------

def test_rapid_reset_ends_the_connection_with_goaway(make_proxy, upstream, capsys):
    proxy = make_proxy()
    bystander = H2(proxy)
    attacker = H2(proxy)
    opened = 0
    while attacker.goaway is None and not attacker.closed and not attacker.tls.write_closed and opened < 20000:
        burst = b""
        for _ in range(100):
            stream_id = attacker.new_stream_id()
            burst += attacker.header_frames(stream_id, attacker.encoder.encode(fields("/rapid-reset")), end_stream=True)
            burst += RstStreamFrame(stream_id, error_code=CANCEL).serialize()
        try:
            attacker.send(burst)
        except TimeoutError:
            break
        opened += 100
        attacker.poll()
    if attacker.goaway is None and not attacker.closed:
        try:
            attacker.read_until(lambda: attacker.goaway is not None)
        except (ConnectionEnded, TimeoutError):
            pass
    assert attacker.goaway is not None, f"after {opened} streams opened and reset: {attacker.summary()}"
    with capsys.disabled():
        print(f"\nrapid reset: GOAWAY {ERROR_NAMES.get(attacker.goaway[1])} after {opened} streams;"
              f" {len(reached(upstream, '/rapid-reset'))} reached the upstream")
    attacker.close()
    alive(proxy)
    # A connection opened before the attack, and a new one, are both served.
    assert bystander.exchange(fields("/bystander")).status == 200, bystander.summary()
    bystander.close()
    served(proxy, upstream, "/after-rapid-reset")


FLOOD_CAP = 64 << 20  # bytes of header block the attacker sends at most before the test calls it a failure


@pytest.mark.parametrize("size", [1, 16384], ids=["one-byte-frames", "full-frames"])
def test_continuation_flood_ends_the_connection_with_goaway(make_proxy, upstream, capsys, size):
    proxy = make_proxy()
    bystander = H2(proxy)
    served(proxy, upstream, "/before-flood")
    rss_before = proxy.rss_kb()
    attacker = H2(proxy)
    stream_id = attacker.new_stream_id()
    # A header block that never ends: after real pseudo-header fields, a literal field whose
    # value is announced as 1 GiB long (RFC 7541 §5.1 integer), then CONTINUATION after CONTINUATION.
    block = attacker.encoder.encode(fields("/continuation-flood")) + b"\x00\x07x-flood\x7f" + bytes([0x81, 0x80, 0x80, 0x80, 0x04])
    first = HeadersFrame(stream_id, block)
    first.flags.add("END_STREAM")
    frame = ContinuationFrame(stream_id, b"a" * size).serialize()
    burst = frame * max(1, (256 << 10) // len(frame))
    sent = 0
    try:
        attacker.send(first.serialize())
        while attacker.goaway is None and not attacker.closed and not attacker.tls.write_closed and sent < FLOOD_CAP:
            attacker.send(burst)
            sent += (len(burst) // len(frame)) * size
            attacker.poll()
    except TimeoutError:
        pass  # the server stopped reading; what it said is below
    if attacker.goaway is None and not attacker.closed:
        try:
            attacker.read_until(lambda: attacker.goaway is not None)
        except (ConnectionEnded, TimeoutError):
            pass
    rss_after = proxy.rss_kb()
    assert sent < FLOOD_CAP, f"the server took {sent} bytes of one header block: {attacker.summary()}"
    assert attacker.goaway is not None, f"no GOAWAY after {sent} bytes of CONTINUATION: {attacker.summary()}"
    with capsys.disabled():
        print(f"\nCONTINUATION flood ({size}-byte frames): GOAWAY {ERROR_NAMES.get(attacker.goaway[1])} after {sent} bytes;"
              f" RSS {rss_before} -> {rss_after} kB")
    attacker.close()
    assert rss_after - rss_before < 100 * 1024, (rss_before, rss_after)
    alive(proxy)
    assert reached(upstream, "/continuation-flood") == []
    assert bystander.exchange(fields("/bystander")).status == 200, bystander.summary()
    bystander.close()
    served(proxy, upstream, "/after-flood")


# ---- header list size (limits.max_header_bytes, limits.max_headers) --------------------------------------

@pytest.mark.parametrize("case", ["just-over-max-header-bytes", "over-max-headers"])
def test_header_list_over_the_limit_gets_431_on_its_stream(shared, case):
    proxy, upstream = shared
    big = {"just-over-max-header-bytes": [("x-big", "b" * (33 * 1024))],
           "over-max-headers": [(f"x-field-{i}", "1") for i in range(150)]}[case]
    with H2(proxy) as connection:
        stream = connection.exchange(request(case, extra=big))
        assert stream.status == 431, connection.summary()
        assert connection.exchange(fields(f"/after-{case}")).status == 200, connection.summary()
    assert marked(upstream, case) == []
    assert len(reached(upstream, f"/after-{case}")) == 1


def test_a_far_larger_header_list_is_refused_and_the_process_lives(shared, capsys):
    proxy, upstream = shared
    case = "ten-times-max-header-bytes"
    with H2(proxy) as connection:
        stream_id = connection.headers(request(case, extra=[(f"x-big-{i}", "b" * 8000) for i in range(40)]))
        try:
            stream = connection.wait(stream_id)
            outcome = f"status {stream.status}" if stream.reset is None else f"RST_STREAM {ERROR_NAMES.get(stream.reset)}"
        except ConnectionEnded:
            stream = None
            outcome = "connection closed"
        if connection.goaway is not None:
            outcome += f", GOAWAY {ERROR_NAMES.get(connection.goaway[1])}"
        assert stream is None or stream.reset is not None or stream.status == 431, connection.summary()
    with capsys.disabled():
        print(f"\n320 KB header list: {outcome}")
    alive(proxy)
    assert marked(upstream, case) == []
    served(proxy, upstream, f"/after-{case}")
