"""HTTP/2 client conformance of ringside's upstream side (RFC 9113), frame by frame.

ringside connects to h2server.H2Server, a raw HTTP/2 server scripted per test
(a ServiceEntry port of protocol HTTP2 makes ringside speak h2c with prior
knowledge, RFC 9113 §3.3). A client (HTTP/1.1 through httpx, or HTTP/2 through
h2peer) sends a request through ringside's outbound port; the script answers
with one thing the RFC has a rule about. Each test checks both sides:

- what ringside sent to the server: its preface, SETTINGS, ACKs, windows, and
  the exact error: a connection error (§5.4.1) is a GOAWAY with the code and
  then the TCP close; a stream error (§5.4.2) is a RST_STREAM with the code, or
  the same code as a connection error ("an endpoint MAY choose to treat a
  stream error as a connection error", §5.4);
- what the client saw: a 502/503 with the proxy's reason when nothing of the
  response had gone out, a reset when part of it had (never a cut response
  presented as complete), and no hang (every wait is bounded).
"""

import concurrent.futures
import struct
import threading
import time

import httpx
import pytest
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame

from conftest import SLOW
from h2peer import (
    DATA,
    ENABLE_PUSH,
    END_HEADERS,
    END_STREAM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    MAX_CONCURRENT_STREAMS,
    MAX_HEADER_LIST_SIZE,
    NO_ERROR,
    PING,
    PROTOCOL_ERROR,
    PUSH_PROMISE,
    REFUSED_STREAM,
    Closed,
    H2Peer,
    code_name,
    describe,
    get_headers,
    literal_block,
)
from h2server import H2Server

TIMEOUT = 5.0 * SLOW  # the bound on any one wait
QUIET = 0.5 * SLOW  # how long "nothing more arrives" is watched
HOST = "up.test"
UPSTREAM_FAILED = "upstream connect error or disconnect/reset before headers"


def service_entry(port):
    return ("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: up, namespace: default}\n"
            "spec:\n  hosts: [%s]\n  resolution: STATIC\n  ports: [{number: 80, name: h2, protocol: HTTP2}]\n"
            "  endpoints: [{address: 127.0.0.1, ports: {h2: %d}}]\n" % (HOST, port))


@pytest.fixture
def scripted(make_proxy, tmp_path):
    """Factory: scripted(script) -> (server, proxy). One shard, so that every
    request of a test goes through the same connection pool."""
    servers = []

    def make(script, **kw):
        srv = H2Server(script, timeout=TIMEOUT)
        servers.append(srv)
        cfg = tmp_path / ("h2client%d.yaml" % len(servers))
        cfg.write_text(service_entry(srv.port))
        p = make_proxy(concurrency=1, extra_args=["--config", str(cfg)] + list(kw.get("extra_args", ())))
        return srv, p

    yield make
    for srv in servers:
        srv.close()
        # shown by pytest when the test fails: what ringside sent, connection by connection
        for c in srv.conns:
            print("server connection %d: preface %r, frames from ringside: %s" % (c.index, c.preface, c.frames_text()))
    errors = [e for srv in servers for e in srv.errors]
    if errors:
        pytest.fail("the scripted server failed:\n" + "\n".join(errors), pytrace=False)


def h1(p, path="/", method="GET", content=None, headers=None, timeout=TIMEOUT):
    """An HTTP/1.1 request through ringside; no answer within `timeout` fails
    the test as a hang."""
    h = {"Host": HOST}
    h.update(headers or {})
    with httpx.Client(trust_env=False, timeout=timeout) as c:
        try:
            return c.request(method, "http://127.0.0.1:%d%s" % (p.outbound, path), headers=h, content=content)
        except httpx.TimeoutException as e:
            raise AssertionError("%s %s: the HTTP/1.1 client got no response within %.1fs (a hang): %r" % (method, path, timeout, e)) from None


def h2_client(p, settings=()):
    c = H2Peer(p.outbound, timeout=TIMEOUT)
    c.handshake(settings)
    return c


def client_outcome(c, sid, timeout=TIMEOUT):
    """What an HTTP/2 client saw on stream `sid`: ("response", Response) when
    the stream ended with END_STREAM, ("reset", code) for a RST_STREAM,
    ("goaway", code) or ("closed", None)."""
    from h2peer import Response

    resp = Response(sid)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("stream %d: no end, reset or close within %.1fs (a hang); frames: %s" % (sid, timeout, c.frames_text()))
        try:
            f = c.poll_frame(left)
        except Closed:
            return "closed", resp
        if f is None:
            continue
        if f.stream_id == sid and isinstance(f, RstStreamFrame):
            resp.reset = f.error_code
            return "reset", resp
        if f.stream_id == sid and isinstance(f, (HeadersFrame, DataFrame)):
            c._feed_response(resp, f)
            if isinstance(f, DataFrame) and f.flow_controlled_length:
                c.send_window_update(0, f.flow_controlled_length)
            if resp.ended:
                return "response", resp
        if isinstance(f, GoAwayFrame) and f.error_code != NO_ERROR:
            return "goaway", resp


def assert_failed_before_head(r, reason=None):
    """The client's request failed before any of the response went out: the
    proxy answers it (502 or 503) and says why."""
    assert r.status_code in (502, 503), (r.status_code, r.text)
    assert r.text.startswith(UPSTREAM_FAILED), r.text
    if reason:
        assert reason in r.text, r.text


def expect_stream_error(conn, sid, code, what):
    """A stream error (RFC 9113 §5.4.2): RST_STREAM `code` on the stream, or a
    connection error with the same code (§5.4)."""
    f = conn.wait_for(lambda f: (isinstance(f, RstStreamFrame) and f.stream_id == sid) or isinstance(f, GoAwayFrame),
                      "RST_STREAM %s on stream %d (%s)" % (code_name(code), sid, what))
    assert f.error_code == code, "expected %s on stream %d for %s, got %s; frames: %s" % (code_name(code), sid, what, describe(f), conn.frames_text())
    if isinstance(f, GoAwayFrame):
        assert conn.wait_eof(TIMEOUT), "ringside kept the connection open after its GOAWAY; frames: %s" % conn.frames_text()
    return f


def ok(c, req, body=b"ok", **kw):
    c.respond(req.stream_id, 200, body, fields=[("content-length", str(len(body)))], **kw)


# ============================================================== §3.4 preface, §6.5 SETTINGS


def test_preface_settings_and_settings_ack(scripted):
    """RFC 9113 §3.4: the client connection preface is the 24-octet magic
    followed by a SETTINGS frame (which may be empty; ringside's says
    SETTINGS_ENABLE_PUSH 0, §6.5.2, as a proxy that takes no pushes). §6.5.3:
    the server's SETTINGS are acknowledged with a SETTINGS frame with ACK and
    an empty payload. §6.9.2: the connection window grows only by WINDOW_UPDATE
    on stream 0 (to the 1 MiB of issue 6)."""
    seen = {}

    def script(c):
        seen["settings"] = c.handshake([(MAX_CONCURRENT_STREAMS, 50), (INITIAL_WINDOW_SIZE, 1 << 20)])
        req = c.read_request()
        seen["request"] = req
        ok(c, req)

    srv, p = scripted(script)
    r = h1(p, "/hello")
    assert r.status_code == 200 and r.text == "ok", r.text
    conn = srv.conns[0]
    s = seen["settings"]
    assert s.stream_id == 0 and "ACK" not in s.flags
    assert s.settings.get(ENABLE_PUSH) == 0, dict(s.settings)
    assert s.settings.get(INITIAL_WINDOW_SIZE) == 65536, dict(s.settings)
    assert s.settings.get(MAX_HEADER_LIST_SIZE, 1) > 0, dict(s.settings)
    conn.wait_settings_ack()
    acks = [f for f in conn.frames if isinstance(f, SettingsFrame) and "ACK" in f.flags]
    assert len(acks) == 1 and acks[0].stream_id == 0 and acks[0].payload == b"", [describe(f) for f in acks]
    ups = [f for f in conn.frames if isinstance(f, WindowUpdateFrame) and f.stream_id == 0]
    assert ups and all(u.window_increment > 0 for u in ups), conn.frames_text()
    assert 65535 + sum(u.window_increment for u in ups) >= 1 << 20, conn.frames_text()
    # the request itself: pseudo-header fields first, lower-case names (§8.3.1)
    fields = seen["request"].fields
    names = [n for n, _ in fields]
    assert names[:4] and all(n.startswith(":") for n in names[:4]) and not any(n.startswith(":") for n in names[4:]), fields
    assert dict(fields)[":authority"] == HOST and dict(fields)[":path"] == "/hello"
    assert all(n == n.lower() for n in names) and "host" not in names and "connection" not in names, fields


def test_ping_is_answered_with_the_same_payload(scripted):
    """RFC 9113 §6.7: a PING without ACK is answered with a PING with ACK and
    an identical payload, on stream 0."""
    opaque = b"\x01rs\xffping"
    got = {}

    def script(c):
        c.handshake()
        req = c.read_request()
        c.send_ping(opaque)
        got["ack"] = c.next(lambda f: isinstance(f, PingFrame), "the PING ACK")
        ok(c, req)

    srv, p = scripted(script)
    r = h1(p)
    assert r.status_code == 200, r.text
    srv.join()
    a = got.get("ack")
    assert a is not None
    assert "ACK" in a.flags and a.stream_id == 0 and bytes(a.opaque_data) == opaque, describe(a)
    # ringside's own PINGs, if any, are not ACKs of ours; exactly one ACK came
    acks = [f for f in srv.conns[0].frames if isinstance(f, PingFrame) and "ACK" in f.flags]
    assert len(acks) == 1, srv.conns[0].frames_text()


def test_settings_later_in_the_connection_are_acknowledged(scripted):
    """RFC 9113 §6.5.3: every SETTINGS frame, not only the preface's, is
    acknowledged at once, and the values take effect (§6.5: here
    SETTINGS_MAX_FRAME_SIZE stays within its bounds and a second request still
    goes on the connection)."""

    def script(c):
        c.handshake()
        ok(c, c.read_request())
        c.send_settings([(MAX_CONCURRENT_STREAMS, 10), (INITIAL_WINDOW_SIZE, 200000)])
        ok(c, c.read_request())

    srv, p = scripted(script)
    assert h1(p, "/one").status_code == 200
    conn = srv.conns[0]
    conn.wait_for(lambda f: len(conn.ack_positions) >= 2, "a SETTINGS ACK for the server's second SETTINGS frame")
    assert h1(p, "/two").status_code == 200
    acks = [f for f in conn.frames if isinstance(f, SettingsFrame) and "ACK" in f.flags]
    assert len(acks) == 2 and all(a.payload == b"" for a in acks), conn.frames_text()
    assert len(srv.conns) == 1


def test_request_data_frames_respect_the_max_frame_size(scripted):
    """RFC 9113 §4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if
    a frame exceeds the size defined in SETTINGS_MAX_FRAME_SIZE"; a sender
    keeps to the peer's value, 16384 by default. A 100000-byte POST arrives
    whole, in DATA frames no larger than that."""
    body = bytes(range(256)) * 390 + b"end"
    seen = {}

    def script(c):
        c.handshake()
        req = c.read_request()
        seen["body"] = bytes(req.body)
        ok(c, req)

    srv, p = scripted(script)
    r = h1(p, "/big-upload", method="POST", content=body)
    assert r.status_code == 200, r.text
    assert seen["body"] == body
    sizes = [len(f.data) for f in srv.conns[0].frames if isinstance(f, DataFrame)]
    assert sizes and max(sizes) <= 16384, sizes


# ============================================================== §5.1.2 concurrency


def test_max_concurrent_streams_is_respected(scripted):
    """RFC 9113 §5.1.2: "An endpoint MUST NOT exceed the limit set by its peer."
    The server says SETTINGS_MAX_CONCURRENT_STREAMS 1. A first request warms the
    connection (ringside has acknowledged the limit); then 5 concurrent
    requests all succeed, and on no connection does ringside have two streams
    open at once after acknowledging the limit (it may queue or open more
    connections; before its ACK the initial value is unlimited, §6.5.2, so
    streams a new connection carried before then are served too)."""
    lock = threading.Lock()
    violations = []
    peak = {}

    def script(c):
        c.handshake([(MAX_CONCURRENT_STREAMS, 1)])
        open_streams = set()
        timers = []
        while True:
            f = c.poll(TIMEOUT)
            if f is None:
                break
            if not (isinstance(f, HeadersFrame) and "END_STREAM" in f.flags):
                continue
            with lock:
                acked = bool(c.ack_positions) and c.ack_positions[0] < c.frames.index(f)
                open_streams.add(f.stream_id)
                peak[c.index] = max(peak.get(c.index, 0), len(open_streams))
                if acked and len(open_streams) > 1:
                    violations.append("connection %d: stream %d opened with %s open" % (c.index, f.stream_id, sorted(open_streams)))

            def answer(sid=f.stream_id):
                time.sleep(0.15)
                with lock:
                    open_streams.discard(sid)  # closed before the END_STREAM leaves
                body = b"r%d" % sid
                c.respond(sid, 200, body, fields=[("content-length", str(len(body)))])

            t = threading.Thread(target=answer, daemon=True)
            t.start()
            timers.append(t)
        for t in timers:
            t.join(TIMEOUT)

    srv, p = scripted(script)
    assert h1(p, "/warm").status_code == 200
    srv.conns[0].wait_settings_ack()

    def one(i):
        return h1(p, "/c%d" % i)

    with concurrent.futures.ThreadPoolExecutor(5) as ex:
        rs = list(ex.map(one, range(5)))
    assert [r.status_code for r in rs] == [200] * 5, [(r.status_code, r.text) for r in rs]
    assert not violations, violations
    assert peak.get(0) == 1, peak  # the warm connection never carried two


# ============================================================== §6.9 flow control


def test_request_body_waits_for_the_servers_window(scripted):
    """RFC 9113 §6.9.1: "The sender MUST NOT send a flow-controlled frame with a
    length that exceeds the space available in either of the flow-control
    windows advertised by the receiver." The server's SETTINGS_INITIAL_WINDOW_SIZE
    is 100: a 10 KB POST goes in pieces, each within the window, and ringside
    waits for WINDOW_UPDATE between them; the whole body arrives."""
    body = bytes(range(256)) * 40  # 10240 bytes
    log = {"violations": [], "pieces": 0}

    def script(c):
        c.handshake([(INITIAL_WINDOW_SIZE, 100)])
        warm = c.read_request()
        ok(c, warm)
        req = c.read_request(body=False)
        assert req.header(":method") == "POST" and not req.ended, req.fields
        got = bytearray()
        granted = 100  # the stream's window as the server gave it
        while True:
            f = c.next(lambda f: f.stream_id == req.stream_id, "the POST body", TIMEOUT)
            if isinstance(f, DataFrame):
                got += f.data
                if len(got) > granted:
                    log["violations"].append("%d bytes received with a window of %d" % (len(got), granted))
                if "END_STREAM" in f.flags:
                    break
                if len(got) == granted:
                    # the window is closed: nothing must come until we open it
                    # (watched for longer the first time: 10 pieces must fit the client's timeout)
                    quiet = c.poll(QUIET if log["pieces"] == 0 else 0.1 * SLOW)
                    if quiet is not None:
                        log["violations"].append("with the window closed ringside sent %s" % describe(quiet))
                        c.cursor -= 1
                    log["pieces"] += 1
                    step = 1000
                    granted += step
                    c.send_window_update(req.stream_id, step)
            elif isinstance(f, RstStreamFrame):
                raise AssertionError("ringside reset the POST: %s" % describe(f))
        log["body"] = bytes(got)
        ok(c, req, b"done")

    srv, p = scripted(script)
    assert h1(p, "/warm").status_code == 200
    srv.conns[0].wait_settings_ack()
    r = h1(p, "/upload", method="POST", content=body)
    assert r.status_code == 200 and r.text == "done", r.text
    srv.join()
    assert not log["violations"], log["violations"]
    assert log.get("body") == body
    assert log["pieces"] >= 10, log  # it did wait for the window, piece by piece
    assert all(f.stream_id != 0 or not isinstance(f, DataFrame) for f in srv.conns[0].frames)


def test_server_overflowing_the_window_is_a_flow_control_error(scripted):
    """RFC 9113 §6.9.1: a sender MUST NOT exceed the receiver's window; a
    receiver takes a frame that does as an error of type FLOW_CONTROL_ERROR
    (stream or connection, §5.4). ringside gives response bytes back only as
    the client takes them: the HTTP/2 client here opens no window (its
    SETTINGS_INITIAL_WINDOW_SIZE is 0), so ringside's window to the server
    closes; the server waits until it is closed and quiet, then sends 1000
    bytes more. ringside says FLOW_CONTROL_ERROR to the server and resets the
    client's stream (its response had begun)."""
    state = {}

    def script(c):
        c.handshake()
        req = c.read_request()
        c.send_headers(req.stream_id, [(":status", "200")])
        chunk = b"x" * 16384
        sent = 0
        while sent < (8 << 20):
            room = min(c.window(req.stream_id), len(chunk))
            if room > 0:
                c.send_data(req.stream_id, chunk[:room])
                sent += room
                continue
            before = c.window(req.stream_id)
            time.sleep(QUIET)
            if c.window(req.stream_id) == before:
                break  # closed and quiet
        state["sent"] = sent
        state["window"] = (c.send_conn_window, c.send_stream_windows.get(req.stream_id))
        c.send_data(req.stream_id, b"y" * 1000)
        state["sid"] = req.stream_id
        c.hold(TIMEOUT)

    srv, p = scripted(script)
    cl = h2_client(p, settings=[(INITIAL_WINDOW_SIZE, 0)])
    sid = cl.new_stream_id()
    cl.send_headers(sid, get_headers("/big", authority=HOST))
    kind, resp = client_outcome(cl, sid)
    cl.close()
    conn = srv.conns[0]
    assert "sid" in state, "the server never found ringside's window closed: %r; frames: %s" % (state, conn.frames_text())
    expect_stream_error(conn, state["sid"], FLOW_CONTROL_ERROR, "DATA beyond the window")
    assert kind in ("reset", "goaway", "closed"), "the client saw a complete response: %s %r" % (kind, resp.headers)


# ============================================================== connection errors


def _bad_frame_case(name):
    """What the server sends after reading the request, and the GOAWAY code
    the RFC requires of ringside."""
    if name == "data-on-stream-0":
        # §6.1: DATA on stream 0 -> connection error PROTOCOL_ERROR
        return lambda c, sid: c.send_raw(DATA, 0, 0, b"hello"), PROTOCOL_ERROR
    if name == "ping-7-bytes":
        # §6.7: a PING whose length is not 8 -> connection error FRAME_SIZE_ERROR
        return lambda c, sid: c.send_raw(PING, 0, 0, b"1234567"), FRAME_SIZE_ERROR
    if name == "headers-on-even-stream":
        # §5.1.1: a server initiates no stream with HEADERS; an unexpected
        # stream identifier -> connection error PROTOCOL_ERROR
        return lambda c, sid: c.send_raw(HEADERS, END_HEADERS | END_STREAM, 2, literal_block([(":status", "200")])), PROTOCOL_ERROR
    if name == "push-promise-with-push-disabled":
        # §6.6 / §8.4: PUSH_PROMISE after the client's SETTINGS_ENABLE_PUSH 0
        # (the server acknowledged ringside's SETTINGS before sending it, so
        # they are in force, §6.5.3) -> PROTOCOL_ERROR
        payload = struct.pack(">I", 2) + literal_block(get_headers("/pushed", authority=HOST))
        return lambda c, sid: c.send_raw(PUSH_PROMISE, END_HEADERS, sid, payload), PROTOCOL_ERROR
    raise ValueError(name)


@pytest.mark.parametrize("case", ["data-on-stream-0", "ping-7-bytes", "headers-on-even-stream", "push-promise-with-push-disabled"])
def test_connection_error_from_the_server(scripted, case):
    """RFC 9113 §5.4.1: a connection error is a GOAWAY with the code, then the
    TCP close. §6.1 (DATA on stream 0: PROTOCOL_ERROR), §4.2/§6.7 (PING not 8
    octets: FRAME_SIZE_ERROR), §5.1.1 (a stream the server may not open:
    PROTOCOL_ERROR), §6.6/§8.4 (PUSH_PROMISE with push disabled:
    PROTOCOL_ERROR). The client's request, not answered, gets 502 or 503 and
    the reason, at once, not after a hang."""
    send_bad, code = _bad_frame_case(case)

    def script(c):
        c.handshake()
        c.wait_settings_ack()  # the handshake is over both ways (§6.5.3)
        req = c.read_request()
        send_bad(c, req.stream_id)
        c.hold(TIMEOUT)

    srv, p = scripted(script)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        client = ex.submit(h1, p, "/bad")
        conn = srv.wait_conns(1)[0]
        g = conn.wait_for(lambda f: isinstance(f, GoAwayFrame), "GOAWAY %s (%s)" % (code_name(code), case))
        assert g.error_code == code, "expected GOAWAY %s for %s, got %s" % (code_name(code), case, describe(g))
        assert g.last_stream_id % 2 == 0, describe(g)  # server-initiated streams only (§6.8)
        r = client.result()
    took = time.monotonic() - t0
    assert_failed_before_head(r, "protocol error")
    assert took < 2 * SLOW, "the client waited %.1fs" % took
    assert conn.wait_eof(TIMEOUT), "ringside kept the TCP connection open after its GOAWAY %s (§5.4.1); frames: %s" % (
        code_name(code), conn.frames_text())


# ============================================================== §8.1.1 malformed responses


MALFORMED = {
    # §8.2.1: field names MUST be lower case
    "uppercase-name": [(":status", "200"), ("X-Upper", "1")],
    # §8.2.2: connection-specific fields are malformed
    "connection-header": [(":status", "200"), ("connection", "close")],
    # §8.3.2: :status is required in a response
    "missing-status": [("content-type", "text/plain")],
    # §8.3.2 / RFC 9110 §15: :status is a three-digit integer
    "status-not-a-number": [(":status", "abc")],
    # §8.3.1 style: a request pseudo-header in a response
    "request-pseudo-header": [(":status", "200"), (":path", "/")],
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_response_head(scripted, case):
    """RFC 9113 §8.1.1: a malformed response is a stream error of type
    PROTOCOL_ERROR, and "intermediaries that process HTTP requests or responses
    ... MUST NOT forward a malformed request or response": the client gets the
    proxy's 502/503, not the response."""

    def script(c):
        c.handshake()
        req = c.read_request()
        c.send_headers(req.stream_id, block=literal_block(MALFORMED[case] + [("content-length", "2")]))
        c.send_data(req.stream_id, b"no", end_stream=True)
        c.hold(QUIET * 2)

    srv, p = scripted(script)
    r = h1(p, "/malformed")
    assert_failed_before_head(r)
    expect_stream_error(srv.conns[0], 1, PROTOCOL_ERROR, "malformed response: %s" % case)


def test_malformed_response_answers_502_protocol_error(scripted):
    """A malformed response (RFC 9113 §8.1.1; here :status "abc") is the
    proxy's own stream error, not the server's reset: the client gets what
    ringside's README documents for a malformed response, 502 with "reset
    reason: protocol error" (flag UPE), as for HTTP/1.1 upstreams."""

    def script(c):
        c.handshake()
        req = c.read_request()
        c.send_headers(req.stream_id, block=literal_block([(":status", "abc")]), end_stream=True)
        c.hold(QUIET * 2)

    srv, p = scripted(script)
    r = h1(p, "/malformed")
    expect_stream_error(srv.conns[0], 1, PROTOCOL_ERROR, ":status abc")
    assert r.status_code == 502 and r.text.startswith(UPSTREAM_FAILED) and "protocol error" in r.text, (r.status_code, r.text)


@pytest.mark.parametrize("case", ["shorter", "longer"])
def test_content_length_disagreeing_with_data(scripted, case):
    """RFC 9113 §8.1.1: a response whose content-length does not equal the sum
    of its DATA payloads is malformed: stream error PROTOCOL_ERROR. The head
    (with content-length 10) may already have gone to the client, so the
    HTTP/2 client's stream is reset, or it gets 502/503; never a complete
    response whose body disagrees with its length."""
    body = b"abc" if case == "shorter" else b"0123456789abcdef"

    def script(c):
        c.handshake()
        req = c.read_request()
        c.send_headers(req.stream_id, [(":status", "200"), ("content-length", "10")])
        c.send_data(req.stream_id, body, end_stream=True)
        c.hold(QUIET * 2)

    srv, p = scripted(script)
    cl = h2_client(p)
    sid = cl.new_stream_id()
    cl.send_headers(sid, get_headers("/cl", authority=HOST))
    kind, resp = client_outcome(cl, sid)
    cl.close()
    expect_stream_error(srv.conns[0], 1, PROTOCOL_ERROR, "content-length %s than the DATA" % case)
    if kind == "response":
        assert resp.status in (502, 503), (resp.headers, bytes(resp.body))
    else:
        assert kind in ("reset", "goaway", "closed"), kind
        assert len(resp.body) <= 10 and (resp.status in (None, 200)), (resp.headers, bytes(resp.body))


# ============================================================== §8.7 retries


def test_refused_stream_is_retried_once_on_a_new_connection(scripted):
    """RFC 9113 §8.7: REFUSED_STREAM means the server did no processing, so the
    request can be retried; ringside sends it once more on a new connection
    and the client gets that answer."""

    def refuse(c):
        c.handshake()
        req = c.read_request()
        c.send_rst(req.stream_id, REFUSED_STREAM)
        c.hold(TIMEOUT)

    def serve(c):
        c.handshake()
        req = c.read_request()
        ok(c, req, b"second")
        c.hold(TIMEOUT)

    srv, p = scripted([refuse, serve])
    r = h1(p, "/retry", method="POST", content=b"payload")
    assert r.status_code == 200 and r.text == "second", r.text
    conns = srv.wait_conns(2)
    assert len(conns) == 2, len(conns)
    for c in conns:
        h = c.wait_for(lambda f: isinstance(f, HeadersFrame), "the request")
        assert dict(h.fields)[":path"] == "/retry" and dict(h.fields)[":method"] == "POST"
        d = b"".join(f.data for f in c.frames if isinstance(f, DataFrame) and f.stream_id == h.stream_id)
        assert d == b"payload", (c.index, d)
    # nothing more went on the refusing connection
    assert len([f for f in conns[0].frames if isinstance(f, HeadersFrame)]) == 1, conns[0].frames_text()


def test_goaway_last_stream_0_sends_the_request_again(scripted):
    """RFC 9113 §6.8: streams above the GOAWAY's last stream identifier were
    not processed and "can be safely retried using a new connection" (§8.7);
    the receiver MUST NOT open more streams on that connection. The server
    says GOAWAY(last_stream_id=0) on reading the request: the request goes
    again on a new connection, the client gets that answer, and the first
    connection carries nothing more and is closed."""

    def goaway(c):
        c.handshake()
        c.read_request()
        c.send_goaway(0, NO_ERROR)
        c.hold(TIMEOUT)

    def serve(c):
        c.handshake()
        c.serve(lambda req: ok(c, req, b"again"))

    srv, p = scripted([goaway, serve])
    r = h1(p, "/ga")
    assert r.status_code == 200 and r.text == "again", r.text
    conns = srv.wait_conns(2)
    assert len([f for f in conns[0].frames if isinstance(f, HeadersFrame)]) == 1, conns[0].frames_text()
    r = h1(p, "/ga2")
    assert r.status_code == 200
    assert len([f for f in conns[0].frames if isinstance(f, HeadersFrame)]) == 1, conns[0].frames_text()
    assert conns[0].wait_eof(TIMEOUT), "ringside kept the GOAWAY'd idle connection open: %s" % conns[0].frames_text()


# ============================================================== §8.1 response shapes


def test_trailers_reach_an_http2_client(scripted):
    """RFC 9113 §8.1: a response may end with a trailer section (a HEADERS
    frame with END_STREAM after the DATA); an HTTP/2 client receives it."""

    def script(c):
        c.handshake()
        req = c.read_request()
        c.respond(req.stream_id, 200, b"payload", fields=[("content-type", "application/grpc")],
                  trailers=[("grpc-status", "0"), ("x-trailer", "yes")])
        c.hold(QUIET)

    srv, p = scripted(script)
    cl = h2_client(p)
    r = cl.request(get_headers("/t", authority=HOST))
    cl.close()
    assert r.status == 200 and bytes(r.body) == b"payload"
    assert r.trailers == [("grpc-status", "0"), ("x-trailer", "yes")], r.trailers


def test_interim_103_then_final_response(scripted):
    """RFC 9113 §8.1: a response is zero or more interim (1xx) HEADERS, then the
    final HEADERS; 103 Early Hints (RFC 8297) before a 200: the client gets the
    final response (ringside may pass the 103 on, or not), and not the 103 as
    final. Both for an HTTP/2 and an HTTP/1.1 client."""

    def script(c):
        c.handshake()

        def answer(req):
            c.send_headers(req.stream_id, [(":status", "103"), ("link", "</style.css>; rel=preload")])
            c.respond(req.stream_id, 200, b"final", fields=[("content-length", "5")])

        c.serve(answer)

    srv, p = scripted(script)
    cl = h2_client(p)
    r = cl.request(get_headers("/hints", authority=HOST))
    cl.close()
    assert r.status == 200 and bytes(r.body) == b"final", (r.headers, bytes(r.body))
    for info in r.informational:
        assert dict(info)[":status"] == "103", info
    r = h1(p, "/hints")
    assert r.status_code == 200 and r.text == "final", r.text


def test_connection_closed_mid_response_cuts_the_clients_response(scripted):
    """RFC 9113 §8.1: a response is complete only with END_STREAM. The server
    sends the head and part of the body, then closes the TCP connection: the
    HTTP/2 client's stream is reset, and the HTTP/1.1 client's response
    (chunked, since no content-length) is cut, not ended cleanly."""

    def script(c):
        c.handshake()
        req = c.read_request()
        c.send_headers(req.stream_id, [(":status", "200"), ("content-type", "text/plain")])
        c.send_data(req.stream_id, b"partial-")
        time.sleep(0.1)
        c.close()

    srv, p = scripted(script)
    cl = h2_client(p)
    sid = cl.new_stream_id()
    cl.send_headers(sid, get_headers("/cut", authority=HOST))
    kind, resp = client_outcome(cl, sid)
    cl.close()
    assert kind in ("reset", "closed", "goaway"), "the cut response ended cleanly: %r %r" % (resp.headers, bytes(resp.body))
    assert resp.status == 200 and bytes(resp.body) == b"partial-"

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        with httpx.Client(trust_env=False, timeout=TIMEOUT) as c:
            with c.stream("GET", p.url("/cut"), headers={"Host": HOST}) as r:
                assert r.status_code == 200
                b"".join(r.iter_raw())
