"""Routing, keep-alive, pipelining, pooling, forwarded and hop-by-hop headers."""

import json
import re
import subprocess
import time

import pytest

import rawhttp
from conftest import http_client

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "te", "upgrade")


def echo_headers(resp_body):
    """Headers the origin received, as a list of (lowercase name, value)."""
    return [(n.lower(), v) for n, v in json.loads(resp_body)["headers"]]


def hval(headers, name):
    vals = [v for n, v in headers if n == name]
    return vals


def test_ready_endpoints(proxy):
    with http_client() as c:
        r = c.get("http://127.0.0.1:%d/ready" % proxy.admin)
        assert r.status_code == 200
        assert r.text.strip() == "LIVE"
        h = c.get("http://127.0.0.1:%d/healthz/ready" % proxy.health)
        assert h.status_code == 200


def test_get_through_proxy_httpx(proxy, origin):
    r = proxy.get("/echo?x=1")
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["method"] == "GET"
    assert j["path"] == "/echo"
    assert j["target"] == "/echo?x=1"
    hosts = [v for n, v in j["headers"] if n.lower() == "host"]
    assert len(hosts) == 1 and hosts[0].split(":")[0] == "origin.test", j["headers"]
    assert origin.accepted() >= 1


def test_host_with_port(proxy):
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo", host="origin.test:80"))
    assert resp.status == 200, resp
    assert json.loads(resp.body)["path"] == "/echo"


def test_host_case_insensitive(proxy):
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo", host="Origin.TEST"))
    assert resp.status == 200, resp


def test_unknown_host_404(proxy, origin):
    mark = origin.mark()
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo", host="nowhere.example"))
    assert resp.status == 404, resp
    assert b"no route for host" in resp.body, resp
    assert b"nowhere.example" in resp.body, resp
    assert origin.byte_count_since(mark) == 0


def test_query_and_method_forwarded(proxy):
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        body = b"abc" if method in ("POST", "PUT", "PATCH") else b""
        resp = rawhttp.request(proxy.outbound, rawhttp.build_request(method, "/echo?a=1&b=%2F", body=body))
        assert resp.status == 200, (method, resp)
        j = json.loads(resp.body)
        assert j["method"] == method
        assert j["target"] == "/echo?a=1&b=%2F"
        assert j["body_len"] == len(body)


def test_curl_keepalive(proxy, origin):
    """curl fetches two URLs on one connection: the second transfer makes no new connect."""
    url = proxy.url("/echo")
    p = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--max-time", "10", "-H", "Host: origin.test", "-o", "/dev/null", "-o", "/dev/null",
         "-w", "%{http_code} %{num_connects}\\n", url, url],
        capture_output=True, text=True, timeout=20,
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    assert lines == ["200", "1", "200", "0"], "curl output %r (status, new connects per transfer)" % p.stdout


def test_curl_verbose_get(proxy):
    p = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--max-time", "10", "-H", "Host: origin.test", "-D", "-", proxy.url("/head-test")],
        capture_output=True, timeout=20,
    )
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), p.stdout
    assert body == b"hello world"


def test_keepalive_many_requests_one_connection(proxy):
    with rawhttp.Conn(proxy.outbound) as c:
        for i in range(20):
            c.send(rawhttp.build_request("GET", "/echo?i=%d" % i))
            resp = c.read_response()
            assert resp.status == 200, resp
            assert json.loads(resp.body)["target"] == "/echo?i=%d" % i
        assert c.wait_closed(0.2) == "open"


def test_pipelining_three_in_one_write(proxy):
    reqs = b"".join(rawhttp.build_request("GET", "/echo?n=%d" % i) for i in (1, 2, 3))
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(reqs)
        for i in (1, 2, 3):
            resp = c.read_response()
            assert resp.status == 200, resp
            assert json.loads(resp.body)["target"] == "/echo?n=%d" % i


def test_pipelining_mixed_with_bodies_and_404(proxy):
    reqs = (
        rawhttp.build_request("POST", "/echo?n=1", body=b"x" * 1000)
        + rawhttp.build_request("GET", "/echo?n=2", host="unknown.example")
        + rawhttp.build_request("POST", "/echo?n=3", headers=[("Transfer-Encoding", "chunked")], body=rawhttp.chunked(b"y" * 3000))
        + rawhttp.build_request("GET", "/echo?n=4")
    )
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(reqs)
        r1 = c.read_response()
        assert r1.status == 200 and json.loads(r1.body)["body_len"] == 1000, r1
        r2 = c.read_response()
        assert r2.status == 404, r2
        r3 = c.read_response()
        assert r3.status == 200 and json.loads(r3.body)["body_len"] == 3000, r3
        r4 = c.read_response()
        assert r4.status == 200 and json.loads(r4.body)["target"] == "/echo?n=4", r4


def test_upstream_pooling_one_client_connection(make_proxy, origin):
    proxy = make_proxy(concurrency=1)
    with rawhttp.Conn(proxy.outbound) as c:
        for i in range(10):
            c.send(rawhttp.build_request("GET", "/echo?i=%d" % i))
            resp = c.read_response()
            assert resp.status == 200, resp
    assert origin.accepted() == 1, "10 sequential requests used %d upstream connections" % origin.accepted()


def test_upstream_pooling_across_client_connections(make_proxy, origin):
    """The pool belongs to the shard, not to the downstream connection."""
    proxy = make_proxy(concurrency=1)
    for i in range(5):
        resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo?i=%d" % i))
        assert resp.status == 200, resp
    assert origin.accepted() == 1, "5 sequential client connections used %d upstream connections" % origin.accepted()


def test_concurrent_requests_use_separate_upstream_connections(make_proxy, origin):
    """Two requests in flight at once cannot share an HTTP/1.1 upstream connection."""
    proxy = make_proxy(concurrency=1)
    with rawhttp.Conn(proxy.outbound) as a, rawhttp.Conn(proxy.outbound) as b:
        a.send(rawhttp.build_request("GET", "/slow?ms=300"))
        assert origin.wait_for_request("/slow", timeout=5), "origin never got the first request"
        b.send(rawhttp.build_request("GET", "/echo"))
        rb = b.read_response()
        ra = a.read_response()
        assert ra.status == 200 and rb.status == 200
    assert origin.accepted() == 2


def test_hop_by_hop_request_headers_stripped(proxy):
    raw = rawhttp.build_request(
        "GET",
        "/echo",
        headers=[
            ("Connection", "keep-alive, X-Foo"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Upgrade", "foo/1"),
            ("X-Foo", "must-be-stripped"),
            ("X-Keep", "kept"),
        ],
    )
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(raw)
        resp = c.read_response()
        assert resp.status == 200, resp
        h = echo_headers(resp.body)
        for name in HOP_BY_HOP + ("x-foo",):
            assert not hval(h, name), "origin received %s: %r" % (name, hval(h, name))
        assert hval(h, "x-keep") == ["kept"]
        # the downstream connection is still usable
        c.send(rawhttp.build_request("GET", "/echo"))
        assert c.read_response().status == 200


def test_connection_header_multiple_tokens_and_lines(proxy):
    raw = rawhttp.build_request(
        "GET",
        "/echo",
        headers=[("Connection", "x-a"), ("Connection", "X-B ,  x-c"), ("X-A", "1"), ("X-B", "2"), ("X-C", "3"), ("X-D", "4")],
    )
    resp = rawhttp.request(proxy.outbound, raw)
    assert resp.status == 200, resp
    h = echo_headers(resp.body)
    for name in ("connection", "x-a", "x-b", "x-c"):
        assert not hval(h, name), "origin received %s: %r" % (name, hval(h, name))
    assert hval(h, "x-d") == ["4"]


def test_transfer_encoding_not_forwarded_for_length_body(proxy):
    """A Content-Length request reaches the origin with that length and no Transfer-Encoding."""
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("POST", "/echo", body=b"0123456789"))
    assert resp.status == 200
    h = echo_headers(resp.body)
    assert not hval(h, "transfer-encoding")
    assert hval(h, "content-length") == ["10"]


def test_hop_by_hop_response_headers_stripped(proxy):
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(rawhttp.build_request("GET", "/hop"))
        resp = c.read_response()
        assert resp.status == 200, resp
        assert resp.body == b"hop-body"
        for name in ("keep-alive", "proxy-connection", "te", "upgrade", "x-bar"):
            assert not resp.has_header(name), "client received %s: %r" % (name, resp.header_all(name))
        for v in resp.header_all("connection"):
            assert "x-bar" not in v.lower(), "upstream Connection value forwarded: %r" % v
        for v in resp.header_all("transfer-encoding"):
            assert v.lower() == "chunked", "Transfer-Encoding %r" % v
        assert resp.header("x-keep") == "kept"
        c.send(rawhttp.build_request("GET", "/echo"))
        assert c.read_response().status == 200


def test_x_forwarded_for_appended(proxy):
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo"))
    h = echo_headers(resp.body)
    xff = hval(h, "x-forwarded-for")
    assert len(xff) == 1 and [s.strip() for s in xff[0].split(",")] == ["127.0.0.1"], xff

    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo", headers=[("X-Forwarded-For", "10.1.2.3")]))
    h = echo_headers(resp.body)
    xff = ",".join(hval(h, "x-forwarded-for"))
    assert [s.strip() for s in xff.split(",")] == ["10.1.2.3", "127.0.0.1"], xff


def test_x_forwarded_proto(proxy):
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo"))
    assert hval(echo_headers(resp.body), "x-forwarded-proto") == ["http"]
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo", headers=[("X-Forwarded-Proto", "https")]))
    assert hval(echo_headers(resp.body), "x-forwarded-proto") == ["https"]


def test_request_id_generated_uuid4_and_unique(proxy):
    ids = []
    for _ in range(3):
        resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo"))
        rid = hval(echo_headers(resp.body), "x-request-id")
        assert len(rid) == 1, rid
        assert UUID4.match(rid[0]), rid
        ids.append(rid[0])
    assert len(set(ids)) == 3, ids


def test_request_id_kept(proxy):
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo", headers=[("X-Request-Id", "my-own-id-123")]))
    assert hval(echo_headers(resp.body), "x-request-id") == ["my-own-id-123"]


def test_end_to_end_headers_preserved(proxy):
    """Ordinary headers, repeated ones included, reach the origin with their values."""
    resp = rawhttp.request(
        proxy.outbound,
        rawhttp.build_request("GET", "/echo", headers=[("X-Multi", "a"), ("X-Multi", "b"), ("Accept", "*/*"), ("X-Empty", "")]),
    )
    h = echo_headers(resp.body)
    assert ",".join(hval(h, "x-multi")).replace(" ", "") == "a,b"
    assert hval(h, "accept") == ["*/*"]
    assert hval(h, "x-empty") == [""]


def test_http10_client(proxy):
    """An HTTP/1.0 client gets a response it can read (framed by length or by close)."""
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(b"GET /echo HTTP/1.0\r\nHost: origin.test\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 200, resp
        assert json.loads(resp.body)["path"] == "/echo"
        assert resp.framing in ("length", "close"), "chunked response to an HTTP/1.0 client"
        assert c.wait_closed(3) == "closed", "HTTP/1.0 connection without keep-alive stays open"


def test_connection_close_from_client(proxy):
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(rawhttp.build_request("GET", "/echo", headers=[("Connection", "close")]))
        resp = c.read_response()
        assert resp.status == 200
        assert c.wait_closed(3) == "closed"


@pytest.mark.parametrize("n", [50])
def test_many_concurrent_connections(proxy, n):
    conns = [rawhttp.Conn(proxy.outbound) for _ in range(n)]
    try:
        for i, c in enumerate(conns):
            c.send(rawhttp.build_request("GET", "/echo?c=%d" % i))
        for i, c in enumerate(conns):
            resp = c.read_response(timeout=10)
            assert resp.status == 200
            assert json.loads(resp.body)["target"] == "/echo?c=%d" % i
    finally:
        for c in conns:
            c.close()


def test_idle_timeout_closes_idle_downstream_connection(make_proxy):
    proxy = make_proxy(extra_args=["--idle-timeout", "300ms"])
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(rawhttp.build_request("GET", "/echo"))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        assert c.wait_closed(5) == "closed", "idle connection still open 5 s after a 300ms idle timeout"
        elapsed = time.monotonic() - t0
        assert elapsed >= 0.25, "closed after %.2fs, before the 300ms idle timeout" % elapsed
    # a request in flight longer than the idle timeout is not cut by it
    with rawhttp.Conn(proxy.outbound) as c:
        for i in range(2):
            c.send(rawhttp.build_request("GET", "/slow?ms=600"))
            assert c.read_response().status == 200
