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


def test_a_body_past_its_content_length_after_a_pause_reaches_nothing_upstream(make_proxy, upstream):
    # The declared length is reached by one DATA frame without END_STREAM; the extra byte comes
    # a moment later. The request must not be forwarded in between (SPEC §10.4).
    proxy = make_proxy()
    with H2(proxy) as conn:
        stream_id = conn.headers(fields("/cl-pause", method="POST", extra=[("content-length", "3")]), end_stream=False)
        conn.data(stream_id, b"abc", end_stream=False)
        time.sleep(0.5)
        conn.data(stream_id, b"d", end_stream=True)
        stream = conn.wait(stream_id, timeout=10)
        assert stream.reset == 0x1 and stream.status is None, conn.summary()
        # The same connection still serves, and a body of exactly its length still passes.
        good = conn.headers(fields("/cl-exact", method="POST", extra=[("content-length", "3")]), end_stream=False)
        conn.data(good, b"abc", end_stream=False)
        time.sleep(0.3)
        conn.data(good, b"", end_stream=True)
        assert conn.wait(good, timeout=10).status == 200, conn.summary()
    targets = [r["target"] for r in upstream.requests()]
    assert "/cl-pause" not in targets and targets == ["/cl-exact"]
    assert [r["body_len"] for r in upstream.requests()] == [3]


def test_sigterm_lets_a_slow_reader_finish_its_download(make_proxy, upstream):
    size = 3_000_000
    proxy = make_proxy({"limits.drain_timeout": "20s"})
    with H2(proxy, timeout=30) as conn:
        stream_id = conn.request(fields(f"/big?bytes={size}"))
        conn.read_until(lambda: conn.stream(stream_id).headers is not None)
        time.sleep(1)  # the client's window is full; the rest waits in the proxy and the upstream
        proxy.process.send_signal(signal.SIGTERM)
        stream = conn.wait(stream_id, timeout=30)
        assert stream.reset is None and stream.ended, conn.summary()
        assert len(stream.data) == size
    assert proxy.process.wait(timeout=30) == 0


def test_a_reset_stream_frees_its_place_at_once(make_proxy, upstream):
    proxy = make_proxy({"limits.h2_max_concurrent_streams": 1})
    with H2(proxy) as conn:
        for _ in range(10):
            # A stream waiting for its body holds the only place; its reset and a new stream
            # arrive in one write, as a browser cancelling a fetch sends them.
            waiting = conn.headers(fields("/upload", method="POST"), end_stream=False)
            conn.poll()
            following = conn.new_stream_id()
            conn.stream(following)
            conn.stream_windows[following] = conn.initial_stream_window
            from hyperframe.frame import RstStreamFrame
            conn.send(RstStreamFrame(waiting, error_code=0x8).serialize()
                      + conn.header_frames(following, conn.encoder.encode(fields("/after-reset")), True))
            stream = conn.wait(following, timeout=10)
            assert stream.reset is None and stream.status == 200, conn.summary()


def test_a_connection_that_sends_no_request_is_closed_after_header_timeout(make_proxy):
    proxy = make_proxy({"limits.header_timeout": "1s", "limits.idle_timeout": "60s"})
    with H2(proxy) as conn:
        started = time.monotonic()
        goaway = conn.wait_for_end(timeout=20)
        assert goaway is not None, conn.summary()
        assert time.monotonic() - started < 10


def test_a_zero_content_length_then_data_after_a_pause_reaches_nothing_upstream(make_proxy, upstream):
    proxy = make_proxy()
    with H2(proxy) as conn:
        stream_id = conn.headers(fields("/cl0-pause", method="POST", extra=[("content-length", "0")]), end_stream=False)
        time.sleep(0.5)
        conn.data(stream_id, b"abc", end_stream=True)
        stream = conn.wait(stream_id, timeout=10)
        assert stream.reset == 0x1 and stream.status is None, conn.summary()
        good = conn.headers(fields("/cl0-exact", method="POST", extra=[("content-length", "0")]), end_stream=False)
        time.sleep(0.3)
        conn.data(good, b"", end_stream=True)
        assert conn.wait(good, timeout=10).status == 200, conn.summary()
    assert [r["target"] for r in upstream.requests()] == ["/cl0-exact"]


def test_a_client_that_never_opens_its_window_does_not_hold_the_connection(make_proxy, upstream):
    from hyperframe.frame import SettingsFrame
    proxy = make_proxy({"limits.idle_timeout": "1s"})
    with H2(proxy) as conn:
        conn.send(SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0}).serialize())
        stream_ids = [conn.request(fields(f"/stuck-{i}")) for i in range(3)]
        conn.read_until(lambda: all(conn.stream(s).headers is not None for s in stream_ids))
        # The bodies never leave (window 0); the proxy gives up on them and on the connection.
        started = time.monotonic()
        conn.wait_for_end(timeout=30)
        assert time.monotonic() - started < 20, conn.summary()
    # Closed by the proxy's timers, not by its death: it serves the next connection.
    assert proxy.process.poll() is None
    with H2(proxy) as conn:
        assert conn.exchange(fields("/after-stuck")).status == 200, conn.summary()
