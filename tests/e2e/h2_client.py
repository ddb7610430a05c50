"""HTTP/2 for the end-to-end suite (SPEC §10.4).

`h2_exchange(proxy, raw)` sends one request, given as the raw HTTP/1.1 bytes the suite already
builds (`request_bytes`, `get`, `post_login` ...), as one HTTP/2 stream over a fresh TLS
connection that negotiated `h2`, and returns conftest's `Response`. `Proxy.request` uses it
when the test runs for `h2` (conftest's `protocol` fixture).

`H2Client` is the connection underneath, for tests that need more than one request: streams
side by side, raw frames the `h2` library refuses to produce, the events as they come. Its
outbound validation and normalisation are off, so a test sends exactly the fields it means to.
"""
import socket
import ssl
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from h2.errors import ErrorCodes

# Fields RFC 9113 §8.2.2 forbids in HTTP/2 (TE is allowed only as "trailers").
CONNECTION_SPECIFIC = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"}


class H2Error(AssertionError):
    """The server ended the stream or the connection instead of answering."""


class StreamReset(H2Error):
    def __init__(self, stream_id, error_code):
        self.stream_id = stream_id
        self.error_code = error_code
        super().__init__(f"stream {stream_id} reset by the server: RST_STREAM {code_name(error_code)}")


class GoAway(H2Error):
    def __init__(self, error_code, last_stream_id, additional_data=b""):
        self.error_code = error_code
        self.last_stream_id = last_stream_id
        self.additional_data = additional_data or b""
        super().__init__(f"connection ended by the server: GOAWAY {code_name(error_code)} "
                         f"(last stream {last_stream_id}) {self.additional_data[:200]!r}")


class ConnectionClosed(H2Error, EOFError):
    def __init__(self, what="the server closed the connection"):
        super().__init__(what)


class NotH2(AssertionError):
    """ALPN did not choose h2."""


class NotExpressible(ValueError):
    """Raw HTTP/1.1 bytes with no HTTP/2 equivalent (the test is about HTTP/1.1 framing: mark it
    `h1_only`)."""


def code_name(code):
    try:
        return ErrorCodes(code).name
    except ValueError:
        return f"0x{int(code):x}"


# ---- HTTP/1.1 bytes → one HTTP/2 request -----------------------------------------------------------

@dataclass
class H2Request:
    method: str
    path: str
    authority: str
    headers: list  # (lower-case name, value), no pseudo-header fields
    body: bytes = b""
    trailers: list = field(default_factory=list)

    def header_block(self, scheme="https"):
        return [(":method", self.method), (":scheme", scheme), (":authority", self.authority),
                (":path", self.path)] + self.headers


def from_http1(raw: bytes) -> H2Request:
    """The HTTP/2 request a client would send for these HTTP/1.1 bytes: names lower-cased, the
    Host as `:authority`, connection-specific fields dropped (TE kept only as "trailers"), the
    body from Content-Length or de-chunked, chunked trailers as trailers. Raises NotExpressible
    for what only HTTP/1.1 framing can say (other versions, absolute or authority targets,
    obs-fold, bare LF, two Hosts, Content-Length with chunked ...)."""
    head, separator, rest = raw.partition(b"\r\n\r\n")
    if not separator:
        raise NotExpressible("no end of the header section")
    lines = head.split(b"\r\n")
    if any(b"\n" in line or b"\r" in line for line in lines):
        raise NotExpressible("bare CR or LF in the head")
    parts = lines[0].decode("latin-1").split(" ")
    if len(parts) != 3 or parts[2] != "HTTP/1.1":
        raise NotExpressible(f"request line {lines[0][:80]!r}")
    method, target, _ = parts
    if not (target.startswith("/") or (target == "*" and method == "OPTIONS")):
        raise NotExpressible(f"request target {target[:80]!r} is not origin-form")
    fields = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise NotExpressible("obs-fold")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():
            raise NotExpressible(f"header line {line[:80]!r}")
        fields.append((name.lower(), value.strip(" \t")))
    hosts = [value for name, value in fields if name == "host"]
    if len(hosts) != 1:
        raise NotExpressible(f"{len(hosts)} Host fields")
    lengths = [value for name, value in fields if name == "content-length"]
    codings = [value.lower() for name, value in fields if name == "transfer-encoding"]
    if lengths and codings or len(lengths) > 1 or codings not in ([], ["chunked"]):
        raise NotExpressible(f"framing Content-Length {lengths} Transfer-Encoding {codings}")
    trailers = []
    if codings:
        body, trailers = dechunk(rest)
    elif lengths:
        if not lengths[0].isdigit() or len(rest) < int(lengths[0]):
            raise NotExpressible(f"Content-Length {lengths[0]} with {len(rest)} bytes of body")
        body = rest[:int(lengths[0])]
    else:
        body = b""
    headers = [(name, value) for name, value in fields
               if name != "host" and name not in CONNECTION_SPECIFIC and not (name == "te" and value.lower() != "trailers")]
    return H2Request(method, target, hosts[0], headers, body, trailers)


def dechunk(data: bytes):
    body, trailers = b"", []
    while True:
        size_line, separator, data = data.partition(b"\r\n")
        if not separator:
            raise NotExpressible("chunked body without its last chunk")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        body, data = body + data[:size], data[size + 2:]
    for line in data.split(b"\r\n"):
        if not line:
            break
        name, _, value = line.decode("latin-1").partition(":")
        trailers.append((name.lower(), value.strip(" \t")))
    return body, trailers


# ---- the connection --------------------------------------------------------------------------------

@dataclass
class StreamState:
    status: int = None
    headers: list = field(default_factory=list)
    interim: list = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: list = field(default_factory=list)
    ended: bool = False
    reset: int = None  # error code of the server's RST_STREAM

    def response(self):
        from conftest import Response
        response = Response(self.status, "", self.headers, bytes(self.body), self.interim)
        response.trailers = self.trailers
        return response


def text_fields(fields):
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in fields]


class H2Client:
    """One TLS connection to the proxy's https listener that negotiated h2, driven by `h2`.

    `events()` reads what arrived (acknowledging DATA so flow control never stalls) and keeps
    each stream's response; `response(id)` waits for one. `send_raw` writes bytes the state
    machine never sees (hand-made frames)."""

    def __init__(self, proxy, timeout=10, alpn=("h2",), **config):
        settings = dict(client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False,
                        header_encoding=None)
        settings.update(config)
        self.timeout = timeout
        raw = socket.create_connection(("127.0.0.1", proxy.https_port), timeout=timeout)
        try:
            self.sock = proxy.context(alpn=list(alpn)).wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        self.alpn = self.sock.selected_alpn_protocol()
        if self.alpn != "h2":
            self.sock.close()
            raise NotH2(f"ALPN offered {list(alpn)}, the proxy chose {self.alpn!r}: no HTTP/2")
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(**settings))
        self.streams = {}
        self.goaway = None  # the ConnectionTerminated event, once received
        self.closed = False
        self.conn.initiate_connection()
        self.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            if not self.closed and self.goaway is None:
                self.conn.close_connection()
                self.flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        self.closed = True
        self.sock.close()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def new_stream_id(self):
        return self.conn.get_next_available_stream_id()

    def send_headers(self, headers, end_stream=False, stream_id=None):
        stream_id = stream_id or self.new_stream_id()
        self.streams.setdefault(stream_id, StreamState())
        self.conn.send_headers(stream_id, headers, end_stream=end_stream)
        self.flush()
        return stream_id

    def send_data(self, stream_id, data: bytes, end_stream=False):
        """Sends within the peer's flow-control windows, reading WINDOW_UPDATEs as needed."""
        view = memoryview(data)
        deadline = time.monotonic() + self.timeout
        while view:
            window = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size)
            if window <= 0:
                if time.monotonic() > deadline:
                    raise H2Error(f"stream {stream_id}: flow-control window stayed closed for {self.timeout}s")
                self.events()
                self._raise_if_ended(stream_id, allow_response=True)
                if self.streams[stream_id].ended:
                    return  # answered before the body was all sent (e.g. 413): the rest is moot
                continue
            self.conn.send_data(stream_id, view[:window].tobytes())
            view = view[window:]
            self.flush()
        if end_stream:
            self.conn.end_stream(stream_id)
            self.flush()

    def reset(self, stream_id, error_code=ErrorCodes.CANCEL):
        self.conn.reset_stream(stream_id, error_code)
        self.flush()

    def send_request(self, request: H2Request, scheme="https"):
        has_more = bool(request.body or request.trailers)
        stream_id = self.send_headers(request.header_block(scheme), end_stream=not has_more)
        if request.body:
            self.send_data(stream_id, request.body, end_stream=not request.trailers)
        if request.trailers:
            self.send_headers(request.trailers, end_stream=True, stream_id=stream_id)
        return stream_id

    def events(self, timeout=None):
        """Reads once (waiting up to `timeout`, default the client's) and returns the events; []
        when nothing came in time. Sets `closed` at EOF."""
        if self.closed:
            return []
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return []
        except (ConnectionError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return []
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            if self.goaway is not None:  # frames after GOAWAY: `h2` refuses them; the GOAWAY says why
                return []
            raise H2Error(f"the server broke HTTP/2: {error!r}") from error
        for event in events:
            self._keep(event)
        try:
            self.flush()
        except OSError:
            self.closed = True
        return events

    def _keep(self, event):
        state = self.streams.setdefault(event.stream_id, StreamState()) if getattr(event, "stream_id", None) else None
        if isinstance(event, h2.events.InformationalResponseReceived):
            state.interim.append((int(dict(event.headers)[b":status"]), text_fields(
                [(n, v) for n, v in event.headers if not n.startswith(b":")])))
        elif isinstance(event, h2.events.ResponseReceived):
            state.status = int(dict(event.headers)[b":status"])
            state.headers = text_fields([(n, v) for n, v in event.headers if not n.startswith(b":")])
        elif isinstance(event, h2.events.DataReceived):
            state.body += event.data
            if event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            state.trailers = text_fields(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            state.ended = True
        elif isinstance(event, h2.events.StreamReset):
            state.reset = event.error_code
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event

    def _raise_if_ended(self, stream_id, allow_response=False):
        state = self.streams.get(stream_id, StreamState())
        if allow_response and state.ended:
            return  # a complete answer, perhaps followed by RST_STREAM NO_ERROR (RFC 9113 §8.1)
        if state.reset is not None:
            raise StreamReset(stream_id, state.reset)
        if self.goaway is not None and (self.goaway.error_code != ErrorCodes.NO_ERROR
                                        or self.goaway.last_stream_id < stream_id):
            raise GoAway(self.goaway.error_code, self.goaway.last_stream_id, self.goaway.additional_data)
        if self.closed:
            if self.goaway is not None:
                raise GoAway(self.goaway.error_code, self.goaway.last_stream_id, self.goaway.additional_data)
            raise ConnectionClosed(f"the server closed the connection before stream {stream_id} ended")

    def response(self, stream_id, timeout=None):
        """Waits for the stream's END_STREAM; raises StreamReset, GoAway or ConnectionClosed
        when the server ends it otherwise."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            state = self.streams.setdefault(stream_id, StreamState())
            if state.ended:
                return state.response()
            self._raise_if_ended(stream_id)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"stream {stream_id}: no END_STREAM within the timeout; so far {state}")
            self.events(timeout=left)

    def request(self, request: H2Request, timeout=None):
        return self.response(self.send_request(request), timeout)


def h2_exchange(proxy, raw: bytes, timeout=10):
    """One HTTP/2 request for these HTTP/1.1 bytes over a fresh connection; the response as
    conftest's `Response` (reason "", lower-case names, `.trailers`)."""
    request = from_http1(raw)
    with H2Client(proxy, timeout) as client:
        return client.request(request, timeout)
