"""SPEC §10.5: `GET /.actas/sessions/{id}/live` is a Server-Sent Events stream of the session's
request records as they are logged, redacted as in the log, for the target, the actor and
auditors (anyone else: 404, as for an unknown session). Read over real TLS as a browser's
EventSource would: chunked `text/event-stream`, `id:` = how far the stream got in each instance's log, `Last-Event-ID` on
reconnect, an `end` event when the session ends, then the stream closes."""
import json
import signal

import pytest

from conftest import is_closed, read_response, session_header, wait_for
from postgres_fixtures import pg_pair, pg_site_database, pg_site_template, postgres_server  # noqa: F401
from test_impersonation import Admin, config, setup_site

SECRET = "hunter2-live-secret"


class EventStream:
    """An SSE client on one TLS connection: parses chunked framing and SSE fields."""

    def __init__(self, proxy, person, last_event_id=None, path=None, timeout=15):
        self.sock = proxy.connect()
        self.sock.settimeout(timeout)
        headers = [session_header(person.cookie), ("Accept", "text/event-stream")]
        if last_event_id is not None:
            headers.append(("Last-Event-ID", str(last_event_id)))
        lines = [f"GET {path} HTTP/1.1", "Host: localhost"] + [f"{n}: {v}" for n, v in headers]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""
        self.text = ""
        self.closed = False
        head = self._until(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split(" ")[1])
        self.headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.raw += data

    def _until(self, marker):
        while marker not in self.raw:
            self._fill()
        part, _, self.raw = self.raw.partition(marker)
        return part

    def _exactly(self, n):
        while len(self.raw) < n:
            self._fill()
        part, self.raw = self.raw[:n], self.raw[n:]
        return part

    def body(self):
        """The rest of a non-streamed answer."""
        length = int(self.headers.get("content-length", "0"))
        return self._exactly(length)

    def _more_text(self):
        if self.chunked:
            size = int(self._until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                self._until(b"\r\n")
                raise EOFError
            self.text += self._exactly(size).decode()
            self._exactly(2)
        else:
            self._fill()
            self.text += self.raw.decode()
            self.raw = b""

    def next_event(self):
        """The next event (a dict of its fields; comments kept under 'comments'), or None at the end."""
        while True:
            normalised = self.text.replace("\r\n", "\n").replace("\r", "\n")
            if "\n\n" in normalised:
                block, _, rest = normalised.partition("\n\n")
                self.text = rest
                event = {"data": [], "comments": []}
                for line in block.split("\n"):
                    if line.startswith(":"):
                        event["comments"].append(line[1:].strip())
                        continue
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "data":
                        event["data"].append(value)
                    else:
                        event[field] = value
                if event["data"] or "event" in event or "id" in event:
                    return event
                continue
            try:
                self._more_text()
            except EOFError:
                self.closed = True
                return None

    def next_record(self):
        while True:
            event = self.next_event()
            if event is None or event.get("event", "message") == "message":
                return event
            if event.get("event") == "end":
                return event

    def close(self):
        self.sock.close()


def live_path(session):
    return f"/.actas/sessions/{session}/live"


@pytest.fixture
def acting(make_proxy):
    # A drain that would outlast any test: an open stream must not be what SIGTERM waits for.
    proxy = make_proxy(config(**{"limits.drain_timeout": "300s"}))
    setup_site(proxy)
    admin = Admin(proxy, "admin")
    response, body = admin.start("emp")
    assert response.status == 201, response
    return proxy, admin, body["id"]


def log_line_of(proxy, path):
    found = []

    def written():
        found[:] = [line for line in (proxy.dir / "logs" / "audit.jsonl").read_text().splitlines()
                    if json.loads(line).get("type") == "request" and json.loads(line).get("path") == path]
        return bool(found)
    wait_for(written, timeout=5, what=f"the log record of {path}")
    return found[0]


def test_records_made_after_opening_arrive_as_logged_redacted(acting):
    proxy, admin, session = acting
    emp = Admin(proxy, "emp")
    stream = EventStream(proxy, emp, path=live_path(session))
    try:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-cache"
        assert admin.fetch(f"/live/one?token={SECRET}&q=plain").status == 200
        response = admin.api("POST", f"/live/two?password={SECRET}", {"password": SECRET, "name": "Ann"})[0]
        assert response.status == 200
        first = stream.next_record()
        second = stream.next_record()
        for event, path in ((first, "/live/one"), (second, "/live/two")):
            line = "\n".join(event["data"])
            assert SECRET not in line
            assert line == log_line_of(proxy, path), "the event is the log's line, byte for byte"
            record = json.loads(line)
            # One instance: the id is its mark, `INSTANCE:SEQ` (ConsoleLive's LiveResume).
            assert event["id"].rpartition(":")[2] == str(record["seq"])
            assert record["session_id"] == session
        assert json.loads("\n".join(first["data"]))["query"]["token"] == "[REDACTED]"
        assert json.loads("\n".join(second["data"]))["request_body"]["password"] == "[REDACTED]"
    finally:
        stream.close()


def test_last_event_id_resumes_without_gaps_or_duplicates(acting):
    proxy, admin, session = acting
    emp = Admin(proxy, "emp")
    stream = EventStream(proxy, emp, path=live_path(session))
    assert admin.fetch("/resume/1").status == 200
    first = stream.next_record()
    assert json.loads(first["data"][0])["path"] == "/resume/1"
    stream.close()
    # While nobody watches, two more requests.
    for n in (2, 3):
        assert admin.fetch(f"/resume/{n}").status == 200
    log_line_of(proxy, "/resume/3")
    again = EventStream(proxy, emp, last_event_id=first["id"], path=live_path(session))
    try:
        assert admin.fetch("/resume/4").status == 200
        paths = [json.loads(again.next_record()["data"][0])["path"] for _ in range(3)]
        assert paths == ["/resume/2", "/resume/3", "/resume/4"]
    finally:
        again.close()


@pytest.mark.parametrize("username,allowed", [("emp", True), ("admin", True), ("admin2", True), ("mgr", False), ("hr", False)])
def test_target_actor_and_auditors_may_watch_others_get_the_unknown_session_answer(acting, username, allowed):
    proxy, admin, session = acting
    person = admin if username == "admin" else Admin(proxy, username)
    stream = EventStream(proxy, person, path=live_path(session))
    try:
        if allowed:
            assert stream.status == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            return
        assert stream.status == 404
        refused = stream.body()
        unknown = EventStream(proxy, person, path=live_path("imp_doesnotexist"))
        assert unknown.status == 404
        assert json.loads(unknown.body())["error"] == json.loads(refused)["error"] == "not_found"
        unknown.close()
    finally:
        stream.close()


def test_the_end_is_an_event_then_the_stream_closes(acting):
    proxy, admin, session = acting
    stream = EventStream(proxy, Admin(proxy, "emp"), path=live_path(session))
    try:
        assert admin.fetch("/before-the-end").status == 200
        assert json.loads(stream.next_record()["data"][0])["path"] == "/before-the-end"
        assert admin.api("DELETE", "/.actas/api/v1/impersonation")[0].status == 200
        end = stream.next_record()
        assert end["event"] == "end"
        assert json.loads(end["data"][0]) == {"session_id": session, "end_reason": "exit"}
        assert stream.next_event() is None and stream.closed
    finally:
        stream.close()


def test_an_ended_session_stream_replays_and_ends_at_once(acting):
    proxy, admin, session = acting
    assert admin.fetch("/only").status == 200
    assert admin.api("DELETE", "/.actas/api/v1/impersonation")[0].status == 200
    emp = Admin(proxy, "emp")
    # Replay needs the store's copy: it is written within a fraction of a second.
    wait_for(lambda: any(e.get("path") == "/only" for e in
                         emp.api("GET", f"/.actas/api/v1/sessions/{session}/events")[1]["events"]), what="the store copy")
    stream = EventStream(proxy, emp, last_event_id=0, path=live_path(session))
    try:
        assert json.loads(stream.next_record()["data"][0])["path"] == "/only"
        assert stream.next_record()["event"] == "end"
        assert stream.next_event() is None
    finally:
        stream.close()


def test_sigterm_with_an_open_stream_exits_promptly(acting):
    proxy, admin, session = acting
    stream = EventStream(proxy, Admin(proxy, "emp"), path=live_path(session))
    try:
        assert stream.status == 200
        proxy.process.send_signal(signal.SIGTERM)
        # drain_timeout is 300 s here: a stream holding the drain would blow this bound.
        assert proxy.process.wait(timeout=60) == 0
        assert stream.next_event() is None
    finally:
        stream.close()



def test_a_request_on_another_instance_appears_on_a_stream_opened_here(pg_pair):
    first, second = pg_pair
    admin = Admin(second, "admin")
    response, body = admin.start("emp")
    assert response.status == 201, response
    session = body["id"]
    stream = EventStream(first, Admin(first, "emp"), path=live_path(session))
    try:
        assert stream.status == 200
        assert admin.fetch(f"/made-on-b?token={SECRET}").status == 200
        record = json.loads(stream.next_record()["data"][0])
        assert record["path"] == "/made-on-b" and record["query"]["token"] == "[REDACTED]"
        assert admin.api("DELETE", "/.actas/api/v1/impersonation")[0].status == 200
        assert stream.next_record()["event"] == "end"
    finally:
        stream.close()


def test_the_session_page_adds_a_row_for_a_request_made_after_it_was_opened(acting):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from browser import chromium_driver, screenshot, sign_in
    from conftest import PASSWORD
    proxy, admin, session = acting
    driver = chromium_driver()
    try:
        base = f"https://localhost:{proxy.https_port}"
        sign_in(driver, base, "emp", PASSWORD)
        driver.get(f"{base}/.actas/sessions/{session}")
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return document.documentElement.dataset.live") == "open")
        hostile = "/after-open/<img src=x onerror=window.pwned=1>"
        assert admin.fetch(hostile.replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")).status in (200, 404)
        WebDriverWait(driver, 10).until(
            lambda d: any("/after-open/" in cell.text for cell in d.find_elements(By.CSS_SELECTOR, "table.log code")))
        assert driver.execute_script("return window.pwned") is None
        assert not driver.find_elements(By.CSS_SELECTOR, "table.log img")
        screenshot(driver, "live-session-row")
    finally:
        driver.quit()


def test_head_answers_the_stream_head_without_a_body(acting):
    proxy, admin, session = acting
    name, value = session_header(admin.cookie)
    with proxy.connect() as sock:
        sock.sendall(f"HEAD {live_path(session)} HTTP/1.1\r\nHost: localhost\r\n{name}: {value}\r\n\r\n".encode())
        response = read_response(sock, "HEAD")
        assert response.status == 200
        assert response.header("content-type").startswith("text/event-stream")
        assert is_closed(sock), "nothing follows the head"


def test_a_viewer_that_stops_reading_is_cut_off_and_the_proxy_goes_on(acting):
    """SPEC §9: no flood ends the process. A viewer that never reads would otherwise have every
    later record queued in the proxy for it; past the connection's write buffer the stream is
    cut (an EventSource reconnects with Last-Event-ID)."""
    import socket
    proxy, admin, session = acting
    emp = Admin(proxy, "emp")
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a reader that takes almost nothing
    raw.settimeout(30)
    raw.connect(("127.0.0.1", proxy.https_port))
    viewer = proxy.context().wrap_socket(raw, server_hostname="localhost")
    viewer.sendall((f"GET {live_path(session)} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
                    f"Cookie: __Host-actas_session={emp.cookie}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += viewer.recv(1)
    assert head.startswith(b"HTTP/1.1 200"), head
    # ~10 MB of records (a long logged header each) while the viewer reads nothing.
    filler = "x" * 24_000
    with proxy.connect(timeout=30) as sock:
        for i in range(420):
            sock.sendall((f"GET /flood/{i} HTTP/1.1\r\nHost: localhost\r\nX-Filler: {filler}\r\n"
                          f"Cookie: __Host-actas_session={admin.cookie}\r\n\r\n").encode())
            assert read_response(sock).status == 200
    # The proxy cut the stream: what was buffered drains, then the connection ends.
    # (Bounded: a stream kept open would go on sending keep-alive comments forever.)
    import time
    ended = False
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            if not viewer.recv(65536):
                ended = True
                break
    except (ConnectionError, OSError) as error:
        ended = not isinstance(error, TimeoutError)
    viewer.close()
    assert ended, "the stream of a viewer that does not read was kept open"
    assert admin.fetch("/after-the-flood").status == 200


def test_a_viewer_who_signs_out_gets_nothing_more(acting):
    """SPEC §10.1: a sign-out takes effect at once, on an open stream too: the target signs out
    in another tab; the administrator's next request is not sent to that stream, which ends."""
    import urllib.parse
    from conftest import request_bytes
    from test_impersonation import ORIGIN
    proxy, admin, session = acting
    emp = Admin(proxy, "emp")
    stream = EventStream(proxy, emp, path=live_path(session))
    try:
        assert stream.status == 200
        assert admin.fetch("/live/before").status == 200
        assert json.loads("\n".join(stream.next_record()["data"]))["path"] == "/live/before"
        body = urllib.parse.urlencode({"csrf_token": emp.csrf}).encode()
        out = proxy.request(request_bytes("POST", "/.actas/logout", [
            session_header(emp.cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", ORIGIN)], body))
        assert out.status == 303, out
        assert admin.fetch("/live/after-sign-out").status == 200
        log_line_of(proxy, "/live/after-sign-out")
        assert stream.next_record() is None, "a record reached a viewer who had signed out"
    finally:
        stream.close()
