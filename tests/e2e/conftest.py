"""End-to-end fixtures: the real `actas` binary, real TLS, a real recording upstream process."""
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ACTAS = Path(os.environ.get("ACTAS_BIN", ROOT / ".build" / "debug" / "actas"))


# Ports for the servers a test starts, below the kernel's ephemeral range (32768-60999 by
# default), so no outgoing connection can take one between its choice and its bind; each
# pytest-xdist worker walks its own slice, from a random point, so parallel workers (and a run
# beside another) do not hand out the same port.
PORT_SLICE = 1500
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")[2:]
_port_base = 12000 + (int(_worker) % 12 if _worker.isdigit() else 12) * PORT_SLICE
_port_next = random.randrange(PORT_SLICE)


def free_port():
    global _port_next
    for _ in range(PORT_SLICE):
        port = _port_base + _port_next % PORT_SLICE
        _port_next += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {_port_base}-{_port_base + PORT_SLICE - 1}")


# Tests that stop the shared PostgreSQL cluster, or measure the proxy's memory or a deadline,
# must not run beside other tests: scripts/test runs them after the parallel phase, one at a time.
SERIAL = {
    "test_postgres_outage.py": None,  # the whole file
    "test_postgres_instances.py": {"test_a_database_restart_the_feed_resumes_and_misses_nothing"},
    "test_banner.py": {"test_big_html_page_streams_with_bounded_memory"},
    "test_connection_limits.py": {"test_memory_is_not_kept_after_handshake_floods"},
    "test_forwarding.py": {"test_slow_client_does_not_make_the_proxy_buffer_the_response"},
    "test_response_hardening.py": {"test_gzip_bomb_is_cut_with_bounded_memory"},
    "test_impersonation.py": {"test_websocket_is_closed_with_1008_within_a_second_of_the_end"},
    "test_http2_attacks.py": {"test_continuation_flood_ends_the_connection_with_goaway"},
    # SIGSTOP freezes an instance wherever it is: under load, inside a write to the shared
    # SQLite file, and the command under test then finds the database locked.
    "test_changes_acknowledged.py": {"test_an_instance_that_cannot_confirm_is_reported_with_exit_3",
                                     "test_a_stale_row_of_a_hung_instance_is_asked_and_fails_with_exit_3",
                                     "test_a_stale_row_of_a_live_instance_is_asked_and_it_enforces_at_once"},
}


def pytest_configure(config):
    config.addinivalue_line("markers", "serial: run alone, after the parallel phase (scripts/test)")
    config.addinivalue_line("markers", "protocols(*names): run each test once per protocol Proxy.request speaks "
                                       "(\"http/1.1\", \"h2\"); ids [h1], [h2]")
    config.addinivalue_line("markers", "h1_only(reason): in a protocols module, runs for HTTP/1.1 only (raw sockets, "
                                       "HTTP/1.1 framing)")


PROTOCOL_IDS = {"http/1.1": "h1", "h2": "h2"}


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("protocols")
    if marker and "protocol" in metafunc.fixturenames:
        metafunc.parametrize("protocol", marker.args, ids=[PROTOCOL_IDS[name] for name in marker.args], indirect=True)


@pytest.fixture(autouse=True)
def protocol(request):
    """The protocol Proxy.request speaks in this test: "http/1.1" unless the module opts in with
    `pytestmark = pytest.mark.protocols("http/1.1", "h2")`. Set on the class, so a module-scoped
    proxy speaks it too; such a proxy's setup runs before this fixture, over HTTP/1.1."""
    Proxy.protocol = getattr(request, "param", "http/1.1")
    yield Proxy.protocol
    Proxy.protocol = "http/1.1"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        names = SERIAL.get(item.path.name, ())
        if names is None or getattr(item, "originalname", item.name) in names:
            item.add_marker(pytest.mark.serial)
    h1_only = [item for item in items if item.get_closest_marker("h1_only") and
               getattr(item, "callspec", None) and item.callspec.params.get("protocol") == "h2"]
    if h1_only:
        items[:] = [item for item in items if item not in h1_only]
        config.hook.pytest_deselected(items=h1_only)


def complete_lines(path):
    """The lines of a log another process is appending to, without a last line it is still
    writing (a reader can see part of a write)."""
    text = path.read_text() if path.exists() else ""
    return text[:text.rfind("\n") + 1].splitlines()


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Upstream:
    """The recording origin (tests/e2e/recording_upstream.py) as a separate process."""

    def __init__(self, tmp):
        self.port = free_port()
        self.record_path = tmp / f"upstream-{self.port}.jsonl"
        self.record_path.touch()
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "recording_upstream.py"), "--port", str(self.port), "--record", str(self.record_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"

    def requests(self):
        return [json.loads(line) for line in self.record_path.read_text().splitlines() if line.strip()]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=5)


class Proxy:
    """`actas serve` with a generated proxy.conf and dev certificates."""

    def __init__(self, tmp, upstream_port, extra=None, start=True):
        self.dir = tmp
        self.https_port = free_port()
        self.admin_port = free_port()
        self.http_port = free_port()
        self.upstream_port = upstream_port
        self.config_path = tmp / "proxy.conf"
        self.write_config(extra or {})
        self.ca = tmp / "certs" / "dev-ca.crt"
        run(["certs", "dev", "--config", str(self.config_path)])
        self.process = None
        self.stderr_path = tmp / "actas.stderr"
        if start:
            self.start()

    def write_config(self, extra):
        sections = {
            "listen": {
                "https": f"127.0.0.1:{self.https_port}",
                "http": f"127.0.0.1:{self.http_port}",
                "admin": f"127.0.0.1:{self.admin_port}",
                "tls_cert": "certs/server.crt",
                "tls_key": "certs/server.key",
                "dev_certs": False,
            },
            "upstream": {"url": f"http://127.0.0.1:{self.upstream_port}", "response_timeout": "10s", "connect_timeout": "2s"},
            "limits": {"header_timeout": "3s", "idle_timeout": "20s", "drain_timeout": "10s"},
            "store": {"url": "sqlite:data/actas.db"},
            # Data-plane tests forward anonymously; identity tests narrow this.
            "auth": {"public_paths": ["/*"]},
            "audit": {"file": "logs/audit.jsonl"},
            "demo": {"enabled": False},
        }
        for key, value in extra.items():
            section, name = key.rsplit(".", 1)
            sections.setdefault(section, {})[name] = value
        lines = []
        for section, values in sections.items():
            lines.append(f"[{section}]")
            for name, value in values.items():
                lines.append(f"{name} = {toml_value(value)}")
            lines.append("")
        self.config_path.write_text("\n".join(lines))

    def start(self):
        self.stderr = open(self.stderr_path, "a")
        self.process = subprocess.Popen([str(ACTAS), "serve", "--config", str(self.config_path)],
                                        stdout=self.stderr, stderr=self.stderr, env=clean_env())
        wait_for(self.ready, what="actas /readyz")

    def ready(self):
        if self.process.poll() is not None:
            raise AssertionError(f"actas exited with {self.process.returncode}: {self.stderr_path.read_text()}")
        try:
            return admin_get(self.admin_port, "/readyz")[0] == 200
        except OSError:
            return False

    def context(self, alpn=("http/1.1",)):
        ctx = ssl.create_default_context(cafile=str(self.ca))
        ctx.set_alpn_protocols(list(alpn))
        return ctx

    def connect(self, timeout=10):
        raw = socket.create_connection(("127.0.0.1", self.https_port), timeout=timeout)
        return self.context().wrap_socket(raw, server_hostname="localhost")

    # What request() speaks; the `protocol` fixture sets it for the test (connect() stays HTTP/1.1).
    protocol = "http/1.1"

    def request(self, data: bytes, timeout=10):
        """Sends raw bytes over a fresh TLS connection; returns the first response. For "h2"
        the bytes become one HTTP/2 stream (h2_client.from_http1)."""
        if self.protocol == "h2":
            from h2_client import h2_exchange
            return h2_exchange(self, data, timeout)
        with self.connect(timeout) as sock:
            sock.sendall(data)
            return read_response(sock)

    def rss_kb(self):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self.stderr.close()


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("ACTAS_")}


def run(args, check=True, **kwargs):
    result = subprocess.run([str(ACTAS), *args], capture_output=True, text=True, env=clean_env(), **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"actas {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def admin_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Response:
    def __init__(self, status, reason, headers, body, interim):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.interim = interim

    def header(self, name):
        values = self.all(name)
        return values[0] if values else None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:200]!r}>"


class SocketReader:
    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buffer += data

    def line(self):
        while b"\r\n" not in self.buffer:
            self.fill()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def exactly(self, n):
        while len(self.buffer) < n:
            self.fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def until_close(self):
        try:
            while True:
                self.fill()
        except (EOFError, ConnectionError, ssl.SSLError):
            pass
        data, self.buffer = self.buffer, b""
        return data


_readers = {}


def read_response(sock, method="GET"):
    """Reads one response (after any 1xx) from a socket, keeping leftovers for the next call."""
    reader = _readers.setdefault(id(sock), SocketReader(sock))
    reader.sock = sock
    interim = []
    while True:
        status_line = reader.line().decode("latin-1")
        version, status, *reason = status_line.split(" ", 2)
        headers = []
        while True:
            line = reader.line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name, value.strip()))
        status = int(status)
        if 100 <= status < 200 and status != 101:
            interim.append((status, headers))
            continue
        break
    response = Response(status, reason[0] if reason else "", headers, b"", interim)
    if method == "HEAD" or status in (101, 204, 304):
        return response
    te = response.header("transfer-encoding")
    if te and te.lower() == "chunked":
        body = b""
        trailers = []
        while True:
            size = int(reader.line().split(b";")[0], 16)
            if size == 0:
                while True:
                    line = reader.line()
                    if not line:
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    trailers.append((name, value.strip()))
                break
            body += reader.exactly(size)
            assert reader.exactly(2) == b"\r\n"
        response.body = body
        response.trailers = trailers
    elif response.header("content-length") is not None:
        response.body = reader.exactly(int(response.header("content-length")))
    else:
        response.body = reader.until_close()
    return response


def is_closed(sock, timeout=3.0):
    """True when the peer closed the connection (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    reader = _readers.get(id(sock))
    if reader and reader.buffer:
        return False
    try:
        return sock.recv(1) == b""
    except (ConnectionError, ssl.SSLError):
        return True
    except socket.timeout:
        return False


@pytest.fixture
def upstream(tmp_path):
    server = Upstream(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def make_proxy(tmp_path, upstream):
    proxies = []

    def factory(extra=None, start=True):
        directory = tmp_path / f"proxy{len(proxies)}"
        directory.mkdir()
        proxy = Proxy(directory, upstream.port, extra, start)
        proxies.append(proxy)
        return proxy

    yield factory
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def proxy(make_proxy):
    return make_proxy()


def get(path, host="localhost", extra=""):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


# ---- identity helpers ------------------------------------------------------------------

ORIGIN = "https://localhost"
PASSWORD = "correct horse battery"


def request_bytes(method, path, headers=(), body=b"", host="localhost"):
    """A raw HTTP/1.1 request: header names and order exactly as given (duplicates allowed)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"] + [f"{name}: {value}" for name, value in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def set_cookies(response):
    """name → (value, attribute string) of each Set-Cookie."""
    cookies = {}
    for line in response.all("set-cookie"):
        pair, _, attributes = line.partition(";")
        name, _, value = pair.partition("=")
        cookies[name.strip()] = (value.strip(), attributes.strip())
    return cookies


def import_users(proxy, users):
    """`actas users import` of a JSON array (passwords default to PASSWORD)."""
    path = proxy.dir / f"users-{time.monotonic_ns()}.json"
    path.write_text(json.dumps([{"password": PASSWORD, **user} for user in users]))
    return run(["users", "import", str(path), "--config", str(proxy.config_path)])


def login_form(proxy, rd=None):
    """GET the sign-in page: (csrf token in the form, login cookie, response)."""
    import re
    import urllib.parse
    target = "/.actas/login" + (f"?rd={urllib.parse.quote(rd, safe='')}" if rd is not None else "")
    page = proxy.request(request_bytes("GET", target, [("Accept", "text/html")]))
    assert page.status == 200, page
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page.body).group(1).decode()
    login_cookie = set_cookies(page)["__Host-actas_login"][0]
    return token, login_cookie, page


def post_login(proxy, username, password=PASSWORD, rd=None, token=None, login_cookie=None, origin=ORIGIN, extra=()):
    import urllib.parse
    if token is None or login_cookie is None:
        form_token, form_cookie, _ = login_form(proxy, rd)
        token = form_token if token is None else token
        login_cookie = form_cookie if login_cookie is None else login_cookie
    fields = {"csrf_token": token, "username": username, "password": password}
    if rd is not None:
        fields["rd"] = rd
    body = urllib.parse.urlencode(fields).encode()
    headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "text/html")]
    if origin:
        headers.append(("Origin", origin))
    if login_cookie:
        headers.append(("Cookie", f"__Host-actas_login={login_cookie}"))
    return proxy.request(request_bytes("POST", "/.actas/login", headers + list(extra), body))


def login(proxy, username, password=PASSWORD):
    """Signs in through the form; returns the session cookie value."""
    response = post_login(proxy, username, password)
    assert response.status == 303, response
    return set_cookies(response)["__Host-actas_session"][0]


def session_header(cookie):
    return ("Cookie", f"__Host-actas_session={cookie}")


def me(proxy, cookie):
    response = proxy.request(request_bytes("GET", "/.actas/api/v1/me", [session_header(cookie)]))
    assert response.status == 200, response
    return json.loads(response.body)


def header_values(record, name):
    return [value for key, value in record["headers"] if key.lower() == name.lower()]
