"""Request and response bodies: lengths, chunked, until-close, HEAD, 204/304,
100-continue, and 100 MiB streamed both ways within a memory bound."""

import hashlib
import json
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

import origin as origin_mod
import rawhttp
from conftest import SANITIZED, SLOW

MiB = 1024 * 1024
RSS_LIMIT_KIB = (256 if SANITIZED else 64) * 1024
BIG = 100 * MiB


def curl(*args, timeout=60):
    return subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", str(int(timeout))] + list(args), capture_output=True, timeout=timeout + 10)


def test_content_length_body_forwarded(proxy, origin):
    body = os.urandom(200 * 1024)
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("POST", "/echo?cl", body=body))
    assert resp.status == 200, resp
    j = json.loads(resp.body)
    assert j["body_len"] == len(body)
    assert j["body_sha256"] == hashlib.sha256(body).hexdigest()
    r = origin.wait_for_request("/echo")
    assert bytes(r.body) == body


def test_chunked_request_body_forwarded(proxy, origin):
    body = os.urandom(150 * 1024)
    raw = rawhttp.build_request("POST", "/echo?chunked", headers=[("Transfer-Encoding", "chunked")], body=rawhttp.chunked(body, (1, 2, 3, 17, 4096, 65536)))
    resp = rawhttp.request(proxy.outbound, raw)
    assert resp.status == 200, resp
    j = json.loads(resp.body)
    assert j["body_len"] == len(body)
    assert j["body_sha256"] == hashlib.sha256(body).hexdigest()
    r = origin.wait_for_request("/echo")
    assert bytes(r.body) == body


def test_chunked_request_body_sent_slowly(proxy, origin):
    """Chunks arrive in separate writes with pauses: the proxy streams them through."""
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(b"POST /echo?slow-chunks HTTP/1.1\r\nHost: origin.test\r\nTransfer-Encoding: chunked\r\n\r\n")
        req = origin.wait_for_request("/echo", timeout=5)
        assert req is not None, "origin did not get the request head before the body was complete"
        for piece in (b"5\r\nhel", b"lo\r\n", b"6\r\n world", b"\r\n0\r\n", b"\r\n"):
            c.send(piece)
            time.sleep(0.02)
        resp = c.read_response()
        assert resp.status == 200, resp
        assert json.loads(resp.body)["body_len"] == 11
        assert bytes(req.body) == b"hello world"


def test_empty_chunked_body(proxy, origin):
    raw = rawhttp.build_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")], body=b"0\r\n\r\n")
    resp = rawhttp.request(proxy.outbound, raw)
    assert resp.status == 200, resp
    assert json.loads(resp.body)["body_len"] == 0


def test_curl_chunked_upload(proxy, origin, tmp_path):
    body = os.urandom(300 * 1024)
    f = tmp_path / "body.bin"
    f.write_bytes(body)
    p = curl("-H", "Host: origin.test", "-H", "Transfer-Encoding: chunked", "--data-binary", "@%s" % f, proxy.url("/echo"))
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["body_len"] == len(body)
    assert j["body_sha256"] == hashlib.sha256(body).hexdigest()
    te = [v for n, v in j["headers"] if n.lower() == "transfer-encoding"]
    cl = [v for n, v in j["headers"] if n.lower() == "content-length"]
    assert te == ["chunked"] or cl == [str(len(body))], j["headers"]


@pytest.mark.parametrize("size", [1000, 600 * 1024, 4 * MiB])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_download_sizes(proxy, size, chunked):
    with rawhttp.Conn(proxy.outbound, timeout=30 * SLOW, idle_timeout=5 * SLOW) as c:
        c.send(rawhttp.build_request("GET", "/download?bytes=%d%s" % (size, "&chunked=1" if chunked else "")))
        resp = c.read_response()
        assert resp.status == 200, resp
        assert len(resp.body) == size
        assert hashlib.sha256(resp.body).hexdigest() == origin_mod.pattern_sha256(size)
        c.send(rawhttp.build_request("GET", "/echo"))
        assert c.read_response().status == 200


def test_chunked_response(proxy):
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(rawhttp.build_request("GET", "/chunked"))
        resp = c.read_response()
        assert resp.status == 200, resp
        assert resp.body == origin_mod.CHUNKED_BODY
        c.send(rawhttp.build_request("GET", "/echo"))
        assert c.read_response().status == 200


def test_curl_chunked_response(proxy):
    p = curl("-H", "Host: origin.test", "-D", "-", proxy.url("/chunked"), timeout=10)
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert body == origin_mod.CHUNKED_BODY


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_until_close_response_reframed_chunked(proxy, version):
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(rawhttp.build_request("GET", "/close?v=%s" % version))
        resp = c.read_response()
        assert resp.status == 200, resp
        assert resp.body == origin_mod.CLOSE_BODY
        assert resp.version == "HTTP/1.1"
        assert resp.framing == "chunked", "until-close response framed by %s, not re-framed as chunked: %r" % (resp.framing, resp.raw_head)
        # the client connection outlives the upstream one
        c.send(rawhttp.build_request("GET", "/echo"))
        assert c.read_response().status == 200


def test_curl_until_close_response(proxy):
    p = curl("-H", "Host: origin.test", proxy.url("/close"), timeout=10)
    assert p.returncode == 0, p.stderr
    assert p.stdout == origin_mod.CLOSE_BODY


def test_head_has_no_body(proxy):
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(rawhttp.build_request("HEAD", "/head-test") + rawhttp.build_request("GET", "/head-test"))
        h = c.read_response(method="HEAD")
        assert h.status == 200, h
        assert h.header("content-length") in (None, "11"), h
        g = c.read_response()
        assert g.status == 200, g
        assert g.body == origin_mod.HEAD_TEST_BODY, "HEAD response carried a body? next response %r" % g
        assert c.wait_closed(0.2) == "open"


@pytest.mark.parametrize("path", ["/204", "/304"])
def test_no_body_statuses(proxy, path):
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(rawhttp.build_request("GET", path) + rawhttp.build_request("GET", "/echo?after"))
        r = c.read_response()
        assert r.status == int(path[1:]), r
        if path == "/204":  # RFC 9112 6.1: no Transfer-Encoding in a 204
            assert not r.header_all("transfer-encoding"), r
        n = c.read_response()
        assert n.status == 200 and json.loads(n.body)["target"] == "/echo?after", n


def test_expect_100_continue(proxy, origin):
    body = b"hello world"
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(b"POST /echo?expect HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        try:
            interim = c.read_response(return_interim=True, timeout=5 * SLOW)
        except Exception as e:
            pytest.fail("no 100 Continue before the body was sent: %r" % e)
        assert interim.status == 100, "expected 100 Continue before the body, got %r" % interim
        assert interim.raw_head.startswith(b"HTTP/1.1 100 Continue"), interim.raw_head
        c.send(body)
        resp = c.read_response()
        assert resp.status == 200, resp
        j = json.loads(resp.body)
        assert j["body_len"] == 11
        names = [n.lower() for n, _ in j["headers"]]
        assert "expect" not in names, "origin saw the Expect header: %r" % j["headers"]


def test_expect_100_continue_unknown_host_no_continue_needed(proxy, origin):
    """A request that will be refused may get its final response without 100."""
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: nowhere.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        r = c.read_response(return_interim=True)
        if r.status == 100:
            c.send(b"hello")
            r = c.read_response()
        assert r.status == 404, r


class RssMonitor(threading.Thread):
    def __init__(self, proxy):
        super().__init__(daemon=True)
        self.proxy = proxy
        self.peak = 0
        self.hwm = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            v = self.proxy.rss_kib()
            if v is None:
                return
            self.peak = max(self.peak, v[0])
            self.hwm = max(self.hwm, v[1])
            self.samples += 1
            self._halt.wait(0.01)

    def stop(self):
        self._halt.set()
        self.join(5)
        v = self.proxy.rss_kib()
        if v:
            self.peak = max(self.peak, v[0])
            self.hwm = max(self.hwm, v[1])
        return self.peak, self.hwm


def check_rss(mon):
    peak, hwm = mon.stop()
    print("proxy RSS while transferring: peak VmRSS %d KiB, VmHWM %d KiB, %d samples" % (peak, hwm, mon.samples))
    assert mon.samples >= 1, "no RSS sample taken"
    assert peak < RSS_LIMIT_KIB, "proxy VmRSS peaked at %d KiB while transferring (limit %d KiB)" % (peak, RSS_LIMIT_KIB)
    assert hwm < RSS_LIMIT_KIB, "proxy VmHWM %d KiB (limit %d KiB)" % (hwm, RSS_LIMIT_KIB)


def test_large_upload_100mib(proxy, origin):
    mon = RssMonitor(proxy)
    mon.start()
    with rawhttp.Conn(proxy.outbound, timeout=120 * SLOW, idle_timeout=10 * SLOW) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: origin.test\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % BIG)
        for block in origin_mod.pattern_bytes(BIG):
            c.send(block)
        resp = c.read_response(timeout=120 * SLOW)
    check_rss(mon)
    assert resp.status == 200, resp
    j = json.loads(resp.body)
    assert j["bytes"] == BIG
    assert j["sha256"] == origin_mod.pattern_sha256(BIG)


def test_large_chunked_upload_100mib(proxy, origin):
    mon = RssMonitor(proxy)
    mon.start()
    with rawhttp.Conn(proxy.outbound, timeout=120 * SLOW, idle_timeout=10 * SLOW) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: origin.test\r\nTransfer-Encoding: chunked\r\n\r\n")
        for block in origin_mod.pattern_bytes(BIG):
            c.send(b"%x\r\n" % len(block) + block + b"\r\n")
        c.send(b"0\r\n\r\n")
        resp = c.read_response(timeout=120 * SLOW)
    check_rss(mon)
    assert resp.status == 200, resp
    j = json.loads(resp.body)
    assert j["bytes"] == BIG
    assert j["sha256"] == origin_mod.pattern_sha256(BIG)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_large_download_100mib(proxy, chunked):
    h = hashlib.sha256()
    n = [0]

    def sink(d):
        h.update(d)
        n[0] += len(d)

    mon = RssMonitor(proxy)
    mon.start()
    with rawhttp.Conn(proxy.outbound, timeout=120 * SLOW, idle_timeout=10 * SLOW) as c:
        c.send(rawhttp.build_request("GET", "/download?bytes=%d%s" % (BIG, "&chunked=1" if chunked else "")))
        resp = c.read_response(body_sink=sink, timeout=120 * SLOW)
    check_rss(mon)
    assert resp.status == 200, resp
    assert n[0] == BIG
    assert h.hexdigest() == origin_mod.pattern_sha256(BIG)


def test_slow_reader_download_backpressure(proxy):
    """A client that stops reading for a while: the proxy must apply backpressure to
    the origin instead of buffering the 100 MiB response."""
    h = hashlib.sha256()
    got = 0

    def sink(d):
        nonlocal got
        h.update(d)
        got += len(d)

    mon = RssMonitor(proxy)
    mon.start()
    with rawhttp.Conn(proxy.outbound, timeout=120 * SLOW, idle_timeout=10 * SLOW) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        c.send(rawhttp.build_request("GET", "/download?bytes=%d" % BIG))
        # deliberately read nothing for a second: an unbounded proxy would buffer it all
        time.sleep(1.0)
        resp = c.read_response(body_sink=sink, timeout=120 * SLOW)
    check_rss(mon)
    assert resp.status == 200
    assert got == BIG
    assert h.hexdigest() == origin_mod.pattern_sha256(BIG)


def _cx_active_zero(proxy):
    m = proxy.wait_metric(lambda m: m.value("ringside_downstream_cx_active") == 0, timeout=5 * SLOW)
    assert m.value("ringside_downstream_cx_active") == 0, "downstream connections still counted active after the clients left"


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
def test_client_aborts_while_waiting_for_upstream(proxy, origin, rst):
    c = rawhttp.Conn(proxy.outbound)
    c.send(rawhttp.build_request("GET", "/slow?ms=800"))
    assert origin.wait_for_request("/slow", timeout=5)
    if rst:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    _cx_active_zero(proxy)
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo?after-abort"))
    assert resp.status == 200


def test_client_aborts_mid_upload(proxy, origin):
    c = rawhttp.Conn(proxy.outbound)
    c.send(b"POST /upload HTTP/1.1\r\nHost: origin.test\r\nContent-Length: %d\r\n\r\n" % BIG)
    sent = 0
    for block in origin_mod.pattern_bytes(4 * MiB):
        c.send(block)
        sent += len(block)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    _cx_active_zero(proxy)
    req = origin.wait_for_request("/upload", timeout=5)
    assert req is not None, "the upload never reached the origin"
    up = [x for x in origin.conns if x.id == req.conn_id][0]
    assert up.closed.wait(5 * SLOW), "the upstream connection of an upload the client abandoned stays open"
    assert not req.body_complete
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo?after-abort"))
    assert resp.status == 200


def test_client_aborts_mid_download(proxy, origin):
    c = rawhttp.Conn(proxy.outbound, timeout=30 * SLOW, idle_timeout=10 * SLOW)
    c.send(rawhttp.build_request("GET", "/download?bytes=%d" % BIG))
    deadline = time.monotonic() + 30 * SLOW
    c.read_head(deadline)
    while c.received < 2 * MiB:  # bounded by the deadline: _fill raises past it
        c._fill(deadline)
        c.buf.clear()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    _cx_active_zero(proxy)
    up = origin.wait_for(lambda: [x for x in origin.conns if x.total > 0])
    assert up, "origin saw no upstream connection"
    assert up[-1].closed.wait(5 * SLOW), "the proxy kept the upstream download going after the client left"
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo?after-abort"))
    assert resp.status == 200
