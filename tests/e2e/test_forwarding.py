"""Forwarding over real TLS to the real recording upstream: headers, bodies, framing,
keep-alive, pipelining, upgrades, failures and timeouts."""
import base64
import socket
import threading
import time

import pytest

from conftest import free_port, get, is_closed, read_response

pytestmark = pytest.mark.protocols("http/1.1", "h2")


def header_map(record):
    result = {}
    for name, value in record["headers"]:
        result.setdefault(name.lower(), []).append(value)
    return result


def test_forwarding_headers_are_set_by_the_proxy(proxy, upstream):
    response = proxy.request(get("/hello", extra=(
        "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: evil\r\n"
        "X-Request-Id: client-chosen\r\nX_Forwarded_For: 7.7.7.7\r\nForwarded: for=8.8.8.8\r\nX-Real-IP: 9.9.9.9\r\n"
        "Accept: application/json\r\n")))
    assert response.status == 200
    [record] = upstream.requests()
    headers = header_map(record)
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-forwarded-proto"] == ["https"]
    assert headers["x-forwarded-host"] == ["localhost"]
    assert headers["x-request-id"] == [response.header("x-request-id")]
    assert "x_forwarded_for" not in headers
    assert "forwarded" not in headers and "x-real-ip" not in headers
    assert headers["host"] == ["localhost"]
    assert headers["accept"] == ["application/json"]
    assert len(response.header("x-request-id")) == 32
    assert response.header("strict-transport-security") == "max-age=31536000"


def test_request_ids_are_unique(proxy, upstream):
    ids = {proxy.request(get("/")).header("x-request-id") for _ in range(20)}
    assert len(ids) == 20


def test_trusted_proxy_appends_to_x_forwarded_for(make_proxy, upstream):
    proxy = make_proxy({"listen.trusted_proxies": ["127.0.0.0/8"]})
    proxy.request(get("/", extra="X-Forwarded-For: 203.0.113.9\r\n"))
    assert header_map(upstream.requests()[-1])["x-forwarded-for"] == ["203.0.113.9, 127.0.0.1"]


@pytest.mark.h1_only("Connection-nominated fields are HTTP/1.1's (HTTP/2 has no Connection)")
def test_hop_by_hop_and_nominated_headers_are_removed_both_ways(proxy, upstream):
    response = proxy.request(get("/hop", extra=(
        "Connection: keep-alive, X-Drop-Me, X-Forwarded-For\r\nX-Drop-Me: 1\r\nKeep-Alive: 300\r\n"
        "TE: trailers\r\nProxy-Authorization: Basic Zm9v\r\nUpgrade: h2c\r\nX-Keep: 1\r\n")))
    headers = header_map(upstream.requests()[-1])
    for name in ("connection", "x-drop-me", "keep-alive", "te", "proxy-authorization", "upgrade"):
        assert name not in headers, name
    assert headers["x-keep"] == ["1"]
    # Connection: X-Forwarded-For cannot remove the proxy's own header.
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert response.header("x-kept") == "yes"
    for name in ("x-secret-hop", "keep-alive", "proxy-authenticate", "upgrade"):
        assert response.header(name) is None, name


@pytest.mark.h1_only("raw HTTP/1.1 socket (framing, keep-alive, timeouts on the wire)")
def test_content_length_and_chunked_bodies_both_ways(proxy, upstream):
    body = bytes(range(256)) * 400
    with proxy.connect() as sock:
        sock.sendall(b"POST /cl HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        assert read_response(sock).status == 200
        sock.sendall(b"POST /te HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 9\r\n\r\n")
        assert read_response(sock).status == 200
        sock.sendall(get("/chunked"))
        chunked = read_response(sock)
    records = upstream.requests()
    assert base64.b64decode(records[0]["body_b64"]) == body
    assert base64.b64decode(records[1]["body_b64"]) == b"hello world"
    assert records[1]["trailers"] == []  # request trailers are dropped (SPEC §9); response trailers pass
    assert "content-length" not in header_map(records[1])
    assert chunked.header("transfer-encoding") == "chunked"
    assert chunked.body == b"first,second,third"
    assert chunked.trailers == [("X-Checksum", "42")]


@pytest.mark.h1_only("asserts HTTP/1.1 framing (Transfer-Encoding: chunked), which HTTP/2 does not have")
def test_response_until_close_becomes_chunked(proxy):
    response = proxy.request(get("/until-close"))
    assert response.status == 200
    assert response.header("transfer-encoding") == "chunked"
    assert response.body == b"until the end"


@pytest.mark.h1_only("raw HTTP/1.1 socket (framing, keep-alive, timeouts on the wire)")
def test_http10_client_gets_close_delimited_body(proxy):
    with proxy.connect() as sock:
        sock.sendall(b"GET /chunked HTTP/1.0\r\n\r\n")
        response = read_response(sock)
    assert response.header("transfer-encoding") is None
    assert response.body == b"first,second,third"


@pytest.mark.h1_only("raw HTTP/1.1 socket (framing, keep-alive, timeouts on the wire)")
def test_head_keeps_content_length_without_body(proxy):
    with proxy.connect() as sock:
        sock.sendall(b"HEAD /head HTTP/1.1\r\nHost: h\r\n\r\n")
        head = read_response(sock, method="HEAD")
        sock.sendall(get("/head"))
        full = read_response(sock)
    assert head.header("content-length") == "11"
    assert full.body == b"hello world"


def test_204_and_304(proxy):
    assert proxy.request(get("/status/204")).status == 204
    assert proxy.request(get("/status/304")).status == 304


@pytest.mark.h1_only("raw HTTP/1.1 socket (framing, keep-alive, timeouts on the wire)")
def test_expect_100_continue(proxy, upstream):
    with proxy.connect() as sock:
        sock.sendall(b"PUT /continue HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        sock.settimeout(5)
        interim = sock.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(b"hello")
        response = read_response(sock)
    assert response.status == 200
    assert base64.b64decode(upstream.requests()[-1]["body_b64"]) == b"hello"


def test_keep_alive_reuses_upstream_connections(make_proxy, upstream):
    proxy = make_proxy({"listen.threads": 1})  # one event loop, so one pool
    for _ in range(5):
        assert proxy.request(get("/")).status == 200
    connections = {r["conn"] for r in upstream.requests()}
    assert len(connections) == 1


@pytest.mark.h1_only("raw HTTP/1.1 socket (framing, keep-alive, timeouts on the wire)")
def test_connection_close_closes_client_connection(proxy):
    with proxy.connect() as sock:
        sock.sendall(get("/", extra="Connection: close\r\n"))
        response = read_response(sock)
        assert response.header("connection") == "close"
        assert is_closed(sock)


@pytest.mark.h1_only("raw HTTP/1.1 socket (framing, keep-alive, timeouts on the wire)")
def test_pipelined_requests_answered_in_order(proxy, upstream):
    with proxy.connect() as sock:
        sock.sendall(get("/slow?ms=300") + get("/one") + b"POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc" + get("/three"))
        responses = [read_response(sock) for _ in range(4)]
    assert [r.status for r in responses] == [200] * 4
    assert [r.body for r in responses[1:]] == [
        b'{"path": "/one", "method": "GET", "body_len": 0}',
        b'{"path": "/two", "method": "POST", "body_len": 3}',
        b'{"path": "/three", "method": "GET", "body_len": 0}',
    ]
    ids = [r.header("x-request-id") for r in responses]
    assert len(set(ids)) == 4
    assert [header_map(r)["x-request-id"][0] for r in upstream.requests()] == ids


@pytest.mark.h1_only("WebSocket upgrades stay on HTTP/1.1 (SPEC 10.4: no RFC 8441)")
def test_websocket_upgrade_is_tunnelled_after_101(proxy, upstream):
    with proxy.connect() as sock:
        sock.sendall(get("/ws", extra="Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"))
        response = read_response(sock)
        assert response.status == 101
        assert response.header("upgrade") == "websocket"
        sock.sendall(b"raw frame bytes")
        sock.settimeout(5)
        assert sock.recv(100) == b"raw frame bytes"
    headers = header_map(upstream.requests()[-1])
    assert headers["upgrade"] == ["websocket"]
    assert headers["connection"] == ["Upgrade"]


@pytest.mark.h1_only("WebSocket upgrades stay on HTTP/1.1 (SPEC 10.4: no RFC 8441)")
def test_upgrade_refused_by_upstream_closes_that_upstream_connection(proxy, upstream):
    with proxy.connect() as sock:
        sock.sendall(get("/no-upgrade", extra="Connection: Upgrade\r\nUpgrade: websocket\r\n"))
        assert read_response(sock).status == 200
        sock.sendall(get("/after"))
        assert read_response(sock).status == 200
    first, second = upstream.requests()
    assert first["conn"] != second["conn"]


@pytest.mark.h1_only("an h2c Upgrade is HTTP/1.1's (HTTP/2 has no Upgrade)")
def test_h2c_upgrade_is_not_forwarded(proxy, upstream):
    proxy.request(get("/", extra="Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"))
    headers = header_map(upstream.requests()[-1])
    assert "upgrade" not in headers and "http2-settings" not in headers


def test_upstream_down_gives_502_with_request_id(make_proxy, tmp_path):
    proxy = make_proxy({"upstream.url": f"http://127.0.0.1:{free_port()}"})
    response = proxy.request(get("/", extra="Accept: application/json\r\n"))
    assert response.status == 502
    assert response.header("x-request-id") in response.body.decode()
    html = proxy.request(get("/", extra="Accept: text/html\r\n"))
    assert html.status == 502
    assert html.header("content-type").startswith("text/html")


def test_slow_upstream_gives_504(make_proxy):
    proxy = make_proxy({"upstream.response_timeout": "1s"})
    started = time.time()
    response = proxy.request(get("/slow?ms=4000"))
    assert response.status == 504
    assert b"upstream_timeout" in response.body
    assert time.time() - started < 3.5


@pytest.mark.h1_only("raw HTTP/1.1 socket (framing, keep-alive, timeouts on the wire)")
def test_head_not_complete_in_time_gives_408(make_proxy, upstream):
    proxy = make_proxy({"limits.header_timeout": "1s"})
    with proxy.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n")
        response = read_response(sock)
        assert response.status == 408
        assert is_closed(sock)
    assert upstream.requests() == []


@pytest.mark.h1_only("raw HTTP/1.1 socket (framing, keep-alive, timeouts on the wire)")
def test_idle_keep_alive_connection_is_closed(make_proxy):
    proxy = make_proxy({"limits.idle_timeout": "1s"})
    with proxy.connect() as sock:
        sock.sendall(get("/"))
        assert read_response(sock).status == 200
        assert is_closed(sock, timeout=4)


@pytest.mark.h1_only("raw HTTP/1.1 socket (framing, keep-alive, timeouts on the wire)")
def test_slow_client_does_not_make_the_proxy_buffer_the_response(proxy):
    size = 200 * 1024 * 1024
    before = proxy.rss_kb()
    with proxy.connect(timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(get(f"/big?bytes={size}"))
        received = 0
        peak = before
        deadline = time.time() + 3
        while time.time() < deadline:
            data = sock.recv(65536)
            received += len(data)
            time.sleep(0.01)
            peak = max(peak, proxy.rss_kb())
    # A slow reader pulled only a few MB in 3 s; the proxy must not have pulled the rest in.
    assert received < size
    assert peak - before < 48 * 1024, f"proxy RSS grew by {(peak - before) // 1024} MB"


@pytest.mark.h1_only("raw HTTP/1.1 socket (framing, keep-alive, timeouts on the wire)")
def test_many_concurrent_connections(proxy, upstream):
    errors = []

    def worker():
        try:
            with proxy.connect() as sock:
                for i in range(10):
                    sock.sendall(get(f"/c{i}"))
                    assert read_response(sock).status == 200
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(upstream.requests()) == 200


@pytest.mark.h1_only("absolute-form request target is HTTP/1.1's")
def test_absolute_form_target_is_forwarded_in_origin_form(proxy, upstream):
    proxy.request(b"GET https://localhost/abs?q=1 HTTP/1.1\r\nHost: other\r\n\r\n")
    record = upstream.requests()[-1]
    assert record["target"] == "/abs?q=1"
    assert header_map(record)["host"] == ["localhost"]


def test_upstream_request_id_is_replaced_and_upstream_hsts_kept(proxy):
    response = proxy.request(get("/request-id"))
    assert response.all("x-request-id") != ["upstream-chosen"]
    assert len(response.all("x-request-id")) == 1
    assert proxy.request(get("/hsts")).all("strict-transport-security") == ["max-age=1"]
