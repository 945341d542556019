"""Real HTTP/2 clients through ringside's listeners to the HTTP/1.1 test origin.

curl (prior knowledge, and the h2c Upgrade attempt that ringside answers in
HTTP/1.1), nghttp, h2load and Python's h2 state machine, alone and mixed with
HTTP/1.1 clients on the same port; bodies checked byte for byte through the
origin's echo. RFC 9113 sections are named where a check rests on one.

To check the suite itself against nghttp2's reference programs, see
h2peer.Target (H2_TEST_NGHTTPD, H2_TEST_NGHTTPX).
"""

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import pytest

import origin as origin_mod
from conftest import SLOW
from h2peer import make_target

TIMEOUT = 5.0 * SLOW


@pytest.fixture
def target(request):
    return make_target(request)


def need(tool, package):
    if not shutil.which(tool):
        pytest.skip("%s is not installed (Debian package %s)" % (tool, package))


def curl_base(target, path):
    """curl arguments reaching `path` on the target by name: ringside routes by
    the authority (origin.test), which curl sends as :authority."""
    if target.origin is None:
        return ["http://%s%s" % (target.authority, path)]
    return ["--connect-to", "origin.test:80:127.0.0.1:%d" % target.port, "http://origin.test%s" % path]


def run(args, timeout=60):
    p = subprocess.run(args, capture_output=True, timeout=timeout * SLOW)
    return p


def echo_headers(echo):
    return [(n.lower(), v) for n, v in echo["headers"]]


# ====================================================================== curl


def test_curl_http2_prior_knowledge(target):
    """RFC 9113 §3.3: curl --http2-prior-knowledge speaks HTTP/2 from the first
    byte; the response comes back over HTTP/2 and the origin got HTTP/1.1 with
    Host from :authority (§8.3.1)."""
    need("curl", "curl")
    p = run(["curl", "-sS", "--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}"] + curl_base(target, "/echo?via=curl"))
    assert p.returncode == 0, p.stderr
    body, _, tail = p.stdout.rpartition(b"\n")
    assert tail == b"2 200", (tail, p.stderr)
    if target.origin is not None:
        e = json.loads(body)
        assert e["version"] == "HTTP/1.1" and e["target"] == "/echo?via=curl"
        assert [v for n, v in echo_headers(e) if n == "host"] == ["origin.test"]


def test_curl_http2_prior_knowledge_upload(target, tmp_path):
    """A 3 MiB POST over HTTP/2 (several windows' worth, §6.9) reaches the
    origin byte for byte."""
    need("curl", "curl")
    target.need_origin()
    data = os.urandom(3 << 20)
    f = tmp_path / "body"
    f.write_bytes(data)
    p = run(["curl", "-sS", "--http2-prior-knowledge", "--data-binary", "@%s" % f, "-w", "\n%{http_version} %{http_code}"] + curl_base(target, "/upload"))
    assert p.returncode == 0, p.stderr
    body, _, tail = p.stdout.rpartition(b"\n")
    assert tail == b"2 200"
    assert json.loads(body) == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_curl_h2c_upgrade_is_answered_in_http1(target):
    """curl --http2 on a plaintext URL asks for h2c by Upgrade (RFC 7540 §3.2,
    which RFC 9113 §3.1 deprecates). ringside ignores the Upgrade and answers
    over HTTP/1.1; the origin gets neither Upgrade nor HTTP2-Settings (they are
    named in Connection, so hop-by-hop, RFC 9110 §7.6.1)."""
    need("curl", "curl")
    target.need_ringside("nghttpd and nghttpx accept the h2c upgrade; ringside's answer is what is tested")
    p = run(["curl", "-sS", "--http2", "-w", "\n%{http_version} %{http_code}"] + curl_base(target, "/echo?via=upgrade"))
    assert p.returncode == 0, p.stderr
    body, _, tail = p.stdout.rpartition(b"\n")
    assert tail == b"1.1 200", tail
    e = json.loads(body)
    names = [n for n, _ in echo_headers(e)]
    assert "upgrade" not in names and "http2-settings" not in names, e["headers"]
    assert e["target"] == "/echo?via=upgrade"


def test_curl_http2_over_tls_with_alpn(make_proxy, tmp_path, origin):
    """RFC 9113 §3.2: over TLS, HTTP/2 is chosen by ALPN "h2". curl --http2 with
    a client certificate to the inbound port (PERMISSIVE, Sidecar ingress to
    the origin) gets an HTTP/2 response."""
    need("curl", "curl")
    from tlspeers import make_pki

    pki = tmp_path / "pki"
    pki.mkdir()
    make_pki(pki)
    cfg = tmp_path / "inbound.yaml"
    cfg.write_text(
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: default}\n"
        "spec:\n  ingress:\n  - port: {number: 80, protocol: HTTP, name: http}\n"
        "    defaultEndpoint: 127.0.0.1:%d\n" % origin.port
    )
    p = make_proxy(extra_args=["--config", str(cfg), "--service-account", "web", "--cert", str(pki / "server.crt"),
                               "--key", str(pki / "server.key"), "--ca", str(pki / "ca.crt")])
    r = run(["curl", "-sS", "--http2", "--cacert", str(pki / "ca.crt"), "--cert", str(pki / "client.crt"), "--key", str(pki / "client.key"),
             "--connect-to", "origin.test:443:127.0.0.1:%d" % p.inbound, "-w", "\n%{http_version} %{http_code}", "https://origin.test/echo?via=tls"])
    assert r.returncode == 0, r.stderr
    body, _, tail = r.stdout.rpartition(b"\n")
    assert tail == b"2 200", (tail, r.stderr)
    assert json.loads(body)["target"] == "/echo?via=tls"


# ====================================================================== nghttp, h2load


def test_nghttp_requests_with_priority_frames(target):
    """nghttp opens with PRIORITY frames on idle streams 3..11 (RFC 9113 §6.3:
    allowed in any state) and then requests on stream 13 and up; ten requests
    on one connection all get 200 and the connection ends without an error."""
    need("nghttp", "nghttp2-client")
    url = "http://127.0.0.1:%d/echo?via=nghttp" % target.port
    p = run(["nghttp", "-nv", "-m", "10", "-H", ":authority: %s" % target.authority, url])
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out[-3000:] + p.stderr.decode(errors="replace")
    assert out.count(":status: 200") == 10, out[-3000:]
    assert "send PRIORITY frame" in out
    for m in re.finditer(r"recv (GOAWAY|RST_STREAM) frame.*\n.*error_code=(\w+)", out):
        assert m.group(2).startswith("NO_ERROR"), m.group(0)


def test_nghttp_upload(target, tmp_path):
    """nghttp -d sends a request body over DATA frames; it arrives whole."""
    need("nghttp", "nghttp2-client")
    target.need_origin()
    data = os.urandom(1 << 20)
    f = tmp_path / "up"
    f.write_bytes(data)
    p = run(["nghttp", "-d", str(f), "-H", ":authority: origin.test", "http://127.0.0.1:%d/upload" % target.port])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _h2load(args, timeout=120):
    p = run(["h2load"] + args, timeout=timeout)
    out = p.stdout.decode(errors="replace")
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    assert m and s, out + p.stderr.decode(errors="replace")
    return [int(x) for x in m.groups()], [int(x) for x in s.groups()], out


def test_h2load_2000_requests_on_4_connections_16_streams_each(target):
    """h2load -n 2000 -c 4 -m 16: 64 streams in flight at once over four
    connections (RFC 9113 §5.1.2, within the 100 announced); every request
    succeeds with a 2xx."""
    need("h2load", "nghttp2-client")
    (total, started, done, ok, failed, errored, tmo), (s2, s3, s4, s5), out = _h2load(
        ["-n", "2000", "-c", "4", "-m", "16", "-H", ":authority: %s" % target.authority, "http://127.0.0.1:%d/echo" % target.port]
    )
    assert (done, ok, failed, errored, tmo) == (2000, 2000, 0, 0, 0), out
    assert s2 == 2000, out


def test_h2load_uploads(target, tmp_path):
    """h2load -d: 200 POSTs of 64 KiB + 1 (one octet past the stream window),
    16 at a time on 2 connections, all 2xx."""
    need("h2load", "nghttp2-client")
    target.need_origin()
    f = tmp_path / "body"
    f.write_bytes(os.urandom(65537))
    (total, started, done, ok, failed, errored, tmo), (s2, s3, s4, s5), out = _h2load(
        ["-n", "200", "-c", "2", "-m", "8", "-d", str(f), "-H", ":authority: origin.test", "http://127.0.0.1:%d/upload" % target.port]
    )
    assert (done, ok, failed, errored, tmo) == (200, 200, 0, 0, 0), out
    assert s2 == 200, out


# ====================================================================== Python h2


class Stream:
    def __init__(self, body):
        self.to_send = memoryview(body) if body is not None else None
        self.sent = 0
        self.headers = None
        self.trailers = None
        self.body = bytearray()
        self.ended = False
        self.reset = None

    @property
    def status(self):
        return int(dict(self.headers)[":status"]) if self.headers else None


class H2Client:
    """A client on h2's state machine: several streams at once, request bodies
    sent as the server's windows allow (RFC 9113 §6.9), received data given
    back as it is read."""

    def __init__(self, port, window=None, timeout=TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.streams = {}
        self.remote_settings = None
        self.flush()

    def flush(self):
        d = self.conn.data_to_send()
        if d:
            self.sock.sendall(d)

    def start(self, headers, body=None):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, headers, end_stream=body is None)
        self.streams[sid] = Stream(body)
        self.flush()
        return sid

    def _send_bodies(self):
        for sid, st in self.streams.items():
            if st.to_send is None or st.ended or st.reset is not None:
                continue
            while st.sent < len(st.to_send):
                n = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size, len(st.to_send) - st.sent)
                if n <= 0:
                    break
                last = st.sent + n == len(st.to_send)
                self.conn.send_data(sid, st.to_send[st.sent : st.sent + n].tobytes(), end_stream=last)
                st.sent += n
            if len(st.to_send) == 0 and st.sent == 0:
                self.conn.end_stream(sid)
                st.to_send = None
        self.flush()

    def pump(self, timeout):
        self._send_bodies()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return
        if not data:
            raise AssertionError("the server closed the connection; streams: %r" % {s: (st.status, st.ended, st.reset) for s, st in self.streams.items()})
        for ev in self.conn.receive_data(data):
            st = self.streams.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived):
                st.headers = ev.headers
            elif isinstance(ev, h2.events.TrailersReceived):
                st.trailers = ev.headers
            elif isinstance(ev, h2.events.DataReceived):
                st.body += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                st.ended = True
            elif isinstance(ev, h2.events.StreamReset):
                if st is not None:
                    st.reset = ev.error_code
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                self.remote_settings = {k: v.new_value for k, v in ev.changed_settings.items()}
            elif isinstance(ev, h2.events.ConnectionTerminated):
                raise AssertionError("GOAWAY from the server: %r" % ev)
        self.flush()

    def wait(self, sids, timeout):
        deadline = time.monotonic() + timeout
        while not all(self.streams[s].ended or self.streams[s].reset is not None for s in sids):
            left = deadline - time.monotonic()
            assert left > 0, "streams not done in %.0fs: %r" % (
                timeout, {s: (self.streams[s].status, len(self.streams[s].body), self.streams[s].sent, self.streams[s].reset) for s in sids})
            self.pump(min(left, 0.5))
        return [self.streams[s] for s in sids]

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except Exception:
            pass
        self.sock.close()


def h2_req(target, path, method="GET", extra=()):
    return [(":method", method), (":scheme", "http"), (":authority", target.authority), (":path", path)] + list(extra)


def test_python_h2_concurrent_1mib_uploads(target):
    """Eight POSTs of 1 MiB each, sent at once on one connection and
    interleaved as the windows allow (RFC 9113 §5, §6.9): each echo names its
    own body's length and SHA-256."""
    target.need_origin()
    c = H2Client(target.port)
    try:
        bodies = [os.urandom(1 << 20) for _ in range(8)]
        sids = [c.start(h2_req(target, "/echo?i=%d" % i, "POST", [("content-length", str(len(b)))]), b) for i, b in enumerate(bodies)]
        got = c.wait(sids, TIMEOUT * 6)
        for i, (st, b) in enumerate(zip(got, bodies)):
            assert st.reset is None and st.status == 200, (i, st.reset, st.headers)
            e = json.loads(bytes(st.body))
            assert e["target"] == "/echo?i=%d" % i
            assert e["body_len"] == len(b) and e["body_sha256"] == hashlib.sha256(b).hexdigest(), i
    finally:
        c.close()


def test_python_h2_many_concurrent_streams(target):
    """200 GETs on one connection, never more than the server's
    SETTINGS_MAX_CONCURRENT_STREAMS (100) open at once (§5.1.2): each gets its
    own response."""
    c = H2Client(target.port)
    try:
        c.pump(0.2)  # the server's SETTINGS
        limit = (c.remote_settings or {}).get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS, 100)
        assert limit == 100
        done = []
        pending = list(range(200))
        open_ = []
        deadline = time.monotonic() + TIMEOUT * 4
        while pending or open_:
            while pending and len(open_) < limit:
                i = pending.pop(0)
                open_.append((i, c.start(h2_req(target, "/echo?n=%d" % i))))
            c.pump(0.2)
            for i, sid in list(open_):
                st = c.streams[sid]
                if st.ended or st.reset is not None:
                    open_.remove((i, sid))
                    done.append((i, st))
            assert time.monotonic() < deadline, "%d of 200 done" % len(done)
        for i, st in done:
            assert st.reset is None and st.status == 200, (i, st.reset)
            if target.origin is not None:
                assert json.loads(bytes(st.body))["target"] == "/echo?n=%d" % i
    finally:
        c.close()


def test_python_h2_large_responses_streamed_concurrently(target):
    """Three 8 MiB responses at once on one connection with our default 64 KiB
    stream windows (§6.9.2): the server sends as our WINDOW_UPDATEs allow and
    every body arrives whole."""
    target.need_origin()
    n = 8 << 20
    c = H2Client(target.port)
    try:
        sids = [c.start(h2_req(target, "/download?bytes=%d&i=%d" % (n, i))) for i in range(3)]
        got = c.wait(sids, TIMEOUT * 8)
        want = origin_mod.pattern_sha256(n)
        for st in got:
            assert st.status == 200 and len(st.body) == n
            assert hashlib.sha256(bytes(st.body)).hexdigest() == want
    finally:
        c.close()


def test_python_h2_small_receive_window(target):
    """With SETTINGS_INITIAL_WINDOW_SIZE 4096 (our receive window), a 2 MiB
    response still flows, 4 KiB per WINDOW_UPDATE, and arrives intact."""
    target.need_origin()
    n = 2 << 20
    c = H2Client(target.port, window=4096)
    try:
        sid = c.start(h2_req(target, "/download?bytes=%d&chunked=1" % n))
        (st,) = c.wait([sid], TIMEOUT * 8)
        assert st.status == 200 and hashlib.sha256(bytes(st.body)).hexdigest() == origin_mod.pattern_sha256(n)
    finally:
        c.close()


def test_python_h2_body_larger_than_the_stream_window(target):
    """RFC 9113 §6.9: a 5 MiB upload on one stream, 80 times the server's
    initial 64 KiB stream window, can only complete if the proxy gives window
    back as it forwards to the origin (and the origin reads): flow control
    works end to end. The origin sees every byte."""
    target.need_origin()
    body = os.urandom(5 << 20)
    c = H2Client(target.port)
    try:
        sid = c.start(h2_req(target, "/upload", "POST"), body)
        (st,) = c.wait([sid], TIMEOUT * 6)
        assert st.status == 200
        assert json.loads(bytes(st.body)) == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    finally:
        c.close()


def test_python_h2_header_translation(target):
    """RFC 9113 §8.2.3: cookie crumbs reach HTTP/1.1 joined by "; "; §8.3.1:
    :authority becomes the one Host; no pseudo-header field reaches the origin;
    the response's fields are lowercase with :status first (§8.2.1, §8.3)."""
    target.need_origin()
    c = H2Client(target.port)
    try:
        sid = c.start(h2_req(target, "/echo?t=1", extra=[("cookie", "a=1"), ("cookie", "b=2"), ("x-multi", "one"), ("x-multi", "two"),
                                                          ("user-agent", "python-h2")]))
        (st,) = c.wait([sid], TIMEOUT)
        assert st.headers[0][0] == ":status"
        assert all(n == n.lower() for n, _ in st.headers)
        e = json.loads(bytes(st.body))
        hs = echo_headers(e)
        assert [v for n, v in hs if n == "host"] == ["origin.test"]
        assert [v for n, v in hs if n == "cookie"] == ["a=1; b=2"]
        assert [v for n, v in hs if n == "x-multi"] in (["one", "two"], ["one, two"])
        assert not any(n.startswith(":") for n, _ in hs)
        assert e["method"] == "GET" and e["version"] == "HTTP/1.1"
    finally:
        c.close()


def test_http1_and_http2_clients_share_the_port(target):
    """The outbound port serves HTTP/1.1 and HTTP/2 (prior knowledge) at the
    same time: four HTTP/1.1 keep-alive clients and two HTTP/2 connections run
    side by side, every request answered on its own protocol."""
    target.need_origin()
    errors = []
    counts = {"h1": 0, "h2": 0}
    lock = threading.Lock()

    def h1(k):
        try:
            with httpx.Client(trust_env=False, timeout=TIMEOUT) as cl:
                for i in range(60):
                    r = cl.get("http://127.0.0.1:%d/echo?h1=%d-%d" % (target.port, k, i), headers={"Host": "origin.test"})
                    assert r.status_code == 200 and r.http_version == "HTTP/1.1"
                    assert json.loads(r.content)["target"] == "/echo?h1=%d-%d" % (k, i)
                    with lock:
                        counts["h1"] += 1
        except Exception as e:  # reported below
            errors.append("h1 client %d: %r" % (k, e))

    def h2c(k):
        c = H2Client(target.port)
        try:
            for batch in range(6):
                sids = [c.start(h2_req(target, "/echo?h2=%d-%d-%d" % (k, batch, i))) for i in range(20)]
                for i, st in enumerate(c.wait(sids, TIMEOUT * 2)):
                    assert st.status == 200 and json.loads(bytes(st.body))["target"] == "/echo?h2=%d-%d-%d" % (k, batch, i)
                    with lock:
                        counts["h2"] += 1
        except Exception as e:  # reported below
            errors.append("h2 client %d: %r" % (k, e))
        finally:
            c.close()

    threads = [threading.Thread(target=h1, args=(k,)) for k in range(4)] + [threading.Thread(target=h2c, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 12)
    assert not errors, errors
    assert counts == {"h1": 240, "h2": 240}
