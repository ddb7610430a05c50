"""h2_client.from_http1: the HTTP/2 request the h2 runs send for the suite's HTTP/1.1 bytes
(pure; no proxy)."""
import pytest

from conftest import get, request_bytes
from h2_client import NotExpressible, from_http1


def test_pseudo_headers_lower_case_names_and_cookie_as_sent():
    request = from_http1(request_bytes("GET", "/app?x=1", [("Cookie", "a=1; __Host-actas_session=s; b=2"),
                                                           ("X_Forwarded_User", "mallory"), ("Accept", "text/html")],
                                       host="App.Example:8443"))
    assert request.header_block() == [
        (":method", "GET"), (":scheme", "https"), (":authority", "App.Example:8443"), (":path", "/app?x=1"),
        ("cookie", "a=1; __Host-actas_session=s; b=2"), ("x_forwarded_user", "mallory"), ("accept", "text/html")]
    assert request.body == b"" and request.trailers == []


def test_connection_specific_fields_are_dropped_te_trailers_kept():
    request = from_http1(get("/hop", extra="Connection: keep-alive, X-Drop\r\nKeep-Alive: 300\r\nUpgrade: h2c\r\n"
                                           "Proxy-Connection: x\r\nTE: trailers\r\nX-Drop: 1\r\n"))
    assert request.headers == [("te", "trailers"), ("x-drop", "1")]
    assert from_http1(get("/", extra="TE: gzip\r\n")).headers == []


def test_body_from_content_length_and_from_chunks_with_trailers():
    posted = from_http1(request_bytes("POST", "/p", [("Content-Type", "text/plain")], b"hello"))
    assert posted.body == b"hello" and ("content-length", "5") in posted.headers
    chunked = from_http1(b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 9\r\nCookie: c=1\r\n\r\n")
    assert chunked.body == b"hello world"
    assert chunked.trailers == [("x-sum", "9"), ("cookie", "c=1")]
    assert all(name != "transfer-encoding" for name, _ in chunked.headers)


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET http://evil.example/ HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n",
])
def test_what_only_http1_framing_can_say_is_refused_loudly(raw):
    with pytest.raises(NotExpressible):
        from_http1(raw)


def test_h2_exchange_negotiates_h2_and_brings_back_the_response(proxy, upstream):
    """The helper itself against the real proxy: ALPN h2, one stream, the upstream's answer."""
    from h2_client import h2_exchange
    response = h2_exchange(proxy, request_bytes("POST", "/echo-h2?x=1", [("Accept", "application/json")], b"body"))
    assert response.status == 200, response
    assert response.reason == "" and response.interim == []
    assert all(name == name.lower() for name, _ in response.headers)
    [seen] = upstream.requests()
    assert (seen["method"], seen["target"], seen["body_len"]) == ("POST", "/echo-h2?x=1", 4)
