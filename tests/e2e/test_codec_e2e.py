"""Rejected requests never reach the upstream; valid ones from the same client do."""
import json

import pytest

from conftest import get, is_closed, read_response

HOSTILE = [
    ("CL.TE", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 400),
    ("TE.CL", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG", 400),
    ("duplicate CL", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nA", 400),
    ("xchunked", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    ("chunked, identity", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400),
    ("bare LF", b"GET / HTTP/1.1\nHost: h\n\n", 400),
    ("bare CR", b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400),
    ("NUL", b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n", 400),
    ("space in name", b"GET / HTTP/1.1\r\nHost: h\r\nX A: b\r\n\r\n", 400),
    ("space before colon", b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
    ("chunk size 0x10", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x10\r\n0123456789abcdef\r\n0\r\n\r\n", 400),
    ("chunk size +5", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk size 17 digits", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n", 400),
    ("CR in chunk extension", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\rb\r\nhello\r\n0\r\n\r\n", 400),
    ("missing Host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("unknown method", b"FOO / HTTP/1.1\r\nHost: h\r\n\r\n", 501),
    ("HTTP/2 preface over TLS 1.1 ALPN", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    ("long request line", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414),
    ("too many headers", b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n", 431),
    ("header too large", b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 40000 + b"\r\n\r\n", 431),
    ("body over max_body", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n", 413),
    ("TRACE", b"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n", 405),
    ("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
]


@pytest.fixture
def strict_proxy(make_proxy):
    return make_proxy({"limits.max_body": "1MB"})


@pytest.mark.parametrize("name,request_bytes,status", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_rejected_request_never_reaches_upstream(strict_proxy, upstream, name, request_bytes, status):
    with strict_proxy.connect() as sock:
        sock.sendall(request_bytes)
        response = read_response(sock)
        assert response.status == status, response
        body = json.loads(response.body)
        assert body["request_id"] == response.header("x-request-id")
        assert len(body["request_id"]) == 32
        if status in (400, 413, 414, 431, 501, 505):
            assert response.header("connection") == "close"
            assert is_closed(sock)
    assert upstream.requests() == [], f"{name} reached the upstream"

    # The same client, a valid request: it goes through exactly once.
    response = strict_proxy.request(get("/after"))
    assert response.status == 200
    assert [r["target"] for r in upstream.requests()] == ["/after"]


def test_hostile_request_pipelined_after_a_valid_one(strict_proxy, upstream):
    with strict_proxy.connect() as sock:
        sock.sendall(get("/valid") + b"POST /smuggled HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        first = read_response(sock)
        second = read_response(sock)
    assert first.status == 200
    assert second.status == 400
    assert [r["target"] for r in upstream.requests()] == ["/valid"]


def test_chunked_body_over_limit_is_cut_mid_stream(strict_proxy, upstream):
    with strict_proxy.connect() as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        try:
            for _ in range(20):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = read_response(sock)
    assert response.status == 413
    # The upstream may have seen the start of the body but never a complete request.
    assert all(r["target"] != "/upload" for r in upstream.requests())
