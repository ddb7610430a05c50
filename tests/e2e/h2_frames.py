"""A frame-level HTTP/2 client for the attack tests: it sends exactly the frames a test writes
(upper-case names, NUL bytes, repeated pseudo-headers, endless CONTINUATION frames, more streams
than the server allows) and records every frame the server sends back.

It is built on the parts of the `h2` package that do no validation — `hyperframe` for frames
and `hpack` for header compression — because `h2` itself refuses to produce most of these
requests. TLS runs through memory BIOs over a non-blocking socket, so the client keeps reading
the server's frames (a GOAWAY, say) while it is still writing a flood, and can still decrypt
what arrived before the server closed the connection.
"""
import select
import socket
import ssl
import time

import hpack
from hyperframe.frame import (
    ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame, SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# RFC 9113 §7
ERROR_NAMES = {0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR", 0x3: "FLOW_CONTROL_ERROR",
               0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED", 0x6: "FRAME_SIZE_ERROR", 0x7: "REFUSED_STREAM",
               0x8: "CANCEL", 0x9: "COMPRESSION_ERROR", 0xA: "CONNECT_ERROR", 0xB: "ENHANCE_YOUR_CALM",
               0xC: "INADEQUATE_SECURITY", 0xD: "HTTP_1_1_REQUIRED"}
PROTOCOL_ERROR = 0x1
REFUSED_STREAM = 0x7
CANCEL = 0x8

DEFAULT_WINDOW = 65535


class ConnectionEnded(Exception):
    """The server closed the connection (after a GOAWAY, or without one)."""


class Tls:
    """TLS over a non-blocking socket through memory BIOs."""

    def __init__(self, proxy, alpn, timeout=10.0, cert=None):
        context = ssl.create_default_context(cafile=str(proxy.ca))
        context.set_alpn_protocols(list(alpn))
        if cert is not None:  # (certificate file, key file, …): a client certificate (mTLS)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        self.sock = socket.create_connection(("127.0.0.1", proxy.https_port), timeout=timeout)
        self.sock.setblocking(False)
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.wire_out = bytearray()
        self.plain = bytearray()
        self.eof = False           # no more plaintext will come
        self.write_closed = False  # the peer refused further bytes (reset or broken pipe)
        self.handshaken = False
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._io(deadline, need_read=True)
                if self.eof:
                    raise ConnectionEnded("closed during the TLS handshake")
        self.handshaken = True
        self._io(deadline, need_read=False)
        self._decrypt()
        self.alpn = self.tls.selected_alpn_protocol()

    def _decrypt(self):
        while self.handshaken:
            try:
                data = self.tls.read(1 << 16)
            except ssl.SSLWantReadError:
                return
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ssl.SSLError):
                self.eof = True
                return
            if not data:
                self.eof = True
                return
            self.plain += data

    def _io(self, deadline, need_read):
        """Sends what TLS has queued; with need_read, returns once something new arrived."""
        while True:
            self.wire_out += self.outgoing.read()
            if self.write_closed:
                self.wire_out.clear()
            if not self.wire_out and not need_read:
                return
            if need_read and self.eof:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the server neither answered nor closed in time")
            readable, writable, _ = select.select([self.sock], [self.sock] if self.wire_out else [], [], remaining)
            if writable:
                try:
                    sent = self.sock.send(self.wire_out)
                    del self.wire_out[:sent]
                except BlockingIOError:
                    pass
                except OSError:
                    self.write_closed = True
            if readable:
                try:
                    chunk = self.sock.recv(1 << 16)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    self.incoming.write(chunk)
                else:
                    self.incoming.write_eof()
                    self.write_closed = True
                before = len(self.plain)
                self._decrypt()
                if not chunk:
                    self.eof = True
                if need_read and (len(self.plain) > before or self.eof or not self.handshaken):
                    return

    def send(self, data, deadline):
        if not self.write_closed:
            self.tls.write(data)
        self._io(deadline, need_read=False)

    def read_exactly(self, n, deadline):
        while len(self.plain) < n:
            if self.eof:
                return None
            self._io(deadline, need_read=True)
        data = bytes(self.plain[:n])
        del self.plain[:n]
        return data

    def close(self):
        self.sock.close()


class Stream:
    def __init__(self):
        self.headers = None    # the final response head: [(name, value)] as str (latin-1)
        self.interim = []
        self.data = bytearray()
        self.trailers = None
        self.reset = None      # RST_STREAM error code
        self.ended = False     # END_STREAM seen

    @property
    def status(self):
        return int(dict(self.headers)[":status"]) if self.headers else None

    def header(self, name):
        values = [v for k, v in (self.headers or []) if k == name]
        return values[0] if values else None

    def done(self):
        return self.ended or self.reset is not None


def fields(path="/", method="GET", authority="localhost", extra=()):
    """A request's header list: the four pseudo-header fields, then `extra` as given."""
    return [(":method", method), (":scheme", "https"), (":authority", authority), (":path", path), *extra]


class H2:
    """One HTTP/2 connection to the proxy. Every frame received is logged in `seen`."""

    def __init__(self, proxy, alpn=("h2",), timeout=20.0, cert=None):
        self.timeout = timeout
        self.tls = Tls(proxy, alpn, cert=cert)
        if self.tls.alpn != "h2":
            self.tls.close()
            raise AssertionError(f"ALPN chose {self.tls.alpn!r}, not h2")
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder(max_header_list_size=1 << 24)
        self.streams = {}
        self.settings = None        # the server's first SETTINGS
        self.goaway = None          # (last_stream_id, error_code, debug data)
        self.closed = False
        self.seen = []
        self.next_stream_id = 1
        self.send_window = DEFAULT_WINDOW
        self.stream_windows = {}
        self.initial_stream_window = DEFAULT_WINDOW
        self.max_frame_size = 16384
        self._block = None          # (stream id, bytes, end_stream) of a header block being received
        self.send(PREFACE + SettingsFrame(0, settings={SettingsFrame.ENABLE_PUSH: 0}).serialize())
        self.read_until(lambda: self.settings is not None)

    # ---- sending -----------------------------------------------------------------------------

    def deadline(self, timeout=None):
        return time.monotonic() + (timeout or self.timeout)

    def send(self, data, timeout=None):
        self.tls.send(data, self.deadline(timeout))

    def new_stream_id(self):
        stream_id = self.next_stream_id
        self.next_stream_id += 2
        return stream_id

    def stream(self, stream_id):
        return self.streams.setdefault(stream_id, Stream())

    def header_frames(self, stream_id, block, end_stream, frame_size=None):
        """HEADERS and, when the block is larger than one frame, CONTINUATION frames."""
        size = frame_size or self.max_frame_size
        parts = [block[i:i + size] for i in range(0, len(block), size)] or [b""]
        first = HeadersFrame(stream_id, parts[0])
        if end_stream:
            first.flags.add("END_STREAM")
        frames = [first] + [ContinuationFrame(stream_id, part) for part in parts[1:]]
        frames[-1].flags.add("END_HEADERS")
        return b"".join(frame.serialize() for frame in frames)

    def headers(self, header_list, stream_id=None, end_stream=True, frame_size=None):
        """Sends a header block (as given: no validation, no lower-casing); returns the stream id."""
        if stream_id is None:
            stream_id = self.new_stream_id()
        self.stream(stream_id)
        self.stream_windows.setdefault(stream_id, self.initial_stream_window)
        self.send(self.header_frames(stream_id, self.encoder.encode(header_list), end_stream, frame_size))
        return stream_id

    def data(self, stream_id, payload, end_stream=True, ignore_flow_control=False):
        """DATA frames within the server's flow-control windows (waiting for WINDOW_UPDATE)."""
        view = memoryview(payload)
        while True:
            if ignore_flow_control:
                room = self.max_frame_size
            else:
                room = min(self.max_frame_size, self.send_window, self.stream_windows.get(stream_id, 0))
                if room <= 0 and len(view):
                    self.read_until(lambda: min(self.send_window, self.stream_windows.get(stream_id, 0)) > 0
                                    or self.stream(stream_id).done())
                    if self.stream(stream_id).done():
                        return
                    continue
            chunk, view = view[:room], view[room:]
            last = not len(view)
            frame = DataFrame(stream_id, chunk.tobytes())
            if last and end_stream:
                frame.flags.add("END_STREAM")
            self.send_window -= len(chunk)
            self.stream_windows[stream_id] = self.stream_windows.get(stream_id, 0) - len(chunk)
            self.send(frame.serialize())
            if last:
                return

    def rst(self, stream_id, code=CANCEL):
        self.send(RstStreamFrame(stream_id, error_code=code).serialize())

    def request(self, header_list, body=None, trailers=None):
        """A whole request: HEADERS, DATA, trailing HEADERS; returns the stream id."""
        stream_id = self.headers(header_list, end_stream=body is None and trailers is None)
        if body is not None:
            self.data(stream_id, body, end_stream=trailers is None)
        if trailers is not None:
            self.headers(trailers, stream_id=stream_id, end_stream=True)
        return stream_id

    def exchange(self, header_list, body=None, trailers=None):
        """Sends a request and waits for its whole answer (or its reset)."""
        return self.wait(self.request(header_list, body, trailers))

    # ---- receiving ---------------------------------------------------------------------------

    def read_frame(self, deadline):
        """Reads and handles one frame; None once the server has closed the connection."""
        head = self.tls.read_exactly(9, deadline)
        if head is None:
            self.closed = True
            return None
        frame, length = Frame.parse_frame_header(memoryview(head))
        body = self.tls.read_exactly(length, deadline)
        if body is None:
            self.closed = True
            return None
        frame.parse_body(memoryview(body))
        self._handle(frame)
        return frame

    def read_until(self, predicate, timeout=None):
        """Reads frames until predicate() holds; raises ConnectionEnded if the server closes first."""
        deadline = self.deadline(timeout)
        while not predicate():
            if self.read_frame(deadline) is None:
                if predicate():
                    return
                raise ConnectionEnded(f"connection closed; frames seen: {self.summary()}")

    def wait(self, stream_id, timeout=None):
        self.read_until(lambda: self.stream(stream_id).done(), timeout)
        return self.stream(stream_id)

    def wait_for_end(self, timeout=None):
        """Reads until the server closes the connection; returns the GOAWAY seen, if any."""
        deadline = self.deadline(timeout)
        while self.read_frame(deadline) is not None:
            pass
        return self.goaway

    def poll(self):
        """Handles whatever frames have already arrived, without waiting."""
        while not self.closed:
            readable, _, _ = select.select([self.tls.sock], [], [], 0)
            buffered = len(self.tls.plain) >= 9
            if not readable and not buffered:
                return
            if self.read_frame(self.deadline()) is None:
                return

    def _handle(self, frame):
        name = type(frame).__name__.replace("Frame", "").upper()
        if isinstance(frame, RstStreamFrame):
            self.seen.append(f"RST_STREAM s{frame.stream_id} {ERROR_NAMES.get(frame.error_code, frame.error_code)}")
            self.stream(frame.stream_id).reset = frame.error_code
        elif isinstance(frame, GoAwayFrame):
            self.seen.append(f"GOAWAY last={frame.last_stream_id} {ERROR_NAMES.get(frame.error_code, frame.error_code)}"
                             f" {frame.additional_data[:80]!r}")
            self.goaway = (frame.last_stream_id, frame.error_code, frame.additional_data)
        elif isinstance(frame, SettingsFrame):
            self.seen.append(f"SETTINGS {sorted(frame.flags)} {frame.settings}")
            if "ACK" not in frame.flags:
                if self.settings is None:
                    self.settings = dict(frame.settings)
                else:
                    self.settings.update(frame.settings)
                if SettingsFrame.INITIAL_WINDOW_SIZE in frame.settings:
                    delta = frame.settings[SettingsFrame.INITIAL_WINDOW_SIZE] - self.initial_stream_window
                    self.initial_stream_window += delta
                    for stream_id in self.stream_windows:
                        self.stream_windows[stream_id] += delta
                self.max_frame_size = frame.settings.get(SettingsFrame.MAX_FRAME_SIZE, self.max_frame_size)
                self.send(SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(frame, PingFrame):
            self.seen.append(f"PING {sorted(frame.flags)}")
            if "ACK" not in frame.flags:
                self.send(PingFrame(0, opaque_data=frame.opaque_data, flags=["ACK"]).serialize())
        elif isinstance(frame, WindowUpdateFrame):
            if frame.stream_id == 0:
                self.send_window += frame.window_increment
            else:
                self.stream_windows[frame.stream_id] = self.stream_windows.get(frame.stream_id, 0) + frame.window_increment
        elif isinstance(frame, HeadersFrame):
            self.seen.append(f"HEADERS s{frame.stream_id} {sorted(frame.flags)}")
            self._block = (frame.stream_id, bytearray(frame.data), "END_STREAM" in frame.flags)
            if "END_HEADERS" in frame.flags:
                self._end_block()
        elif isinstance(frame, ContinuationFrame):
            self.seen.append(f"CONTINUATION s{frame.stream_id} {sorted(frame.flags)}")
            self._block[1].extend(frame.data)
            if "END_HEADERS" in frame.flags:
                self._end_block()
        elif isinstance(frame, DataFrame):
            stream = self.stream(frame.stream_id)
            stream.data += frame.data
            if "END_STREAM" in frame.flags:
                stream.ended = True
                self.seen.append(f"DATA s{frame.stream_id} END_STREAM")
            # The whole client reads everything at once, so give back what was used at once.
            if frame.flow_controlled_length:
                updates = WindowUpdateFrame(0, window_increment=frame.flow_controlled_length).serialize()
                if not stream.ended:
                    updates += WindowUpdateFrame(frame.stream_id, window_increment=frame.flow_controlled_length).serialize()
                self.send(updates)
        else:
            self.seen.append(f"{name} s{frame.stream_id}")

    def _end_block(self):
        stream_id, block, end_stream = self._block
        self._block = None
        decoded = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.decoder.decode(bytes(block), raw=True)]
        stream = self.stream(stream_id)
        if stream.headers is None:
            status = dict(decoded).get(":status", "")
            if status.startswith("1"):
                stream.interim.append(decoded)
            else:
                stream.headers = decoded
        else:
            stream.trailers = decoded
        if end_stream:
            stream.ended = True

    def summary(self):
        return "; ".join(self.seen[-30:])

    def close(self):
        self.tls.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
