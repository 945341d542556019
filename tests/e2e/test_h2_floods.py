"""HTTP/2 floods against the proxy's downstream (h2c with prior knowledge, on the outbound
port and on the plaintext inbound port): each class of issue 6's flood limits, sent as raw
frames.

Every flood test:
- sends at most a bounded number of frames for at most FLOOD_SECONDS;
- asserts the offender's connection is closed by the proxy (GOAWAY with an error code, or
  EOF/reset) before the flood's last frame was written or within GRACE_S of it (what the
  kernel buffers between the two ends); for floods of new streams, the GOAWAY's last stream
  id shows the proxy stopped before the last one;
- asserts the proxy's RSS grew less than MEM_BUDGET_KIB over its baseline (sampled all
  along) and its CPU time (utime+stime, every thread) during the flood stayed under a
  stated budget;
- sends a request on two other connections (HTTP/2 and HTTP/1.1, opened before the flood)
  while the flood runs, and on two fresh ones after it: all are answered 200.

The proxy runs one shard (--concurrency 1), so the offender and the bystanders share it.
The control test is a well-behaved client doing as many requests, cancellations, PINGs,
SETTINGS, CONTINUATIONs and empty DATA frames as legitimate traffic can: it is never closed.

Flood sizes: a client that does not read (PING and SETTINGS floods) has some 3 MB of the
kernel's socket buffers between it and the proxy (measured against nghttpd: 180-350 k PINGs
were written before its reset arrived), so those floods are 1 M frames; the others are
100 k frames or less.

H2FLOOD_NGHTTPD=1 runs the same tests against `nghttpd --no-tls` (no HTTP/1.1 bystander,
no origin checks): a check of the frames themselves on a server with nghttp2's own limits.
nghttp2 has no limit on empty DATA frames nor on resets it sends itself, so those tests
are expected to fail there.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

import h2flood as hf
from conftest import SANITIZED, SLOW, free_ports

NGHTTPD = os.environ.get("H2FLOOD_NGHTTPD") == "1"

# RSS growth allowed over the baseline. ASan's quarantine keeps freed memory, so the
# proxy is started with quarantine_size_mb=16 under ASan and the budget is larger.
MEM_BUDGET_KIB = (64 if SANITIZED else 16) * 1024
# CPU (utime+stime) the proxy may spend from the flood's start to the end of its grace.
CPU_BUDGET_S = 1.0 * SLOW
# One flood's wall-clock bound.
FLOOD_SECONDS = 10.0 * SLOW
# After the flood's last frame: how long the close may take.
GRACE_S = 1.0 * SLOW

# GOAWAY codes a flood limit may send: the proxy's own limits ENHANCE_YOUR_CALM, nghttp2's
# PROTOCOL_ERROR / ENHANCE_YOUR_CALM, its stream_reset_rate_limit INTERNAL_ERROR, and
# COMPRESSION_ERROR for a header block HPACK cannot take. Never NO_ERROR (a graceful close).
FLOOD_CODES = {hf.ENHANCE_YOUR_CALM, hf.PROTOCOL_ERROR, hf.INTERNAL_ERROR, hf.COMPRESSION_ERROR}

# Limits nghttp2 (1.52 as Debian patches it) does not have: only under H2FLOOD_NGHTTPD.
not_in_nghttp2 = pytest.mark.xfail(NGHTTPD, reason="nghttpd: nghttp2 has no such limit", strict=True)


# ---------------------------------------------------------------- targets


class Target:
    host = "127.0.0.1"
    port = None
    pid = None
    authority = None
    has_h1 = True
    origin = None

    def mark(self):
        return self.origin.mark() if self.origin else None

    def requests_since(self, mark):
        return self.origin.requests_since(mark) if self.origin else []


class RingsideTarget(Target):
    def __init__(self, proxy, origin, inbound=False):
        self.proxy = proxy
        # inbound: the Sidecar's ingress sends every request to the origin, whatever its host
        self.port = proxy.inbound if inbound else proxy.outbound
        self.pid = proxy.pid
        self.authority = "web.test" if inbound else "origin.test"
        self.origin = origin

    def alive(self):
        return self.proxy.alive()

    def log_tail(self):
        return self.proxy.stderr_tail(4000)


class NghttpdTarget(Target):
    has_h1 = False

    def __init__(self, tmp_path):
        docs = tmp_path / "htdocs"
        docs.mkdir()
        (docs / "echo").write_text('{"hello": "nghttpd"}\n')
        (docs / "upload").write_text("uploaded\n")
        self.port = free_ports(1)[0]
        self.authority = "127.0.0.1:%d" % self.port
        self.log = tmp_path / "nghttpd.log"
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(
            ["nghttpd", "--no-tls", "-d", str(docs), "--address", "127.0.0.1", str(self.port)],
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 5
        while True:
            try:
                hf.RawConn(self.host, self.port, timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)

    def alive(self):
        return self.proc.poll() is None

    def log_tail(self):
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


SIDECAR_INGRESS = (
    "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: default}\n"
    "spec:\n  ingress:\n  - port: {number: 80, protocol: HTTP, name: http}\n"
    "    defaultEndpoint: 127.0.0.1:%d\n"
)


@pytest.fixture(params=["outbound", "inbound"])
def target(request, tmp_path, monkeypatch):
    """The server under test: ringside's outbound port (HTTP/2 with prior knowledge to a
    ServiceEntry's host) or its inbound port (plaintext, PERMISSIVE, to a Sidecar's
    ingress endpoint); both go to the test origin."""
    inbound = request.param == "inbound"
    if NGHTTPD:
        if inbound:
            pytest.skip("nghttpd has one port: the inbound variant is ringside's")
        if not shutil.which("nghttpd"):
            pytest.skip("H2FLOOD_NGHTTPD=1 but nghttpd is not installed (apt-get install nghttp2-server)")
        t = NghttpdTarget(tmp_path)
        yield t
        t.stop()
        return
    if SANITIZED:
        # ASan's default 256 MiB quarantine would make RSS measure ASan, not the proxy.
        monkeypatch.setenv("ASAN_OPTIONS", (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16").lstrip(":"))
    make_proxy = request.getfixturevalue("make_proxy")
    origin = request.getfixturevalue("origin")
    args = []
    if inbound:
        cfg = tmp_path / "sidecar.yaml"
        cfg.write_text(SIDECAR_INGRESS % origin.port)
        args = ["--config", str(cfg), "--service-account", "web"]
    p = make_proxy(concurrency=1, extra_args=args)
    t = RingsideTarget(p, origin, inbound)
    _check_speaks_h2(t)
    yield t


def _check_speaks_h2(t):
    """The proxy answers the connection preface with SETTINGS: else every test below would
    fail on its bystanders, with less to say."""
    c = hf.RawConn(t.host, t.port, timeout=5 * SLOW)
    try:
        c.handshake(timeout=5 * SLOW)
    except hf.Closed as e:
        pytest.fail("the proxy does not speak h2c on port %d: %s" % (t.port, e), pytrace=False)
    finally:
        c.close()


def _h2(target):
    return hf.H2Client(target.host, target.port, target.authority, timeout=5 * SLOW)


def _h1(target):
    return hf.H1Client(target.host, target.port, target.authority, timeout=5 * SLOW)


def _check_served(target, what):
    """A fresh HTTP/2 and a fresh HTTP/1.1 connection each get /echo answered 200."""
    c = _h2(target)
    try:
        status, body = c.get("/echo", timeout=5 * SLOW)
    finally:
        c.close()
    assert status == 200, "%s: a fresh HTTP/2 connection got %r %r (reset %r, terminated %r)" % (what, status, body[:200], c.reset, c.terminated)
    if target.has_h1:
        c = _h1(target)
        try:
            status, body = c.get("/echo")
        finally:
            c.close()
        assert status == 200, "%s: a fresh HTTP/1.1 connection got %r %r" % (what, status, body[:200])


class Watch:
    """The budget and the bystanders around one flood."""

    def __init__(self, target, cpu_budget=CPU_BUDGET_S, mem_budget_kib=MEM_BUDGET_KIB):
        self.target = target
        self.cpu_budget = cpu_budget
        self.mem_budget_kib = mem_budget_kib
        # Bystanders: connected and warmed up (the first request of each kind allocates
        # what later ones reuse) before the baseline is taken.
        self.by_h2 = _h2(target)
        status, body = self.by_h2.get("/echo", timeout=5 * SLOW)
        assert status == 200, "bystander HTTP/2 warm-up: %r %r" % (status, body[:200])
        self.by_h1 = None
        if target.has_h1:
            self.by_h1 = _h1(target)
            status, body = self.by_h1.get("/echo")
            assert status == 200, "bystander HTTP/1.1 warm-up: %r %r" % (status, body[:200])
        _check_served(target, "before the flood")
        time.sleep(0.1)
        self.rss0 = hf.proc_rss_kib(target.pid)
        self.cpu0 = hf.proc_cpu_seconds(target.pid)
        self.sent_during = False
        self.sent_late = False
        self.by_h2_sid = None

    def during(self):
        """A hook for run_flood: one request on each bystander while the flood runs."""
        self.by_h2_sid = self.by_h2.request("/echo?during-flood")
        if self.by_h1:
            self.by_h1.send("/echo?during-flood")
        self.sent_during = True

    def late(self):
        """When the server closed the flood before the hook's frame count (at its first
        frames), there was no "during": the bystanders' requests go out now."""
        if not self.sent_during:
            self.during()
            self.sent_late = True

    def check(self, res, conn, what):
        """Asserts the budgets and the bystanders after a flood."""
        cpu = hf.proc_cpu_seconds(self.target.pid)
        assert self.target.alive(), "%s: the server died during the flood\n%s" % (what, self.target.log_tail())
        cpu_used = cpu - self.cpu0
        rss_growth = (res.rss_peak_kib or 0) - self.rss0
        summary = "%s: %s; %s; CPU %.2fs; RSS %d KiB -> peak %s KiB%s" % (
            what, res, conn.describe(), cpu_used, self.rss0, res.rss_peak_kib, "; bystanders' requests sent after the close" if self.sent_late else "")
        print(summary)
        assert rss_growth < self.mem_budget_kib, "%s: RSS grew %d KiB, budget %d KiB (%s)" % (what, rss_growth, self.mem_budget_kib, summary)
        assert cpu_used < self.cpu_budget, "%s: the server used %.2fs of CPU, budget %.2fs (%s)" % (what, cpu_used, self.cpu_budget, summary)
        assert self.sent_during, "%s: the flood ended before the bystanders' requests were sent (%s)" % (what, summary)
        ok = self.by_h2.wait_stream(self.by_h2_sid, 5 * SLOW)
        assert ok and self.by_h2.status.get(self.by_h2_sid) == 200, (
            "%s: the HTTP/2 bystander's request during the flood got %r (reset %r, terminated %r)"
            % (what, self.by_h2.status.get(self.by_h2_sid), self.by_h2.reset, self.by_h2.terminated)
        )
        if self.by_h1:
            status, body = self.by_h1.read()
            assert status == 200, "%s: the HTTP/1.1 bystander's request during the flood got %r %r" % (what, status, body[:200])
        # ... and again after it, on the same connections
        status, body = self.by_h2.get("/echo?after-flood", timeout=5 * SLOW)
        assert status == 200, "%s: the HTTP/2 bystander after the flood got %r" % (what, status)
        if self.by_h1:
            status, body = self.by_h1.get("/echo?after-flood")
            assert status == 200, "%s: the HTTP/1.1 bystander after the flood got %r" % (what, status)
        _check_served(self.target, what + ", after the flood")
        self.by_h2.close()
        if self.by_h1:
            self.by_h1.close()


def _flood_conn(target, rcvbuf=None):
    """The offender's connection, handshake done. Its 64 KiB send buffer keeps the client
    from running far ahead of what the server has read."""
    return hf.RawConn(target.host, target.port, rcvbuf=rcvbuf, sndbuf=65536, timeout=5 * SLOW).handshake()


def _assert_closed(res, conn, what, codes=FLOOD_CODES, last_sid=None):
    """The server ended the connection itself: a GOAWAY with one of `codes`, or EOF/reset,
    before the flood's last frame was written or within GRACE_S of it (the kernel's socket
    buffers hold up to a few MB the server has not read when the last write returns; the
    client never closes). A flood of new streams whose last is `last_sid` must have been
    stopped before it: the GOAWAY's last stream id is below it. After a GOAWAY the
    transport must end too."""
    assert res.closed, (
        "%s: the server did not close the connection (%d of %d frames written; %.2fs from the first to the end "
        "of the %.1fs grace%s): %s"
        % (what, res.frames_sent, res.frames_planned, res.seconds, GRACE_S,
           "; stalled: %s" % res.stall_reason if res.stalled else "", conn.describe())
    )
    if conn.goaway:
        ids = [g[0] for g in conn.goaways]
        assert ids == sorted(ids, reverse=True), (
            "%s: the server's GOAWAYs raised the last stream id (%s); RFC 9113 §6.8: an endpoint MUST NOT "
            "increase it: %s" % (what, " then ".join(map(str, ids)), conn.describe()))
        assert conn.goaway[1] in codes, "%s: GOAWAY with %s, expected one of %s: %s" % (what, hf.err_name(conn.goaway[1]), sorted(hf.err_name(c) for c in codes), conn.describe())
        if last_sid is not None:
            assert conn.goaway[0] < last_sid, "%s: the GOAWAY's last stream id %d: the server processed every stream of the flood (the last %d) before it closed" % (what, conn.goaway[0], last_sid)
        hf.drain_until_closed(conn, GRACE_S + 1)
        assert conn.eof, "%s: GOAWAY %s but the connection stayed open for %.1fs after it" % (what, hf.err_name(conn.goaway[1]), GRACE_S + 1)


def _flood(target, what, batches, read=True, conn=None, watch=None, hook_at=None, **kw):
    """Connects (unless given conn), runs the flood with the bystanders' hook, returns
    (result, conn, watch)."""
    watch = watch or Watch(target)
    conn = conn or _flood_conn(target)
    hooks = [(hook_at or 1, watch.during)]
    res = hf.run_flood(conn, batches, read=read, max_seconds=FLOOD_SECONDS, grace=GRACE_S, pid=target.pid, hooks=hooks, **kw)
    watch.late()
    return res, conn, watch


def _batches(frame_fn, total, per_batch):
    """Yields (bytes, frames) batches: frame_fn(i) returns the bytes of frame group i and
    how many frames it holds."""
    i = 0
    while i < total:
        out = []
        n = 0
        for _ in range(min(per_batch, total - i)):
            b, k = frame_fn(i)
            out.append(b)
            n += k
            i += 1
        yield b"".join(out), n


# ---------------------------------------------------------------- the helpers themselves


def test_frame_helpers_match_hyperframe():
    """Frames packed by h2flood are byte for byte what hyperframe serializes, and the
    HPACK blocks decode to what was meant."""
    from hyperframe import frame as hyf
    import hpack

    f = hyf.HeadersFrame(5, flags=["END_STREAM", "END_HEADERS"])
    f.data = b"abc"
    assert hf.headers_frame(5, b"abc") == f.serialize()
    f = hyf.RstStreamFrame(7)
    f.error_code = hf.CANCEL
    assert hf.rst_frame(7, hf.CANCEL) == f.serialize()
    f = hyf.PingFrame(0)
    f.opaque_data = b"12345678"
    assert hf.ping_frame(b"12345678") == f.serialize()
    f = hyf.SettingsFrame(0, settings={hf.S_ENABLE_PUSH: 0, hf.S_INITIAL_WINDOW_SIZE: 1 << 20})
    assert hf.settings_frame([(hf.S_ENABLE_PUSH, 0), (hf.S_INITIAL_WINDOW_SIZE, 1 << 20)]) == f.serialize()
    f = hyf.WindowUpdateFrame(3)
    f.window_increment = 0x7FFFFFFF
    assert hf.window_update_frame(3, 0x7FFFFFFF) == f.serialize()
    f = hyf.DataFrame(1)
    assert hf.data_frame(1, b"") == f.serialize()
    f = hyf.ContinuationFrame(1)
    f.data = b"xyz"
    assert hf.frame(hf.CONTINUATION, 0, 1, b"xyz") == f.serialize()

    d = hpack.Decoder()
    block = hf.request_block("GET", "/echo", "origin.test", extra=[("x-a", "1" * 200)])
    assert d.decode(block, raw=False) == [(":method", "GET"), (":scheme", "http"), (":path", "/echo"), (":authority", "origin.test"), ("x-a", "1" * 200)]
    assert len(d.header_table.dynamic_entries) == 0
    # the bomb's pieces: a literal with incremental indexing, then index 62 refers to it
    block = hf.hp_literal("x-bomb", "v" * 4000, incremental=True) + hf.hp_indexed(62) * 3
    assert d.decode(block, raw=False) == [("x-bomb", "v" * 4000)] * 4
    assert hf.hp_int(1337, 5) == bytes([31, 154, 10])  # RFC 7541 §C.1.2


# ---------------------------------------------------------------- rapid reset


def test_rapid_reset(target):
    """HEADERS (GET, END_STREAM) then RST_STREAM(CANCEL) on each new stream, as fast as
    possible: up to 50,000 streams (100 k frames). Past the reset bucket (about 1000 burst,
    100/s refill) the connection is closed."""
    block = hf.request_block("GET", "/echo?rapid-reset", target.authority)

    def group(i):
        sid = 1 + 2 * i
        return hf.headers_frame(sid, block) + hf.rst_frame(sid, hf.CANCEL), 2

    res, conn, watch = _flood(target, "rapid reset", _batches(group, 50000, 250), hook_at=200)
    _assert_closed(res, conn, "rapid reset", last_sid=1 + 2 * 49999)
    watch.check(res, conn, "rapid reset")
    conn.close()


# ---------------------------------------------------------------- server-provoked resets


def _provoked_flood(target, what, frames_for, frames_per_stream, expect_code, total):
    """Streams that each make the server reset them with RST_STREAM(expect_code). One
    alone first: its reset shows the frames really provoke one, and must not close the
    connection. Then batches of PROVOKE_BATCH streams, each batch sent once the server has
    reset every stream before it, so that fewer than MAX_CONCURRENT_STREAMS are ever open
    (a server keeps a stream it resets open until its RST_STREAM is written): only a limit
    on the resets themselves can close this connection."""
    conn = _flood_conn(target)
    conn.send(frames_for(1))
    conn.pump_until(lambda: 1 in conn.rst or conn.closed, 5 * SLOW)
    assert conn.rst.get(1) == expect_code, "%s: the first stream got %r (want RST_STREAM %s): %s" % (
        what,
        hf.err_name(conn.rst[1]) if 1 in conn.rst else None,
        hf.err_name(expect_code),
        conn.describe(),
    )
    assert not conn.closed, "%s: a single offending stream closed the connection: %s" % (what, conn.describe())

    sent = [1]  # the highest stream id written

    def batches():
        for b in range(total // PROVOKE_BATCH):
            first = 3 + 2 * PROVOKE_BATCH * b
            sids = range(first, first + 2 * PROVOKE_BATCH, 2)
            sent[0] = sids[-1]
            yield b"".join(frames_for(sid) for sid in sids), PROVOKE_BATCH * frames_per_stream

    def gate():
        top = sent[0]
        ok = conn.pump_until(lambda: conn.closed or all(sid in conn.rst for sid in range(top, top - 2 * PROVOKE_BATCH, -2)), 5 * SLOW)
        if not ok:
            missing = [sid for sid in range(top - 2 * PROVOKE_BATCH + 2, top + 2, 2) if sid not in conn.rst]
            return "streams %s... not reset by the server within %.0fs" % (missing[:5], 5 * SLOW)
        wrong = {sid: c for sid, c in conn.rst.items() if c != expect_code}
        if wrong:
            return "streams reset with another code than %s: %r" % (hf.err_name(expect_code), {k: hf.err_name(v) for k, v in list(wrong.items())[:5]})
        return None

    watch = Watch(target)
    res = hf.run_flood(conn, batches(), read=True, max_seconds=FLOOD_SECONDS, grace=GRACE_S, pid=target.pid, hooks=[(1, watch.during)], gate=gate)
    watch.late()
    print("%s: %d streams reset by the server before the close" % (what, len(conn.rst)))
    _assert_closed(res, conn, what, last_sid=3 + 2 * (total - 1))
    watch.check(res, conn, what)
    conn.close()


# Streams per batch of a server-provoked reset flood: well under MAX_CONCURRENT_STREAMS.
PROVOKE_BATCH = 50


@not_in_nghttp2
def test_server_provoked_resets_window_update_overflow(target):
    """Each stream: HEADERS (POST, no END_STREAM), then WINDOW_UPDATE 2^31-1 on it, which
    overflows its send window (65,535 + 2^31-1 > 2^31-1): the server must reset the stream
    with FLOW_CONTROL_ERROR (RFC 9113 §6.9.1). Up to 20,000 such streams: past the bucket
    of server-provoked resets the connection is closed."""
    block = hf.request_block("POST", "/upload?provoked-wu", target.authority)

    def frames_for(sid):
        return hf.headers_frame(sid, block, end_stream=False) + hf.window_update_frame(sid, 0x7FFFFFFF)

    _provoked_flood(target, "server-provoked resets (WINDOW_UPDATE overflow)", frames_for, 2, hf.FLOW_CONTROL_ERROR, 20000)


@not_in_nghttp2
def test_server_provoked_resets_malformed_header(target):
    """Each stream: HEADERS (GET, END_STREAM) with an uppercase field name, which makes
    the request malformed (RFC 9113 §8.2.1): the server resets the stream with
    PROTOCOL_ERROR (§8.1.1) and forwards nothing. Up to 20,000 such streams: past the
    bucket of server-provoked resets the connection is closed."""
    block = hf.request_block("GET", "/echo?provoked-hdr", target.authority, extra=[("X-Upper", "1")])
    mark = target.mark()

    def frames_for(sid):
        return hf.headers_frame(sid, block)

    _provoked_flood(target, "server-provoked resets (malformed header)", frames_for, 1, hf.PROTOCOL_ERROR, 20000)
    forwarded = [r.target for r in target.requests_since(mark) if "provoked-hdr" in r.target]
    assert not forwarded, "malformed requests reached the origin: %d of them" % len(forwarded)


# ---------------------------------------------------------------- CONTINUATION


@pytest.mark.parametrize("kind", ["empty", "one-field", "16k-of-one-literal"])
def test_continuation_flood(target, kind):
    """A HEADERS frame without END_HEADERS, then CONTINUATION frames that never end the
    block: empty ones, ones that each carry a whole field, or 16 KiB pieces of one
    literal whose declared length is 1 GiB. Past a small number of CONTINUATIONs
    (nghttp2's max_continuations, 8) the connection is closed; the block is never
    buffered whole."""
    mark = target.mark()
    first = hf.request_block("GET", "/echo?continuation-flood", target.authority)
    if kind == "empty":
        total, per = 100000, 1000

        def group(i):
            return hf.frame(hf.CONTINUATION, 0, 1, b""), 1

    elif kind == "one-field":
        total, per = 100000, 1000

        def group(i):
            return hf.frame(hf.CONTINUATION, 0, 1, hf.hp_literal("x-c", "%08d" % i)), 1

    else:
        # the literal's header: name "x-huge", value length 2^30 (no Huffman)
        first += b"\x00" + hf.hp_str("x-huge") + hf.hp_int(1 << 30, 7, 0)
        piece = hf.frame(hf.CONTINUATION, 0, 1, b"h" * 16384)
        total, per = 4000, 16  # 64 MiB at most

        def group(i):
            return piece, 1

    conn = _flood_conn(target)
    conn.send(hf.headers_frame(1, first, end_stream=True, end_headers=False))
    what = "CONTINUATION flood (%s)" % kind
    # The bystanders' requests go out after the first batch: the proxy has the open
    # header block by then.
    res, conn, watch = _flood(target, what, _batches(group, total, per), conn=conn, hook_at=1)
    _assert_closed(res, conn, what)
    watch.check(res, conn, what)
    got = [r.target for r in target.requests_since(mark) if "continuation-flood" in r.target]
    assert not got, "%s: the unfinished header block reached the origin: %r" % (what, got[:3])
    conn.close()


# ---------------------------------------------------------------- HPACK bomb


def test_hpack_bomb(target):
    """One 4000-byte literal added to the dynamic table, then referenced by index (one
    byte each) tens of thousands of times in one header block: 5 frames of 16 KiB (HEADERS
    and 4 CONTINUATIONs, under max_continuations) decode to some 320 MB. Each such stream
    is refused (431, or RST_STREAM) without reaching the origin, and memory stays bounded;
    then 50 more bombs on the same connection (refused too, or the connection closed).
    CPU budget: 2 s for the 51 blocks (40 ms per 80 KiB block, 0.5 ms per KiB received).
    For scale, on this libnghttp2 (1.52): nghttpd refuses one in about 10 ms; a server whose
    on_header callback fails the stream at its limit (NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE:
    the rest of the block is decoded without callbacks) takes 2 ms; one whose callback keeps
    returning 0 past its limit, 100 ms (nghttp2 still checks every decoded field)."""
    mark = target.mark()
    conn = _flood_conn(target)
    assert conn.server_settings.get(hf.S_MAX_FRAME_SIZE, 16384) >= 16384
    head = hf.request_block("GET", "/echo?hpack-bomb", target.authority)
    refs = hf.hp_indexed(62) * 16384
    literal = hf.hp_literal("x-bomb", "b" * 4000, incremental=True)

    def bomb(sid, with_literal):
        block = head + (literal if with_literal else b"") + refs * 5
        pieces = [block[i : i + 16384] for i in range(0, len(block), 16384)]
        out = [hf.headers_frame(sid, pieces[0], end_stream=True, end_headers=len(pieces) == 1)]
        for j, p in enumerate(pieces[1:], 1):
            out.append(hf.frame(hf.CONTINUATION, hf.F_END_HEADERS if j == len(pieces) - 1 else 0, sid, p))
        return b"".join(out), len(out)

    def refused(sid):
        st = conn.status(sid)
        return sid in conn.rst or (st is not None and st == 431)

    def outcome(sid):
        if sid in conn.rst:
            return "RST_STREAM %s" % hf.err_name(conn.rst[sid])
        if conn.status(sid) is not None:
            return "status %d" % conn.status(sid)
        return "nothing"

    watch = Watch(target, cpu_budget=2.0 * SLOW)
    b, n = bomb(1, True)
    assert n <= 8, n
    conn.send(b)
    conn.pump_until(lambda: refused(1) or conn.status(1) is not None or conn.closed, 5 * SLOW)
    assert refused(1), "the first HPACK bomb got %s (want 431 or RST_STREAM): %s" % (outcome(1), conn.describe())
    assert not conn.closed, "the first HPACK bomb closed the connection (want the stream refused): %s" % conn.describe()

    # Then a stream of bombs, each waited for (the proxy decodes them one after another).
    def bombs():
        for i in range(1, 51):
            yield bomb(1 + 2 * i, False)

    res = hf.run_flood(conn, bombs(), read=True, max_seconds=FLOOD_SECONDS, grace=GRACE_S, pid=target.pid, hooks=[(1, watch.during)])
    watch.late()
    conn.pump_until(lambda: conn.closed or all(sid in conn.rst or sid in conn.ended for sid in range(3, 103, 2)), FLOOD_SECONDS)
    res.rss_peak_kib = max(res.rss_peak_kib or 0, hf.proc_rss_kib(target.pid) or 0)
    answered = [sid for sid in range(3, 103, 2) if sid in conn.rst or conn.status(sid) is not None]
    not_refused = [(sid, outcome(sid)) for sid in answered if not refused(sid)]
    assert not not_refused, "HPACK bombs answered other than 431/RST_STREAM: %r" % not_refused[:5]
    if not conn.closed:
        assert len(answered) == 50, "only %d of 50 bombs were answered, the connection still open: %s" % (len(answered), conn.describe())
    elif conn.goaway:
        assert conn.goaway[1] in FLOOD_CODES, conn.describe()
    watch.check(res, conn, "HPACK bomb")
    got = [r.target for r in target.requests_since(mark) if "hpack-bomb" in r.target]
    assert not got, "HPACK bombs reached the origin: %d of them" % len(got)
    conn.close()


# ---------------------------------------------------------------- PING and SETTINGS


def test_ping_flood_without_reading(target):
    """PINGs as fast as the socket takes them, never reading the ACKs (a 4 KiB receive
    buffer): the server's queue of ACKs is bounded (nghttp2's max_outbound_ack, 1000),
    then the connection is closed. Up to 1 M PINGs."""
    conn = _flood_conn(target, rcvbuf=4096)
    p = hf.ping_frame(b"floodpng") * 1000
    res, conn, watch = _flood(target, "PING flood", ((p, 1000) for _ in range(1000)), read=False, conn=conn, hook_at=1000)
    _assert_closed(res, conn, "PING flood")
    watch.check(res, conn, "PING flood")
    conn.close()


def test_settings_flood_without_reading(target):
    """SETTINGS frames (one entry each) as fast as the socket takes them, never reading
    the ACKs: bounded as the PINGs are. Up to 1 M frames."""
    conn = _flood_conn(target, rcvbuf=4096)
    s = hf.settings_frame([(hf.S_ENABLE_PUSH, 0)]) * 1000
    res, conn, watch = _flood(target, "SETTINGS flood", ((s, 1000) for _ in range(1000)), read=False, conn=conn, hook_at=1000)
    _assert_closed(res, conn, "SETTINGS flood")
    watch.check(res, conn, "SETTINGS flood")
    conn.close()


def test_settings_with_many_entries(target):
    """SETTINGS frames of 2730 entries each (16,380 bytes; nghttp2's max_settings is 32),
    up to 4000 of them (64 MB): the first is refused with GOAWAY and the connection closed."""
    entries = [(hf.S_ENABLE_PUSH, 0), (hf.S_MAX_CONCURRENT_STREAMS, 100), (hf.S_INITIAL_WINDOW_SIZE, 65535)] * 910
    s = hf.settings_frame(entries)
    assert len(s) == 9 + 16380
    res, conn, watch = _flood(target, "SETTINGS with many entries", ((s * 16, 16) for _ in range(250)), read=True)
    _assert_closed(res, conn, "SETTINGS with many entries")
    watch.check(res, conn, "SETTINGS with many entries")
    conn.close()


# ---------------------------------------------------------------- empty DATA


@not_in_nghttp2
def test_empty_data_frames(target):
    """A POST's HEADERS, then DATA frames of length 0 without END_STREAM, up to 100 k of
    them: more than one in a row closes the connection (Envoy's
    max_consecutive_inbound_frames_with_empty_payload, 1)."""
    block = hf.request_block("POST", "/upload?empty-data", target.authority)
    conn = _flood_conn(target)
    conn.send(hf.headers_frame(1, block, end_stream=False))
    empty = hf.data_frame(1, b"") * 1000
    res, conn, watch = _flood(target, "empty DATA frames", ((empty, 1000) for _ in range(100)), conn=conn, hook_at=1)
    _assert_closed(res, conn, "empty DATA frames")
    watch.check(res, conn, "empty DATA frames")
    conn.close()


# ---------------------------------------------------------------- too many streams


def test_too_many_streams(target):
    """As many streams as the server's SETTINGS_MAX_CONCURRENT_STREAMS are opened (POSTs
    whose bodies never come) and stay open; each stream past that is refused
    (RST_STREAM REFUSED_STREAM or PROTOCOL_ERROR, or GOAWAY PROTOCOL_ERROR); a client that
    keeps opening streams past it (up to 50,000) is closed."""
    block = hf.request_block("POST", "/upload?too-many", target.authority)
    watch = Watch(target)
    conn = _flood_conn(target)
    limit = conn.server_settings.get(hf.S_MAX_CONCURRENT_STREAMS)
    assert limit is not None, "the server's SETTINGS have no MAX_CONCURRENT_STREAMS: %r" % conn.server_settings
    assert 1 <= limit <= 1000, limit
    conn.send(b"".join(hf.headers_frame(1 + 2 * i, block, end_stream=False) for i in range(limit)))
    conn.pump_until(lambda: conn.closed or conn.rst, 0.5 * SLOW)
    assert not conn.closed and not conn.rst, "%d streams (the advertised limit) were not all accepted: RST %r, %s" % (
        limit,
        {k: hf.err_name(v) for k, v in list(conn.rst.items())[:5]},
        conn.describe(),
    )
    # One past the limit, alone.
    first_excess = 1 + 2 * limit
    conn.send(hf.headers_frame(first_excess, block, end_stream=False))
    conn.pump_until(lambda: conn.closed or first_excess in conn.rst, 5 * SLOW)
    if conn.goaway:
        assert conn.goaway[1] in (hf.PROTOCOL_ERROR, hf.ENHANCE_YOUR_CALM), conn.describe()
    else:
        assert conn.rst.get(first_excess) in (hf.REFUSED_STREAM, hf.PROTOCOL_ERROR), (
            "stream %d, past MAX_CONCURRENT_STREAMS %d, got %r: %s"
            % (first_excess, limit, hf.err_name(conn.rst[first_excess]) if first_excess in conn.rst else None, conn.describe())
        )
        others = {k: v for k, v in conn.rst.items() if k != first_excess}
        assert not others, "streams under the limit were reset: %r" % others
    # Then keep doing it.
    res = None
    if not conn.closed:

        def group(i):
            return hf.headers_frame(first_excess + 2 + 2 * i, block, end_stream=False), 1

        res, conn, watch = _flood(target, "too many streams", _batches(group, 50000, 500), conn=conn, watch=watch, hook_at=500)
        _assert_closed(res, conn, "too many streams", last_sid=first_excess + 2 * 50000)
    else:
        watch.during()
        res = hf.FloodResult()
        res.rss_peak_kib = hf.proc_rss_kib(target.pid)
    watch.check(res, conn, "too many streams")
    conn.close()


# ---------------------------------------------------------------- the control


def test_well_behaved_client_is_not_closed(target):
    """A client doing everything above within the limits, on one connection, is never
    closed: 3000 GETs (100 streams at a time, the advertised limit), 200 of them cancelled,
    100 with their header block in HEADERS + 5 CONTINUATIONs, 100 POSTs with one empty DATA
    frame between non-empty ones and an empty DATA with END_STREAM at the end, 1200 PINGs
    (10 outstanding at most) and 90 SETTINGS (each acknowledged before the next) between
    the batches of streams."""
    conn = hf.RawConn(target.host, target.port, timeout=5 * SLOW).handshake(
        settings=((hf.S_ENABLE_PUSH, 0), (hf.S_INITIAL_WINDOW_SIZE, 0x7FFFFFFF))
    )
    conn.send(hf.window_update_frame(0, 0x7FFFFFFF - 65535))
    limit = min(conn.server_settings.get(hf.S_MAX_CONCURRENT_STREAMS, 100), 100)
    cpu0 = hf.proc_cpu_seconds(target.pid)
    t0 = time.monotonic()

    get = hf.request_block("GET", "/echo?control", target.authority)
    post = hf.request_block("POST", "/upload?control", target.authority)
    pad = [("x-pad-%d" % k, "p" * 900) for k in range(6)]
    big = hf.request_block("GET", "/echo?control-cont", target.authority, extra=pad)
    assert len(big) > 5000

    sid = 1
    expect_ok = []
    cancelled = []
    n_get = n_cancel = n_cont = n_post = 0

    def settle(sids, timeout):
        ok = conn.pump_until(lambda: conn.closed or all(s in conn.ended or s in conn.rst for s in sids), timeout)
        assert not conn.closed, "the well-behaved client was closed: %s" % conn.describe()
        assert ok, "streams not answered within %.0fs: %r" % (timeout, [s for s in sids if s not in conn.ended and s not in conn.rst][:10])

    while n_get < 3000:
        batch = []
        out = []
        for _ in range(limit):
            if n_get >= 3000:
                break
            n_get += 1
            if n_get % 15 == 0 and n_cancel < 200:
                # a cancelled call: the client lost interest after sending it
                out.append(hf.headers_frame(sid, get) + hf.rst_frame(sid, hf.CANCEL))
                cancelled.append(sid)
                n_cancel += 1
            elif n_get % 30 == 1 and n_cont < 100:
                pieces = [big[i : i + 1024] for i in range(0, len(big), 1024)][:6]
                pieces[-1] += big[6 * 1024 :]
                f = [hf.headers_frame(sid, pieces[0], end_stream=True, end_headers=False)]
                for j, p in enumerate(pieces[1:], 1):
                    f.append(hf.frame(hf.CONTINUATION, hf.F_END_HEADERS if j == len(pieces) - 1 else 0, sid, p))
                assert len(f) == 6
                out.append(b"".join(f))
                batch.append(sid)
                expect_ok.append(sid)
                n_cont += 1
            elif n_get % 30 == 2 and n_post < 100:
                out.append(
                    hf.headers_frame(sid, post, end_stream=False)
                    + hf.data_frame(sid, b"d" * 1000)
                    + hf.data_frame(sid, b"")
                    + hf.data_frame(sid, b"e" * 1000)
                    + hf.data_frame(sid, b"", end_stream=True)
                )
                batch.append(sid)
                expect_ok.append(sid)
                n_post += 1
            else:
                out.append(hf.headers_frame(sid, get))
                batch.append(sid)
                expect_ok.append(sid)
            sid += 2
        conn.send(b"".join(out))
        settle(batch, 10 * SLOW)
        # PINGs and SETTINGS between the batches, as a client's keep-alive and tuning do
        for k in range(4):
            conn.send(b"".join(hf.ping_frame(b"ctl%05d" % (k * 10 + j)) for j in range(10)))
            want = conn.ping_acks + 10
            conn.pump_until(lambda: conn.closed or conn.ping_acks >= want, 5 * SLOW)
        for k in range(3):
            want = conn.settings_acks + 1
            conn.send(hf.settings_frame([(hf.S_ENABLE_PUSH, 0), (hf.S_INITIAL_WINDOW_SIZE, 0x7FFFFFFF), (hf.S_MAX_FRAME_SIZE, 16384), (hf.S_HEADER_TABLE_SIZE, 4096), (hf.S_MAX_CONCURRENT_STREAMS, 100), (hf.S_MAX_HEADER_LIST_SIZE, 65536)]))
            conn.pump_until(lambda: conn.closed or conn.settings_acks >= want, 5 * SLOW)
        assert not conn.closed, "the well-behaved client was closed: %s" % conn.describe()

    conn.pump(0.3)
    assert not conn.closed, "the well-behaved client was closed: %s" % conn.describe()
    bad = [(s, conn.status(s), hf.err_name(conn.rst[s]) if s in conn.rst else None) for s in expect_ok if conn.status(s) != 200 or s in conn.rst]
    assert not bad, "%d well-behaved requests not answered 200, first ones: %r" % (len(bad), bad[:10])
    assert (n_get, n_cancel, n_cont, n_post) == (3000, 200, 100, 100)
    assert conn.ping_acks == 1200, conn.ping_acks
    assert conn.settings_acks == 1 + 90, conn.settings_acks
    print("control: %d streams, %d cancelled, %d PINGs and %d SETTINGS acknowledged in %.1fs, server CPU %.2fs" % (
        n_get, n_cancel, conn.ping_acks, conn.settings_acks, time.monotonic() - t0, hf.proc_cpu_seconds(target.pid) - cpu0))
    # Still serving on the same connection.
    conn.send(hf.headers_frame(sid, get))
    conn.pump_until(lambda: conn.closed or sid in conn.ended, 5 * SLOW)
    assert conn.status(sid) == 200, conn.describe()
    conn.close()
