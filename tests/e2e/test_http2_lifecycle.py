"""An HTTP/2 connection's life (SPEC §3 limits, §9, §10.4): closed with GOAWAY when idle,
told GOAWAY on SIGTERM while its open streams finish, a slow reader that does not make the
proxy buffer the response, and one connection counted once however many streams it runs."""
import signal
import time

from conftest import admin_get, wait_for
from h2_frames import H2, fields

NO_ERROR = 0x0


def test_an_idle_connection_gets_goaway_and_closes(make_proxy, upstream):
    proxy = make_proxy({"limits.idle_timeout": "1s"})
    with H2(proxy) as conn:
        stream = conn.exchange(fields("/idle-check"))
        assert stream.status == 200
        started = time.monotonic()
        goaway = conn.wait_for_end(timeout=10)
        assert goaway is not None and goaway[1] == NO_ERROR, conn.summary()
        assert time.monotonic() - started < 8
    assert [r["target"] for r in upstream.requests()] == ["/idle-check"]


def test_a_busy_connection_is_not_idle(make_proxy, upstream):
    proxy = make_proxy({"limits.idle_timeout": "1s"})
    with H2(proxy) as conn:
        # One stream open for longer than idle_timeout: the connection stays.
        stream = conn.exchange(fields("/slow?ms=2500"))
        assert stream.status == 200 and bytes(stream.data) == b"slow\n"
        assert conn.goaway is None, conn.summary()


def test_sigterm_sends_goaway_and_lets_open_streams_finish(make_proxy, upstream):
    proxy = make_proxy()
    with H2(proxy) as conn:
        slow = conn.request(fields("/slow?ms=1500"))
        wait_for(lambda: any(r["target"].startswith("/slow") for r in upstream.requests()), timeout=5, what="the slow request upstream")
        proxy.process.send_signal(signal.SIGTERM)
        stream = conn.wait(slow, timeout=10)
        assert stream.status == 200 and bytes(stream.data) == b"slow\n", conn.summary()
        conn.wait_for_end(timeout=10)
        assert conn.goaway is not None and conn.goaway[1] == NO_ERROR, conn.summary()
    assert proxy.process.wait(timeout=15) == 0


def test_a_slow_reader_does_not_make_the_proxy_buffer_the_response(proxy):
    size = 200 * 1024 * 1024
    before = proxy.rss_kb()
    with H2(proxy, timeout=30) as conn:
        stream_id = conn.request(fields(f"/big?bytes={size}"))
        # Read a little, slowly: the client's stream window (64 KiB) is given back only for
        # what it read, so the proxy may not pull the upstream's 200 MB in.
        peak = before
        deadline = time.time() + 3
        while time.time() < deadline:
            conn.read_frame(conn.deadline(1))
            time.sleep(0.02)
            peak = max(peak, proxy.rss_kb())
        received = len(conn.stream(stream_id).data)
    assert received < size
    assert peak - before < 48 * 1024, f"proxy RSS grew by {(peak - before) // 1024} MB"


def test_one_connection_is_one_open_connection_however_many_streams(make_proxy):
    proxy = make_proxy()

    def open_connections():
        status, body = admin_get(proxy.admin_port, "/metrics")
        line = [l for l in body.splitlines() if l.startswith("actas_client_connections ")]
        return float(line[0].split()[1])

    with H2(proxy) as conn:
        streams = [conn.request(fields("/slow?ms=1500")) for _ in range(5)]
        wait_for(lambda: open_connections() == 1, timeout=5, what="one open connection")
        for stream_id in streams:
            assert conn.wait(stream_id, timeout=10).status == 200
    wait_for(lambda: open_connections() == 0, timeout=5, what="no open connection")
