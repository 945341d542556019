"""A raw HTTP/2 client for ringside's end-to-end tests: frames in, frames out.

It is deliberately not a protocol library: the conformance tests must be able to
send what no library would (bad lengths, bad padding, frames in the wrong state)
and see every frame the server answers with, in order. hyperframe parses what
arrives and builds well-formed frames; `raw_frame` builds anything else;
`literal_block` encodes a field block byte for byte, without touching the HPACK
dynamic table, so a malformed header list reaches the server exactly as written.

Every read is bounded: a test that waits for a frame fails with the list of
frames it did see, never hangs.
"""

import os
import socket
import struct
import time

import hpack
from h2.errors import ErrorCodes as ErrorCode
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 §3.4

# Frame types (RFC 9113 §6) and flags.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# Settings identifiers (RFC 9113 §6.5.2).
HEADER_TABLE_SIZE = 0x1
ENABLE_PUSH = 0x2
MAX_CONCURRENT_STREAMS = 0x3
INITIAL_WINDOW_SIZE = 0x4
MAX_FRAME_SIZE = 0x5
MAX_HEADER_LIST_SIZE = 0x6

# Error codes (RFC 9113 §7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
SETTINGS_TIMEOUT = 0x4
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
ENHANCE_YOUR_CALM = 0xB

DEFAULT_WINDOW = 65535  # RFC 9113 §6.9.2
DEFAULT_MAX_FRAME = 16384  # RFC 9113 §6.5.2
MAX_WINDOW = 2**31 - 1  # RFC 9113 §6.9.1

FRAME_NAMES = {
    DATA: "DATA",
    HEADERS: "HEADERS",
    PRIORITY: "PRIORITY",
    RST_STREAM: "RST_STREAM",
    SETTINGS: "SETTINGS",
    PUSH_PROMISE: "PUSH_PROMISE",
    PING: "PING",
    GOAWAY: "GOAWAY",
    WINDOW_UPDATE: "WINDOW_UPDATE",
    CONTINUATION: "CONTINUATION",
}


def code_name(code):
    try:
        return "%s(0x%x)" % (ErrorCode(code).name, code)
    except ValueError:
        return "unknown(0x%x)" % code


def raw_frame(ftype, flags, stream_id, payload=b"", length=None):
    """A frame exactly as given: 9-byte header (RFC 9113 §4.1) and payload.
    `length` overrides the length field (to lie about it)."""
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + struct.pack(">BBI", ftype, flags, stream_id) + payload


def settings_payload(pairs):
    return b"".join(struct.pack(">HI", k, v) for k, v in pairs)


def hpack_int(value, prefix_bits, first_byte_flags=0):
    """RFC 7541 §5.1 integer representation, `first_byte_flags` holding the
    bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(s):
    """A string literal without Huffman coding (RFC 7541 §5.2)."""
    if isinstance(s, str):
        s = s.encode("latin-1")
    return hpack_int(len(s), 7, 0x00) + s  # no Huffman: the bytes go as written


def literal_block(headers):
    """A field block of "literal field line without indexing, literal name"
    representations (RFC 7541 §6.2.2): every name and value byte for byte, case
    kept, and the server's dynamic table untouched, so the connection's HPACK
    state stays the same whatever the server decides about the block."""
    out = bytearray()
    for n, v in headers:
        out += b"\x00" + hpack_str(n) + hpack_str(v)
    return bytes(out)


def get_headers(path="/echo", authority="origin.test", method="GET", scheme="http", extra=()):
    """A request's field list, pseudo-header fields first (RFC 9113 §8.3.1)."""
    return [(":method", method), (":scheme", scheme), (":authority", authority), (":path", path)] + list(extra)


def describe(f):
    """One line for a received frame, for failure messages."""
    t = getattr(f, "type", None)
    name = FRAME_NAMES.get(t, "type 0x%x" % t if t is not None else type(f).__name__)
    s = "%s stream=%d flags=%s" % (name, f.stream_id, ",".join(sorted(f.flags)) or "-")
    if isinstance(f, GoAwayFrame):
        s += " last_stream=%d code=%s debug=%r" % (f.last_stream_id, code_name(f.error_code), bytes(f.additional_data[:200]))
    elif isinstance(f, RstStreamFrame):
        s += " code=%s" % code_name(f.error_code)
    elif isinstance(f, SettingsFrame):
        s += " %r" % dict(f.settings)
    elif isinstance(f, WindowUpdateFrame):
        s += " increment=%d" % f.window_increment
    elif isinstance(f, DataFrame):
        s += " len=%d" % len(f.data)
    elif isinstance(f, PingFrame):
        s += " opaque=%r" % bytes(f.opaque_data)
    elif isinstance(f, HeadersFrame) and getattr(f, "fields", None) is not None:
        s += " %r" % (f.fields,)
    return s


class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


class Timeout(Exception):
    pass


class Response:
    def __init__(self, stream_id):
        self.stream_id = stream_id
        self.informational = []  # field lists of 1xx responses
        self.headers = None  # the final response's fields, in order
        self.trailers = None
        self.body = bytearray()
        self.data_frames = 0
        self.ended = False
        self.reset = None  # RST_STREAM error code, when the stream was reset

    @property
    def status(self):
        return int(self.header(":status")) if self.headers else None

    def header(self, name):
        for n, v in self.headers or ():
            if n == name:
                return v
        return None

    def header_all(self, name):
        return [v for n, v in self.headers or () if n == name]


class H2Peer:
    """One TCP connection to an HTTP/2 server, driven frame by frame.

    Reading keeps a few things current whatever the test does with the frames:
    field blocks are decoded in order (so HPACK state is right) and attached to the
    HEADERS frame as `.fields`; SETTINGS and WINDOW_UPDATE frames update the
    server's settings and our send windows; the server's SETTINGS are acknowledged
    (RFC 9113 §6.5.3) unless `auto_ack` is off."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, auto_ack=True):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 30  # we are not testing ourselves
        self.auto_ack = auto_ack
        self.server_settings = {}
        self.server_settings_frames = 0
        self.settings_acks = 0
        self.send_conn_window = DEFAULT_WINDOW
        self.send_stream_windows = {}
        self.server_initial_window = DEFAULT_WINDOW
        self.server_max_frame = DEFAULT_MAX_FRAME
        self.pending = []  # frames read but not yet consumed
        self.log = []  # every frame read, for failure messages
        self._block = None  # (HEADERS frame, bytearray) while a field block is open
        self.next_stream_id = 1

    # ------------------------------------------------------------------ sending
    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, frame):
        self.send(frame.serialize())

    def send_raw(self, ftype, flags, stream_id, payload=b"", length=None):
        self.send(raw_frame(ftype, flags, stream_id, payload, length))

    def send_settings(self, pairs=(), ack=False):
        self.send_raw(SETTINGS, ACK if ack else 0, 0, settings_payload(pairs))

    def send_ping(self, opaque=b"ringside", ack=False):
        self.send_raw(PING, ACK if ack else 0, 0, opaque)

    def send_window_update(self, stream_id, increment):
        self.send_raw(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))

    def send_rst(self, stream_id, code=CANCEL):
        self.send_raw(RST_STREAM, 0, stream_id, struct.pack(">I", code))

    def send_goaway(self, last_stream_id=0, code=NO_ERROR, debug=b""):
        self.send_raw(GOAWAY, 0, 0, struct.pack(">II", last_stream_id, code) + debug)

    def send_priority(self, stream_id, depends_on=0, weight=16, exclusive=False):
        self.send_raw(PRIORITY, 0, stream_id, struct.pack(">IB", depends_on | (0x80000000 if exclusive else 0), weight - 1))

    def encode(self, headers):
        return self.encoder.encode(headers)

    def send_headers(self, stream_id, headers=None, end_stream=True, block=None, flags=None):
        """HEADERS with END_HEADERS. `block` is a raw field block; without it the
        list is HPACK-encoded with our encoder (and its dynamic table)."""
        if block is None:
            block = self.encode(headers if headers is not None else get_headers())
        if flags is None:
            flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self.send_raw(HEADERS, flags, stream_id, block)
        self.send_stream_windows.setdefault(stream_id, self.server_initial_window)

    def send_data(self, stream_id, data, end_stream=False):
        """DATA frames of at most the server's SETTINGS_MAX_FRAME_SIZE, without
        looking at flow-control windows (see `send_body` for that)."""
        step = self.server_max_frame
        if not data:
            self.send_raw(DATA, END_STREAM if end_stream else 0, stream_id, b"")
            return
        for i in range(0, len(data), step):
            last = i + step >= len(data)
            self.send_raw(DATA, END_STREAM if (end_stream and last) else 0, stream_id, data[i : i + step])
            self.send_conn_window -= len(data[i : i + step])
            if stream_id in self.send_stream_windows:
                self.send_stream_windows[stream_id] -= len(data[i : i + step])

    def send_body(self, stream_id, data, end_stream=True, timeout=None):
        """Sends `data` on the stream as flow control allows (RFC 9113 §6.9),
        reading the server's WINDOW_UPDATEs as needed. Frames read meanwhile stay
        pending for the test."""
        deadline = time.monotonic() + (timeout or self.timeout)
        self.send_stream_windows.setdefault(stream_id, self.server_initial_window)
        pos = 0
        view = memoryview(data)
        while pos < len(data) or (pos == 0 and not data):
            if not data:
                self.send_raw(DATA, END_STREAM if end_stream else 0, stream_id, b"")
                return
            room = min(self.send_conn_window, self.send_stream_windows[stream_id], self.server_max_frame, len(data) - pos)
            if room <= 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "stream %d: flow-control window stayed closed with %d of %d bytes sent (conn window %d, stream window %d); frames: %s"
                        % (stream_id, pos, len(data), self.send_conn_window, self.send_stream_windows[stream_id], self.frames_text())
                    )
                f = self._read_frame(min(left, 0.5), quiet=True)
                if f is not None:
                    self.pending.append(f)
                    if isinstance(f, RstStreamFrame) and f.stream_id == stream_id:
                        return  # the server gave up on the stream: the test will see why
                    if isinstance(f, GoAwayFrame):
                        return
                continue
            last = pos + room >= len(data)
            self.send_raw(DATA, END_STREAM if (end_stream and last) else 0, stream_id, bytes(view[pos : pos + room]))
            self.send_conn_window -= room
            self.send_stream_windows[stream_id] -= room
            pos += room

    def new_stream_id(self):
        sid = self.next_stream_id
        self.next_stream_id += 2
        return sid

    # ------------------------------------------------------------------ handshake
    def handshake(self, settings=(), preface=PREFACE):
        """Sends the client connection preface (RFC 9113 §3.4) with our SETTINGS,
        checks the server's preface starts with a SETTINGS frame, acknowledges it
        and waits for the server's ACK of ours. Returns the server's settings."""
        self.send(preface + raw_frame(SETTINGS, 0, 0, settings_payload(settings)))
        first = self.next_frame(what="the server's SETTINGS (its connection preface, RFC 9113 §3.4)")
        assert isinstance(first, SettingsFrame) and "ACK" not in first.flags, (
            "the server's first frame must be a SETTINGS frame without ACK (RFC 9113 §3.4), got %s" % describe(first)
        )
        self.expect(lambda f: isinstance(f, SettingsFrame) and "ACK" in f.flags, "the SETTINGS ACK for our SETTINGS (RFC 9113 §6.5.3)")
        return self.server_settings

    # ------------------------------------------------------------------ reading
    def _fill(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            d = self.sock.recv(1 << 20)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            d = b""
        if not d:
            self.eof = True
            raise Closed()
        self.buf += d
        return True

    def _read_frame(self, timeout, quiet=False):
        """The next frame from the socket, or None after `timeout`; raises Closed at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + length:
                    head = bytes(self.buf[:9])
                    body = bytes(self.buf[9 : 9 + length])
                    del self.buf[: 9 + length]
                    return self._on_frame(head, body)
            if self.eof:
                raise Closed()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._fill(left)

    def _on_frame(self, head, body):
        f, length = Frame.parse_frame_header(memoryview(head), strict=False)
        f.type = head[3]
        f.raw_flags = head[4]
        f.payload = body
        f.parse_body(memoryview(body))
        f.fields = None
        self.log.append(f)
        if isinstance(f, (HeadersFrame, PushPromiseFrame)):
            self._block = (f, bytearray(f.data))
            if "END_HEADERS" in f.flags:
                self._finish_block()
        elif isinstance(f, ContinuationFrame) and self._block is not None:
            self._block[1].extend(f.data)
            if "END_HEADERS" in f.flags:
                self._finish_block()
        elif isinstance(f, SettingsFrame):
            if "ACK" in f.flags:
                self.settings_acks += 1
            else:
                self.server_settings_frames += 1
                self._apply_settings(f.settings)
                if self.auto_ack:
                    self.send_settings(ack=True)
        elif isinstance(f, WindowUpdateFrame):
            if f.stream_id == 0:
                self.send_conn_window += f.window_increment
            elif f.stream_id in self.send_stream_windows:
                self.send_stream_windows[f.stream_id] += f.window_increment
        return f

    def _finish_block(self):
        hf, block = self._block
        self._block = None
        hf.fields = [(n.decode("latin-1") if isinstance(n, bytes) else n, v.decode("latin-1") if isinstance(v, bytes) else v)
                     for n, v in self.decoder.decode(bytes(block), raw=True)]

    def _apply_settings(self, settings):
        for k, v in settings.items():
            self.server_settings[k] = v
            if k == INITIAL_WINDOW_SIZE:
                delta = v - self.server_initial_window  # RFC 9113 §6.9.2
                self.server_initial_window = v
                for sid in self.send_stream_windows:
                    self.send_stream_windows[sid] += delta
            elif k == MAX_FRAME_SIZE:
                self.server_max_frame = v

    def next_frame(self, timeout=None, what="a frame"):
        """The next frame (pending first); fails the test on timeout or EOF."""
        if self.pending:
            return self.pending.pop(0)
        try:
            f = self._read_frame(self.timeout if timeout is None else timeout)
        except Closed:
            raise AssertionError("connection closed while waiting for %s; frames: %s" % (what, self.frames_text()))
        if f is None:
            raise AssertionError("no frame within %.1fs while waiting for %s; frames: %s" % (self.timeout if timeout is None else timeout, what, self.frames_text()))
        return f

    def poll_frame(self, timeout):
        """The next frame, None on timeout; raises Closed at EOF."""
        if self.pending:
            return self.pending.pop(0)
        return self._read_frame(timeout)

    def frames_text(self, last=40):
        fs = self.log[-last:]
        tail = " unparsed bytes: %r" % bytes(self.buf[:200]) if self.buf else ""
        return "[" + "; ".join(describe(f) for f in fs) + "]" + (" (EOF)" if self.eof else "") + tail

    def expect(self, predicate, what, timeout=None):
        """Reads until a frame satisfies `predicate`; other frames are dropped
        (they remain in the log). Fails on timeout or EOF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        skipped = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0 and not self.pending:
                raise AssertionError("no %s within %.1fs; frames: %s" % (what, self.timeout if timeout is None else timeout, self.frames_text()))
            f = self.next_frame(max(left, 0.001), what=what)
            if predicate(f):
                return f
            skipped.append(f)

    # ------------------------------------------------------------------ expectations
    def expect_closed(self, timeout=None, what="the connection to close"):
        """Reads (dropping frames) until the server closes the connection."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self.pending = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the server did not close the connection within %.1fs (waiting for %s); frames: %s"
                                         % (self.timeout if timeout is None else timeout, what, self.frames_text()))
                self._read_frame(left)
        except Closed:
            return

    def expect_goaway(self, code, timeout=None, close=True):
        """A connection error (RFC 9113 §5.4.1): GOAWAY with `code`, then (when
        `close`) the connection closed. Frames before the GOAWAY are allowed."""
        what = "GOAWAY %s (a connection error, RFC 9113 §5.4.1)" % code_name(code)
        try:
            g = self.expect(lambda f: isinstance(f, GoAwayFrame), what, timeout)
        except AssertionError:
            raise
        assert g.error_code == code, "expected %s, got %s; frames: %s" % (what, describe(g), self.frames_text())
        if close:
            self.expect_closed(timeout, "the close that follows a GOAWAY for a connection error")
        return g

    def expect_stream_error(self, stream_id, code, timeout=None, allow_response=False):
        """A stream error (RFC 9113 §5.4.2): RST_STREAM with `code` on the stream,
        or the same code as a connection error, since "an endpoint MAY choose to
        treat a stream error as a connection error" (§5.4). With `allow_response`
        (RFC 9113 §8.1.1: "a server MAY send an HTTP response prior to closing or
        resetting the stream") a 4xx response that ends the stream also passes.
        Returns ("rst"|"goaway"|"response", frame or Response)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        resp = Response(stream_id)
        what = "RST_STREAM %s on stream %d (or GOAWAY %s)" % (code_name(code), stream_id, code_name(code))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s within the time; frames: %s" % (what, self.frames_text()))
            f = self.next_frame(left, what=what)
            if isinstance(f, RstStreamFrame) and f.stream_id == stream_id:
                assert f.error_code == code, "expected %s, got %s; frames: %s" % (what, describe(f), self.frames_text())
                if resp.headers is not None:
                    assert 400 <= resp.status < 500, "a response before the reset of a malformed request must say why (4xx), got %d" % resp.status
                return "rst", f
            if isinstance(f, GoAwayFrame):
                assert f.error_code == code, "expected %s, got %s; frames: %s" % (what, describe(f), self.frames_text())
                self.expect_closed(timeout, "the close that follows a GOAWAY for a connection error")
                return "goaway", f
            if f.stream_id == stream_id and isinstance(f, (HeadersFrame, DataFrame)):
                assert allow_response, "expected %s and no response, got %s; frames: %s" % (what, describe(f), self.frames_text())
                self._feed_response(resp, f)
                if resp.ended:
                    assert 400 <= resp.status < 500, "expected %s or a 4xx response, got status %d; frames: %s" % (what, resp.status, self.frames_text())
                    return "response", resp
            # frames of other streams and connection-level frames are fine meanwhile

    def ping(self, opaque=None, timeout=None):
        """A PING round trip; every frame the server sent before the ACK is kept
        pending. Proves the server has read everything we sent before it."""
        opaque = opaque or os.urandom(8)
        self.send_ping(opaque)
        seen = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.pending = seen + self.pending
                raise AssertionError("no PING ACK within the time; frames: %s" % self.frames_text())
            f = self.next_frame(left, what="the PING ACK")
            if isinstance(f, PingFrame) and "ACK" in f.flags and bytes(f.opaque_data) == opaque:
                self.pending = seen + self.pending
                return
            seen.append(f)

    # ------------------------------------------------------------------ requests
    def _feed_response(self, resp, f):
        if isinstance(f, HeadersFrame):
            fields = f.fields
            assert fields is not None, "HEADERS without END_HEADERS: %s" % describe(f)
            status = dict(fields).get(":status")
            if resp.headers is None and status is not None and status.startswith("1"):
                resp.informational.append(fields)
            elif resp.headers is None:
                resp.headers = fields
            else:
                resp.trailers = fields
        elif isinstance(f, DataFrame):
            resp.body += f.data
            resp.data_frames += 1
        if "END_STREAM" in f.flags:
            resp.ended = True

    def read_response(self, stream_id, timeout=None, window_updates=True, others=None):
        """Reads the stream's response to its END_STREAM. With `window_updates`,
        every DATA frame is given back at once on the stream and the connection
        (RFC 9113 §6.9) so any body size flows. Frames of other streams go to
        `others` (a dict stream -> Response) when given, else stay pending."""
        resp = Response(stream_id)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        keep = []
        try:
            while not resp.ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("stream %d: response not complete within %.1fs (%d body bytes so far); frames: %s"
                                         % (stream_id, self.timeout if timeout is None else timeout, len(resp.body), self.frames_text()))
                # a stall of more than `self.timeout` fails even within a longer overall bound
                f = self.next_frame(min(left, self.timeout), what="the response on stream %d" % stream_id)
                if isinstance(f, DataFrame) and window_updates and f.flow_controlled_length:
                    self.send_window_update(0, f.flow_controlled_length)
                    if "END_STREAM" not in f.flags:
                        self.send_window_update(f.stream_id, f.flow_controlled_length)
                if f.stream_id == stream_id:
                    if isinstance(f, RstStreamFrame):
                        raise AssertionError("stream %d reset by the server: %s; frames: %s" % (stream_id, describe(f), self.frames_text()))
                    self._feed_response(resp, f)
                elif isinstance(f, GoAwayFrame) and f.error_code != NO_ERROR:
                    raise AssertionError("GOAWAY while waiting for stream %d: %s; frames: %s" % (stream_id, describe(f), self.frames_text()))
                elif others is not None and f.stream_id != 0 and isinstance(f, (HeadersFrame, DataFrame, RstStreamFrame)):
                    r = others.setdefault(f.stream_id, Response(f.stream_id))
                    if isinstance(f, RstStreamFrame):
                        r.reset = f.error_code
                        r.ended = True
                    else:
                        self._feed_response(r, f)
                elif f.stream_id != 0:
                    keep.append(f)
        finally:
            self.pending = keep + self.pending
        return resp

    def read_responses(self, stream_ids, timeout=None):
        """Reads responses for several streams at once; returns {stream: Response}."""
        got = {}
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        for sid in stream_ids:
            if sid in got and got[sid].ended:
                continue
            r = self.read_response(sid, timeout=max(deadline - time.monotonic(), 0.001), others=got)
            if sid in got:  # frames that came earlier while reading another stream
                earlier = got[sid]
                earlier.body += r.body
                earlier.data_frames += r.data_frames
                earlier.headers = earlier.headers or r.headers
                earlier.trailers = earlier.trailers or r.trailers
                earlier.ended = True
            else:
                got[sid] = r
        return got

    def request(self, headers=None, body=None, stream_id=None, timeout=None, **kw):
        """A whole request on a new (or given) stream; returns its Response."""
        sid = stream_id or self.new_stream_id()
        if stream_id is not None:
            self.next_stream_id = max(self.next_stream_id, sid + 2)
        headers = headers if headers is not None else get_headers(**kw)
        self.send_headers(sid, headers, end_stream=body is None)
        if body is not None:
            self.send_body(sid, body, end_stream=True, timeout=timeout)
        return self.read_response(sid, timeout=timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()




# ---------------------------------------------------------------------- targets
class Target:
    """The HTTP/2 server under test. Normally ringside's outbound port with the
    test origin behind it. To check the suites themselves against nghttp2's
    reference programs:
      H2_TEST_NGHTTPD=host:port  a running `nghttpd --no-tls -d DIR -m 100 -W 20
                                 PORT`, DIR holding files `echo` and `download`;
                                 no origin, so the tests that need its echo skip;
      H2_TEST_NGHTTPX=1          nghttpx (Debian nghttp2-proxy) started per test
                                 in front of the test origin, with ringside's
                                 windows."""

    def __init__(self, kind, host, port, authority, proxy=None, origin=None, initial_window=65536):
        self.kind = kind  # "ringside", "nghttpd" or "nghttpx"
        self.host = host
        self.port = port
        self.authority = authority
        self.proxy = proxy
        self.origin = origin
        self.initial_window = initial_window  # what the server is expected to announce

    def need_origin(self, why="needs the test origin's echo (ringside only)"):
        import pytest

        if self.origin is None:
            pytest.skip(why)

    def need_ringside(self, why):
        import pytest

        if self.kind != "ringside":
            pytest.skip(why)

    def connect(self, timeout, **kw):
        return H2Peer(self.port, host=self.host, timeout=timeout, **kw)

    def origin_saw(self, marker):
        """Requests the origin received whose head contains `marker`."""
        if self.origin is None:
            return []
        m = marker.encode() if isinstance(marker, str) else marker
        with self.origin.lock:
            return [r for r in self.origin.requests if m in r.raw_head]


def _start_nghttpx(request, origin):
    import subprocess

    import pytest
    from conftest import free_ports

    (port,) = free_ports(1)
    log = request.getfixturevalue("tmp_path") / "nghttpx.log"
    p = subprocess.Popen(
        ["nghttpx", "--conf=/dev/null", "--workers=1", "--frontend=127.0.0.1,%d;no-tls" % port,
         "--backend=127.0.0.1,%d" % origin.port, "--frontend-http2-window-size=65536",
         "--frontend-http2-connection-window-size=1048576", "--errorlog-file=%s" % log, "--accesslog-file=/dev/null"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    request.addfinalizer(lambda: (p.terminate(), p.wait(10)))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return port
        except OSError:
            if p.poll() is not None:
                break
            time.sleep(0.05)
    pytest.fail("nghttpx did not start: %s" % log.read_text(errors="replace") if log.exists() else "nghttpx did not start")


def make_target(request):
    """Builds the Target for a test (see Target)."""
    spec = os.environ.get("H2_TEST_NGHTTPD")
    if spec:
        host, _, port = spec.rpartition(":")
        return Target("nghttpd", host or "127.0.0.1", int(port), "%s:%s" % (host or "127.0.0.1", port), initial_window=65535)
    if os.environ.get("H2_TEST_NGHTTPX"):
        origin = request.getfixturevalue("origin")
        port = _start_nghttpx(request, origin)
        return Target("nghttpx", "127.0.0.1", port, "origin.test", origin=origin)
    proxy = request.getfixturevalue("proxy")
    origin = request.getfixturevalue("origin")
    return Target("ringside", "127.0.0.1", proxy.outbound, "origin.test", proxy=proxy, origin=origin)
