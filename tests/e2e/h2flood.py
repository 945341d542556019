"""Raw HTTP/2 frames over a socket for the flood tests (test_h2_floods.py).

The flood connection is written by hand: frames are packed here (checked against
hyperframe's serializer in test_h2_floods.py), header blocks are encoded by a small
HPACK encoder that never touches the dynamic table unless asked (so one encoded block
can be sent on any number of streams), and what the server sends back is parsed with
hyperframe and decoded with hpack. The well-behaved connections (bystanders, fresh
connections, the control client) use Python's h2 state machine instead.

Nothing here knows about ringside: a target is a host, a port and a pid, so the same
helpers run against nghttpd to check the frames themselves.
"""

import http.client
import os
import select
import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
from hpack.table import HeaderTable
from hyperframe.frame import Frame

from h2peer import code_name, hpack_int, hpack_str, raw_frame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags (RFC 9113 §6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
F_END_STREAM = 0x1
F_ACK = 0x1
F_END_HEADERS = 0x4

# Error codes (RFC 9113 §7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
ENHANCE_YOUR_CALM = 0xB


# SETTINGS identifiers (RFC 9113 §6.5.2).
S_HEADER_TABLE_SIZE = 0x1
S_ENABLE_PUSH = 0x2
S_MAX_CONCURRENT_STREAMS = 0x3
S_INITIAL_WINDOW_SIZE = 0x4
S_MAX_FRAME_SIZE = 0x5
S_MAX_HEADER_LIST_SIZE = 0x6

CLK_TCK = os.sysconf("SC_CLK_TCK")


err_name = code_name


# ---------------------------------------------------------------- frames


def frame(ftype, flags, sid, payload=b""):
    """One frame's bytes: 24-bit length, type, flags, 31-bit stream id, payload."""
    return raw_frame(ftype, flags, sid & 0x7FFFFFFF, payload)


def settings_frame(pairs=(), ack=False):
    return frame(SETTINGS, F_ACK if ack else 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def ping_frame(opaque=b"\0" * 8, ack=False):
    return frame(PING, F_ACK if ack else 0, 0, opaque)


def rst_frame(sid, code):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def window_update_frame(sid, increment):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", increment & 0x7FFFFFFF))


def headers_frame(sid, block, end_stream=True, end_headers=True):
    flags = (F_END_STREAM if end_stream else 0) | (F_END_HEADERS if end_headers else 0)
    return frame(HEADERS, flags, sid, block)


def data_frame(sid, data, end_stream=False):
    return frame(DATA, F_END_STREAM if end_stream else 0, sid, data)


# ---------------------------------------------------------------- HPACK (RFC 7541)

_STATIC = HeaderTable.STATIC_TABLE  # 1-based in the RFC: _STATIC[i - 1]
_STATIC_FULL = {}
_STATIC_NAME = {}
for _i, (_n, _v) in enumerate(_STATIC, 1):
    _STATIC_FULL.setdefault((_n, _v), _i)
    _STATIC_NAME.setdefault(_n, _i)


hp_int = hpack_int
hp_str = hpack_str


def hp_indexed(index):
    """Indexed header field (§6.1): one entry of the static or dynamic table."""
    return hp_int(index, 7, 0x80)


def hp_literal(name, value, incremental=False):
    """Literal header field (§6.2): without indexing, or with incremental indexing
    (which adds the field to the dynamic table, as index 62 when it is the newest)."""
    if isinstance(name, str):
        name = name.encode("latin-1")
    prefix, first = (6, 0x40) if incremental else (4, 0x00)
    idx = _STATIC_NAME.get(name)
    if idx is not None:
        return hp_int(idx, prefix, first) + hp_str(value)
    return bytes([first]) + hp_str(name) + hp_str(value)


def hp_field(name, value):
    """A field that leaves the dynamic table alone: a static-table index when the whole
    field is there, else a literal without indexing."""
    if isinstance(name, str):
        name = name.encode("latin-1")
    if isinstance(value, str):
        value = value.encode("latin-1")
    idx = _STATIC_FULL.get((name, value))
    if idx is not None:
        return hp_indexed(idx)
    return hp_literal(name, value)


def request_block(method, path, authority, scheme="http", extra=()):
    """A request's header block that is valid on any stream of any connection."""
    fields = [(":method", method), (":scheme", scheme), (":path", path), (":authority", authority)]
    fields += list(extra)
    return b"".join(hp_field(n, v) for n, v in fields)


# ---------------------------------------------------------------- process accounting


def proc_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_seconds(pid):
    """utime + stime of every thread of the process, in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is field 3 (state); utime is field 14, stime field 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# ---------------------------------------------------------------- the raw connection


class Closed(Exception):
    pass


class RawConn:
    """A client connection driven frame by frame. What the server sends is parsed as it
    arrives (pump()); the connection's end is recorded in `closed`: "goaway" (a GOAWAY
    frame arrived), "eof" (the server closed its side) or "reset" (ECONNRESET/EPIPE)."""

    def __init__(self, host, port, rcvbuf=None, sndbuf=None, timeout=5.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Buffer sizes are set before connect so that the window scale follows them.
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.inbuf = bytearray()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 30
        self.decoder.max_allowed_table_size = 1 << 20
        self.server_settings = {}
        self.settings_acks = 0
        self.ping_acks = 0
        self.goaway = None  # (last_stream_id, error_code, debug data) of the last GOAWAY
        self.goaways = []  # every GOAWAY, in order
        self.closed = None  # "goaway", "eof", "reset"
        self.close_detail = ""
        self.rst = {}  # stream id -> error code
        self.responses = {}  # stream id -> list of (name, value) (str), the first header block
        self.ended = set()  # streams the server ended (END_STREAM)
        self.data_bytes = {}  # stream id -> DATA payload bytes received
        self.frames_in = 0
        self.frame_types_in = {}
        self._block = None  # (stream id, bytearray) of a header block awaiting CONTINUATION
        self.bytes_out = 0
        self.eof = False

    # ------------------------------------------------------------ setup
    def handshake(self, settings=((S_ENABLE_PUSH, 0),), timeout=None):
        """Preface and SETTINGS; waits for the server's SETTINGS and acknowledges them."""
        self.send(PREFACE + settings_frame(settings))
        deadline = time.monotonic() + (timeout or self.timeout)
        while "got" not in self.server_settings:
            if self.closed:
                raise Closed("closed during the handshake (%s%s), having sent %r" % (self.closed, " " + self.close_detail if self.close_detail else "", bytes(self.inbuf[:120])))
            if time.monotonic() > deadline:
                raise Closed("no SETTINGS from the server within %.1fs (got %r)" % (timeout or self.timeout, bytes(self.inbuf[:200])))
            self.pump(0.1)
        self.send(settings_frame(ack=True))
        return self

    # ------------------------------------------------------------ I/O
    def send(self, data):
        try:
            self.sock.sendall(data)
            self.bytes_out += len(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            self._set_closed("reset", repr(e))
            raise Closed(repr(e))

    def pump(self, timeout=0.0):
        """Reads what has arrived (waiting up to timeout for the first bytes) and parses
        it. Returns the number of bytes read; 0 at EOF or when nothing came."""
        if self.eof:
            return 0
        try:
            r, _, _ = select.select([self.sock], [], [], timeout)
        except ValueError:
            return 0
        if not r:
            return 0
        total = 0
        while True:
            try:
                d = self.sock.recv(262144, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except (ConnectionResetError, BrokenPipeError) as e:
                self._set_closed("reset", repr(e))
                break
            if not d:
                self._set_closed("eof", "")
                break
            total += len(d)
            self.inbuf += d
            if len(d) < 262144:
                break
        self._parse()
        return total

    def pump_until(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.eof:
                return predicate()
            left = deadline - time.monotonic()
            if left <= 0:
                return predicate()
            self.pump(min(left, 0.05))
        return True

    def _set_closed(self, how, detail):
        # The first sign is the reason (a GOAWAY then EOF stays "goaway"); `eof` says
        # whether the transport itself has ended.
        if self.closed is None:
            self.closed = how
            self.close_detail = detail
        if how in ("eof", "reset"):
            self.eof = True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # ------------------------------------------------------------ parsing
    def _parse(self):
        buf = self.inbuf
        pos = 0
        while len(buf) - pos >= 9:
            f, length = Frame.parse_frame_header(memoryview(buf)[pos : pos + 9])
            if len(buf) - pos - 9 < length:
                break
            f.parse_body(memoryview(buf)[pos + 9 : pos + 9 + length])
            pos += 9 + length
            self._on_frame(f)
        del buf[:pos]

    def _on_frame(self, f):
        self.frames_in += 1
        t = f.type
        self.frame_types_in[t] = self.frame_types_in.get(t, 0) + 1
        if t == SETTINGS:
            if "ACK" in f.flags:
                self.settings_acks += 1
            else:
                self.server_settings.update(f.settings)
                self.server_settings["got"] = True
        elif t == PING:
            if "ACK" in f.flags:
                self.ping_acks += 1
        elif t == GOAWAY:
            self.goaway = (f.last_stream_id, f.error_code, bytes(f.additional_data))
            self.goaways.append(self.goaway)
            self._set_closed("goaway", err_name(f.error_code))
        elif t == RST_STREAM:
            self.rst[f.stream_id] = f.error_code
        elif t in (HEADERS, CONTINUATION, PUSH_PROMISE):
            if t == HEADERS:
                self._block = (f.stream_id, bytearray(f.data))
            elif t == CONTINUATION and self._block is not None:
                self._block[1].extend(f.data)
            if "END_HEADERS" in f.flags and self._block is not None:
                sid, block = self._block
                self._block = None
                fields = [(n, v) for n, v in self.decoder.decode(bytes(block), raw=False)]
                self.responses.setdefault(sid, fields)
            if t == HEADERS and "END_STREAM" in f.flags:
                self.ended.add(f.stream_id)
        elif t == DATA:
            self.data_bytes[f.stream_id] = self.data_bytes.get(f.stream_id, 0) + len(f.data)
            if "END_STREAM" in f.flags:
                self.ended.add(f.stream_id)

    def status(self, sid):
        for n, v in self.responses.get(sid, ()):
            if n == ":status":
                return int(v)
        return None

    def describe(self):
        names = {v: k for k, v in globals().items() if k in ("DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION")}
        types = ", ".join("%s×%d" % (names.get(t, t), n) for t, n in sorted(self.frame_types_in.items()))
        ga = "".join(" GOAWAY(last_stream_id=%d, %s, %r)" % (g[0], err_name(g[1]), g[2][:200]) for g in self.goaways)
        return "closed=%s%s; frames received: %s" % (self.closed, ga, types or "none")


# ---------------------------------------------------------------- the flood driver


class FloodResult:
    def __init__(self):
        self.frames_sent = 0
        self.bytes_sent = 0
        self.frames_planned = 0
        self.closed = None  # how the connection ended, None when it did not
        self.closed_during_flood = False  # before the last frame was written
        self.frames_at_close = None
        self.seconds = 0.0
        self.stalled = False  # the flood could not go on, the connection still open
        self.stall_reason = None
        self.rss_peak_kib = None
        self.timed_out = False

    def __repr__(self):
        return "FloodResult(%s)" % ", ".join("%s=%r" % kv for kv in sorted(self.__dict__.items()))


def run_flood(conn, batches, *, read=True, max_seconds=10.0, grace=1.0, stall=3.0, pid=None, hooks=(), gate=None):
    """Writes `batches` (an iterable of (bytes, frame count)) to conn as fast as the
    socket takes them, reading what the server sends when `read` (a client that does not
    read its ACKs passes read=False), until the batches run out, the connection ends, no
    byte could be written for `stall` seconds, or max_seconds pass. Then waits up to
    `grace` seconds for the connection to end. RSS of `pid` is sampled all along.
    `hooks` are (frames, callable) pairs called once that many frames are written.
    `gate`, when given, is called before each batch after the first; it reads what it
    needs from conn and returns None to go on, or a reason to stop (the flood "stalled")."""
    res = FloodResult()
    hooks = sorted(hooks, key=lambda h: h[0])
    sock = conn.sock
    sock.setblocking(False)
    t0 = time.monotonic()
    deadline = t0 + max_seconds
    last_progress = t0
    next_sample = 0.0
    rss_peak = proc_rss_kib(pid) if pid else None
    it = iter(batches)
    pending = b""
    pending_frames = 0
    exhausted = False

    def sample(now):
        nonlocal rss_peak, next_sample
        if pid and now >= next_sample:
            r = proc_rss_kib(pid)
            if r is not None:
                rss_peak = max(rss_peak or 0, r)
            next_sample = now + 0.02

    try:
        while True:
            now = time.monotonic()
            sample(now)
            if conn.closed:
                res.closed_during_flood = True
                break
            if now > deadline:
                res.timed_out = True
                break
            if not pending:
                if gate is not None and res.frames_planned:
                    why = gate()
                    if conn.closed:
                        res.closed_during_flood = True
                        break
                    if why:
                        res.stalled = True
                        res.stall_reason = why
                        break
                try:
                    pending, pending_frames = next(it)
                    res.frames_planned += pending_frames
                    pending = memoryview(pending)
                except StopIteration:
                    exhausted = True
                    break
            rl = [sock] if read else []
            try:
                r, w, _ = select.select(rl, [sock], [], 0.05)
            except ValueError:
                break
            if r:
                conn.pump(0)
                if conn.closed:
                    res.closed_during_flood = True
                    break
            if w:
                try:
                    n = sock.send(pending)
                except BlockingIOError:
                    n = 0
                except (BrokenPipeError, ConnectionResetError) as e:
                    conn._set_closed("reset", repr(e))
                    res.closed_during_flood = True
                    break
                if n:
                    last_progress = time.monotonic()
                    res.bytes_sent += n
                    conn.bytes_out += n
                    pending = pending[n:]
                    if not pending:
                        res.frames_sent += pending_frames
                        while hooks and hooks[0][0] <= res.frames_sent:
                            hooks.pop(0)[1]()
            elif time.monotonic() - last_progress > stall:
                res.stalled = True
                res.stall_reason = "no byte could be written for %.1fs: the server stopped reading" % stall
                break
        res.frames_at_close = res.frames_sent if res.closed_during_flood else None
        # The grace period: the server may still be working through what it has read.
        end = time.monotonic() + grace
        while not conn.closed and time.monotonic() < end:
            sample(time.monotonic())
            if read or res.stalled or exhausted:
                conn.pump(0.02)
            else:
                time.sleep(0.02)
        if not conn.closed and not read:
            # A client that did not read: look now (the GOAWAY may be behind the ACKs).
            drain_until_closed(conn, 0.5)
        res.closed = conn.closed
    finally:
        res.seconds = time.monotonic() - t0
        res.rss_peak_kib = rss_peak
        try:
            sock.setblocking(True)
            sock.settimeout(conn.timeout)
        except OSError:
            pass
    return res


def drain_until_closed(conn, timeout):
    """Reads (and parses) until the server's end or timeout."""
    deadline = time.monotonic() + timeout
    while not conn.eof and time.monotonic() < deadline:
        conn.pump(0.05)
    return conn.closed


# ---------------------------------------------------------------- well-behaved clients


class H2Client:
    """A well-behaved HTTP/2 client on Python's h2 state machine."""

    def __init__(self, host, port, authority, timeout=5.0):
        self.authority = authority
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.h2.local_settings = h2.settings.Settings(client=True, initial_values={h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self.h2.initiate_connection()
        self.flush()
        self.status = {}
        self.body = {}
        self.done = set()
        self.reset = {}
        self.terminated = None
        self.pings_acked = 0
        self.settings_acked = 0

    def flush(self):
        d = self.h2.data_to_send()
        if d:
            self.sock.sendall(d)

    def request(self, path, method="GET", body=None, extra=(), end_stream=True):
        sid = self.h2.get_next_available_stream_id()
        headers = [(":method", method), (":scheme", "http"), (":path", path), (":authority", self.authority)] + list(extra)
        self.h2.send_headers(sid, headers, end_stream=end_stream and body is None)
        if body is not None:
            self.h2.send_data(sid, body, end_stream=end_stream)
        self.flush()
        self.body[sid] = bytearray()
        return sid

    def _events(self, events):
        for ev in events:
            if isinstance(ev, h2.events.ResponseReceived):
                self.status[ev.stream_id] = int(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                self.body.setdefault(ev.stream_id, bytearray()).extend(ev.data)
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.done.add(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.reset[ev.stream_id] = ev.error_code
                self.done.add(ev.stream_id)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.terminated = (ev.error_code, ev.last_stream_id, ev.additional_data)
            elif isinstance(ev, h2.events.PingAckReceived):
                self.pings_acked += 1
            elif isinstance(ev, h2.events.SettingsAcknowledged):
                self.settings_acked += 1

    def pump(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return True
        d = self.sock.recv(262144)
        if not d:
            self.terminated = self.terminated or ("eof", None, None)
            return False
        self._events(self.h2.receive_data(d))
        self.flush()
        return True

    def wait(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0 or self.terminated:
                return predicate()
            if not self.pump(min(left, 0.1)):
                return predicate()
        return True

    def wait_stream(self, sid, timeout):
        return self.wait(lambda: sid in self.done, timeout)

    def get(self, path, timeout=5.0):
        sid = self.request(path)
        if not self.wait_stream(sid, timeout):
            return None, b""
        return self.status.get(sid), bytes(self.body.get(sid, b""))

    def close(self):
        try:
            self.h2.close_connection()
            self.flush()
        except Exception:
            pass
        self.sock.close()


class H1Client:
    """An HTTP/1.1 keep-alive client whose request can be sent now and read later."""

    def __init__(self, host, port, authority, timeout=5.0):
        self.authority = authority
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.conn.connect()

    def send(self, path):
        self.conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        self.conn.putheader("Host", self.authority)
        self.conn.endheaders()

    def read(self):
        r = self.conn.getresponse()
        return r.status, r.read()

    def get(self, path):
        self.send(path)
        return self.read()

    def close(self):
        self.conn.close()
