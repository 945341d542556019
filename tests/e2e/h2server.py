"""A scripted raw HTTP/2 server (h2c, prior knowledge) for the client-side
conformance tests: ringside connects to it as its upstream.

Like h2peer on the other side, it is deliberately not a protocol library: a
test's script decides every frame the server sends, well-formed (hyperframe,
hpack) or not (`raw_frame`, `literal_block`), and every frame ringside sends is
kept, in order, for the test to check.

Each accepted connection gets a reader thread (it reads the client connection
preface, then frames; decodes field blocks in order so the HPACK state stays
right; follows ringside's SETTINGS and WINDOW_UPDATEs to know the send windows)
and a script thread running `script(conn)`. An exception in a script is kept in
`H2Server.errors` and fails the test (see `H2Server.check`). Every wait is
bounded: a script or test that waits for a frame fails with the list of frames
it did see.
"""

import socket
import struct
import threading
import time
import traceback

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    HeadersFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from h2peer import (
    ACK,
    DATA,
    DEFAULT_MAX_FRAME,
    DEFAULT_WINDOW,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    MAX_FRAME_SIZE,
    NO_ERROR,
    PING,
    PREFACE,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    describe,
    raw_frame,
    settings_payload,
)


class Request:
    """A request as the server read it: the HEADERS frame's fields, the body
    read so far, and whether the stream ended (END_STREAM)."""

    def __init__(self, stream_id, fields, ended):
        self.stream_id = stream_id
        self.fields = fields
        self.body = bytearray()
        self.ended = ended

    def header(self, name):
        for n, v in self.fields:
            if n == name:
                return v
        return None


class Conn:
    """One connection from ringside, seen from the server."""

    def __init__(self, server, sock, index):
        self.server = server
        self.sock = sock
        self.index = index  # 0 for the first connection ringside opened, ...
        self.timeout = server.timeout
        self.preface = b""
        self.frames = []  # every frame ringside sent, in order
        self.cursor = 0  # the script's read position in `frames`
        self.eof = False
        self.reset = False  # the connection ended with a TCP RST
        self.cond = threading.Condition()
        self.wlock = threading.Lock()
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 30
        self._block = None
        # ringside's settings and windows: what the server may send
        self.peer_settings = {}
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = DEFAULT_MAX_FRAME
        self.send_conn_window = DEFAULT_WINDOW
        self.send_stream_windows = {}
        self.settings_acks = 0  # ringside's ACKs of our SETTINGS
        self.ack_positions = []  # index in `frames` of each of those ACKs
        self.closed_by_us = False

    # ------------------------------------------------------------ reading
    def _reader(self):
        buf = bytearray()
        try:
            while len(buf) < len(PREFACE):
                d = self.sock.recv(65536)
                if not d:
                    return
                buf += d
            self.preface = bytes(buf[: len(PREFACE)])
            del buf[: len(PREFACE)]
            if self.preface != PREFACE:
                return
            while True:
                while len(buf) >= 9:
                    length = int.from_bytes(buf[:3], "big")
                    if len(buf) < 9 + length:
                        break
                    head, body = bytes(buf[:9]), bytes(buf[9 : 9 + length])
                    del buf[: 9 + length]
                    self._on_frame(head, body)
                d = self.sock.recv(1 << 20)
                if not d:
                    return
                buf += d
        except ConnectionResetError:
            self.reset = True
        except OSError:
            pass
        except Exception:  # a frame the reader could not take: the test must hear of it
            self.server.errors.append("connection %d reader: %s" % (self.index, traceback.format_exc()))
        finally:
            with self.cond:
                self.eof = True
                self.cond.notify_all()

    def _on_frame(self, head, body):
        f, _ = Frame.parse_frame_header(memoryview(head), strict=False)
        f.type = head[3]
        f.raw_flags = head[4]
        f.payload = body
        f.parse_body(memoryview(body))
        f.fields = None
        f.at = time.monotonic()
        if isinstance(f, (HeadersFrame, PushPromiseFrame)):
            self._block = (f, bytearray(f.data))
            if "END_HEADERS" in f.flags:
                self._finish_block()
        elif isinstance(f, ContinuationFrame) and self._block is not None:
            self._block[1].extend(f.data)
            if "END_HEADERS" in f.flags:
                self._finish_block()
        with self.cond:
            if isinstance(f, SettingsFrame):
                if "ACK" in f.flags:
                    self.settings_acks += 1
                    self.ack_positions.append(len(self.frames))
                else:
                    for k, v in f.settings.items():
                        self.peer_settings[k] = v
                        if k == INITIAL_WINDOW_SIZE:
                            delta = v - self.peer_initial_window  # RFC 9113 §6.9.2
                            self.peer_initial_window = v
                            for sid in self.send_stream_windows:
                                self.send_stream_windows[sid] += delta
                        elif k == MAX_FRAME_SIZE:
                            self.peer_max_frame = v
            elif isinstance(f, WindowUpdateFrame):
                if f.stream_id == 0:
                    self.send_conn_window += f.window_increment
                else:
                    self.send_stream_windows.setdefault(f.stream_id, self.peer_initial_window)
                    self.send_stream_windows[f.stream_id] += f.window_increment
            elif isinstance(f, HeadersFrame):
                self.send_stream_windows.setdefault(f.stream_id, self.peer_initial_window)
            self.frames.append(f)
            self.cond.notify_all()

    def _finish_block(self):
        hf, block = self._block
        self._block = None
        hf.fields = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.decoder.decode(bytes(block), raw=True)]

    def frames_text(self, frames=None):
        fs = self.frames if frames is None else frames
        return "[" + "; ".join(describe(f) for f in fs[-40:]) + "]" + (" (EOF)" if self.eof else "")

    def next(self, pred=None, what="a frame", timeout=None):
        """The script's next frame from ringside (after `cursor`) matching
        `pred` (frames skipped are passed); fails on timeout or EOF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self.cond:
            while True:
                while self.cursor < len(self.frames):
                    f = self.frames[self.cursor]
                    self.cursor += 1
                    if pred is None or pred(f):
                        return f
                left = deadline - time.monotonic()
                if self.eof:
                    raise AssertionError("connection %d: ringside closed it while the server waited for %s; frames: %s"
                                         % (self.index, what, self.frames_text()))
                if left <= 0:
                    raise AssertionError("connection %d: no %s from ringside within %.1fs; frames: %s"
                                         % (self.index, what, self.timeout if timeout is None else timeout, self.frames_text()))
                self.cond.wait(left)

    def poll(self, timeout):
        """The next frame after `cursor`, or None after `timeout` (or at EOF)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.cursor >= len(self.frames):
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    return None
                self.cond.wait(left)
            f = self.frames[self.cursor]
            self.cursor += 1
            return f

    def wait_for(self, pred, what, timeout=None):
        """Any frame in the whole log matching `pred` (for the test's thread)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self.cond:
            while True:
                for f in self.frames:
                    if pred(f):
                        return f
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise AssertionError("connection %d: no %s from ringside%s; frames: %s"
                                         % (self.index, what, " before it closed" if self.eof else " within the time", self.frames_text()))
                self.cond.wait(left)

    def wait_eof(self, timeout=None):
        """True once ringside closed the connection, False after `timeout`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self.cond:
            while not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def wait_settings_ack(self, timeout=None):
        self.wait_for(lambda f: isinstance(f, SettingsFrame) and "ACK" in f.flags,
                      "SETTINGS ACK for the server's SETTINGS (RFC 9113 §6.5.3)", timeout)

    # ------------------------------------------------------------ sending
    def send(self, data):
        with self.wlock:
            self.sock.sendall(data)

    def send_raw(self, ftype, flags, stream_id, payload=b"", length=None):
        self.send(raw_frame(ftype, flags, stream_id, payload, length))

    def send_settings(self, pairs=(), ack=False):
        self.send_raw(SETTINGS, ACK if ack else 0, 0, settings_payload(pairs))

    def send_ping(self, opaque, ack=False):
        self.send_raw(PING, ACK if ack else 0, 0, opaque)

    def send_window_update(self, stream_id, increment):
        self.send_raw(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))

    def send_rst(self, stream_id, code):
        self.send_raw(RST_STREAM, 0, stream_id, struct.pack(">I", code))

    def send_goaway(self, last_stream_id=0, code=NO_ERROR, debug=b""):
        self.send_raw(GOAWAY, 0, 0, struct.pack(">II", last_stream_id, code) + debug)

    def send_headers(self, stream_id, fields=None, end_stream=False, block=None):
        """HEADERS with END_HEADERS: `fields` HPACK-encoded with the server's
        encoder, or `block` sent as it is (see h2peer.literal_block)."""
        if block is None:
            with self.wlock:
                block = self.encoder.encode(fields)
                self.sock.sendall(raw_frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream_id, block))
            return
        self.send_raw(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream_id, block)

    def send_data(self, stream_id, data, end_stream=False):
        """DATA frames of at most ringside's SETTINGS_MAX_FRAME_SIZE, without
        looking at the flow-control windows (they are counted down anyway)."""
        step = self.peer_max_frame
        chunks = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
        out = bytearray()
        for i, c in enumerate(chunks):
            out += raw_frame(DATA, END_STREAM if (end_stream and i == len(chunks) - 1) else 0, stream_id, c)
        with self.cond:
            self.send_conn_window -= len(data)
            self.send_stream_windows.setdefault(stream_id, self.peer_initial_window)
            self.send_stream_windows[stream_id] -= len(data)
        self.send(bytes(out))

    def window(self, stream_id):
        with self.cond:
            return min(self.send_conn_window, self.send_stream_windows.get(stream_id, self.peer_initial_window))

    def send_body(self, stream_id, data, end_stream=True, timeout=None):
        """`data` as flow control allows (RFC 9113 §6.9), waiting for ringside's
        WINDOW_UPDATEs; fails if the window stays closed past `timeout`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        pos = 0
        while pos < len(data) or not data:
            room = min(self.window(stream_id), self.peer_max_frame, len(data) - pos)
            if not data or room > 0:
                last = pos + room >= len(data)
                self.send_data(stream_id, data[pos : pos + room], end_stream=end_stream and last)
                pos += room
                if not data:
                    return
                continue
            with self.cond:
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise AssertionError("connection %d stream %d: window stayed closed with %d of %d bytes sent; frames: %s"
                                         % (self.index, stream_id, pos, len(data), self.frames_text()))
                self.cond.wait(min(left, 0.1))

    def respond(self, stream_id, status=200, body=b"", fields=(), trailers=None):
        """A whole response: HEADERS, DATA within the windows, trailers."""
        head = [(":status", str(status))] + list(fields)
        if not body and trailers is None:
            self.send_headers(stream_id, head, end_stream=True)
            return
        self.send_headers(stream_id, head)
        if body:
            self.send_body(stream_id, body, end_stream=trailers is None)
        if trailers is not None:
            self.send_headers(stream_id, trailers, end_stream=True)

    # ------------------------------------------------------------ the exchange
    def handshake(self, settings=(), ack=True):
        """The server's connection preface (a SETTINGS frame, RFC 9113 §3.4),
        sent first; then ringside's preface is read and checked (the client
        magic, then a SETTINGS frame), and its SETTINGS are acknowledged
        (§6.5.3). Returns ringside's SETTINGS frame."""
        self.send_settings(settings)
        first = self.next(what="ringside's SETTINGS (its connection preface, RFC 9113 §3.4)")
        assert self.preface == PREFACE, "connection %d: the client preface was %r" % (self.index, self.preface)
        assert isinstance(first, SettingsFrame) and "ACK" not in first.flags and first.stream_id == 0, (
            "the first frame after the client magic must be SETTINGS (RFC 9113 §3.4), got %s" % describe(first))
        if ack:
            self.send_settings(ack=True)
        return first

    def read_request(self, body=True, timeout=None, window_updates=True):
        """The next request's HEADERS (not a trailer block) and, with `body`, its
        DATA up to END_STREAM, each DATA frame given back on the connection and
        the stream when `window_updates`."""
        h = self.next(lambda f: isinstance(f, HeadersFrame), "a request's HEADERS", timeout)
        assert h.fields is not None, "HEADERS without END_HEADERS: %s" % describe(h)
        r = Request(h.stream_id, h.fields, "END_STREAM" in h.flags)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while body and not r.ended:
            f = self.next(lambda f: f.stream_id == r.stream_id, "the body of the request on stream %d" % r.stream_id,
                          max(deadline - time.monotonic(), 0.001))
            if isinstance(f, DataFrame):
                r.body += f.data
                if window_updates and f.flow_controlled_length:
                    self.send_window_update(0, f.flow_controlled_length)
                    if "END_STREAM" not in f.flags:
                        self.send_window_update(f.stream_id, f.flow_controlled_length)
            elif isinstance(f, RstStreamFrame):
                raise AssertionError("ringside reset the request on stream %d: %s" % (r.stream_id, describe(f)))
            if "END_STREAM" in f.flags:
                r.ended = True
        return r

    def serve(self, handler, timeout=None):
        """Reads requests and calls handler(request) for each until ringside
        closes the connection (or no request comes within `timeout`)."""
        while True:
            with self.cond:
                while self.cursor < len(self.frames) and not isinstance(self.frames[self.cursor], HeadersFrame):
                    self.cursor += 1
                if self.cursor >= len(self.frames):
                    deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
                    while self.cursor >= len(self.frames) and not self.eof and time.monotonic() < deadline:
                        self.cond.wait(deadline - time.monotonic())
                    if self.cursor >= len(self.frames):
                        return
                    continue
            handler(self.read_request(timeout=timeout))

    def hold(self, timeout=None):
        """Keeps the connection open (reading) until ringside closes it or the
        time passes; returns True when ringside closed it."""
        return self.wait_eof(timeout)

    def close(self):
        self.closed_by_us = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Closes with a TCP RST (SO_LINGER 0)."""
        self.closed_by_us = True
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class H2Server:
    """Listens on 127.0.0.1; runs `script(conn)` for each connection ringside
    opens. `script` may also be a list: the n-th connection runs script[n]
    (the last one for any later connection)."""

    def __init__(self, script, timeout=5.0):
        self.script = script
        self.timeout = timeout
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.errors = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.closing = False
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    def _accept(self):
        while not self.closing:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.cond:
                c = Conn(self, s, len(self.conns))
                self.conns.append(c)
                self.cond.notify_all()
            r = threading.Thread(target=c._reader, daemon=True)
            r.start()
            w = threading.Thread(target=self._run, args=(c,), daemon=True)
            w.start()
            self.threads.append(w)

    def _run(self, c):
        script = self.script
        if isinstance(script, (list, tuple)):
            script = script[min(c.index, len(script) - 1)]
        try:
            script(c)
        except Exception:
            if not (self.closing and c.closed_by_us):
                self.errors.append("connection %d script: %s" % (c.index, traceback.format_exc()))

    def wait_conns(self, n, timeout=None):
        """Waits until ringside opened `n` connections; returns the list."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self.cond:
            while len(self.conns) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("ringside opened %d connection(s) to the server, expected %d" % (len(self.conns), n))
                self.cond.wait(left)
            return list(self.conns)

    def join(self, timeout=None):
        """Waits for the scripts to finish (bounded)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        for t in list(self.threads):
            t.join(max(deadline - time.monotonic(), 0.001))

    def check(self):
        """Fails the test with the scripts' errors, if any."""
        if self.errors:
            raise AssertionError("the scripted server failed:\n" + "\n".join(self.errors))

    def close(self):
        self.closing = True
        try:
            self.sock.close()
        except OSError:
            pass
        for c in list(self.conns):
            c.close()
