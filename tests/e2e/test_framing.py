"""Request smuggling and malformed framing: rejected before anything reaches the origin."""

import itertools
import re

import pytest

import rawhttp

_ids = itertools.count(1)


def head(extra, method="POST", path=None, host="Host: origin.test\r\n"):
    path = path or "/attack-%d" % next(_ids)
    return ("%s %s HTTP/1.1\r\n%s" % (method, path, host)).encode() + extra


# name -> raw request (each must get 400, the connection closed, nothing at the origin)
ATTACKS = {
    "cl-and-te": head(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "te-and-cl": head(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
    "cl-and-te-not-last": head(b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\nabc"),
    "two-cl-same": head(b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
    "two-cl-differ": head(b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    "two-cl-differ-reverse": head(b"Content-Length: 6\r\nContent-Length: 5\r\n\r\nhello!"),
    "cl-12a": head(b"Content-Length: 12a\r\n\r\nhello world!"),
    "cl-minus-1": head(b"Content-Length: -1\r\n\r\nhello"),
    "cl-1-space-2": head(b"Content-Length: 1 2\r\n\r\nhello world!"),
    "cl-plus-5": head(b"Content-Length: +5\r\n\r\nhello"),
    "cl-empty": head(b"Content-Length: \r\n\r\nhello"),
    "te-chunked-gzip": head(b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
    "te-gzip": head(b"Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n"),
    "space-before-colon-host": head(b"\r\n", method="GET", host="Host : origin.test\r\n"),
    "space-before-colon": head(b"X-Foo : bar\r\n\r\n", method="GET"),
    "tab-before-colon": head(b"X-Foo\t: bar\r\n\r\n", method="GET"),
    "obs-fold-space": head(b"X-Foo: bar\r\n baz\r\n\r\n", method="GET"),
    "obs-fold-tab": head(b"X-Foo: bar\r\n\tbaz\r\n\r\n", method="GET"),
    "obs-fold-host": head(b"X-Foo: bar\r\n\r\n", method="GET", host="Host: origin.test\r\n .evil\r\n"),
    "bare-cr-in-value": head(b"X-Foo: ba\rr\r\n\r\n", method="GET"),
    "nul-in-value": head(b"X-Foo: ba\x00r\r\n\r\n", method="GET"),
}

BAD_CHUNKS = {
    "chunk-size-zz": b"zz\r\nhello\r\n0\r\n\r\n",
    "chunk-size-overflow": b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "chunk-size-overflow-16": b"10000000000000005\r\nhello\r\n0\r\n\r\n",
    "chunk-size-negative": b"-5\r\nhello\r\n0\r\n\r\n",
}


def fresh_request_only(proxy, origin, mark, what):
    """A fresh request works, and it is the only thing the origin received since mark."""
    target = "/echo?fresh-after=%s" % re.sub(r"[^A-Za-z0-9-]", "-", what)
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", target))
    assert resp.status == 200, "proxy did not serve a fresh request after %s: %r" % (what, resp)
    reqs = origin.requests_since(mark)
    data = origin.bytes_since(mark)
    assert [r.target for r in reqs] == [target], "origin received %r" % data[:2000]
    assert len(data) == len(reqs[0].raw_head) + 4, "origin received bytes besides the fresh request: %r" % data[:2000]


def expect_rejected(proxy, origin, raw, status, what, must_close=True):
    mark = origin.mark()
    with rawhttp.Conn(proxy.outbound) as c:
        try:
            c.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy may stop reading early; the response must still arrive
        try:
            resp = c.read_response()
        except rawhttp.Closed as e:
            pytest.fail("%s: connection closed without a %d response (%s)" % (what, status, e))
        assert resp.status == status, "%s: expected %d, got %r" % (what, status, resp)
        if must_close:
            assert c.wait_closed(3) == "closed", "%s: connection not closed after %d" % (what, status)
    fresh_request_only(proxy, origin, mark, what)


@pytest.mark.parametrize("warm", [False, True], ids=["cold-pool", "warm-pool"])
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_framing_attack_rejected(make_proxy, origin, name, warm):
    """With warm-pool, one shard holds an idle upstream connection when the attack
    arrives, so nothing (such as a connect) delays what the proxy would send."""
    proxy = make_proxy(concurrency=1)
    if warm:
        assert rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo?warm")).status == 200
    expect_rejected(proxy, origin, ATTACKS[name], 400, name)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_framing_attack_after_valid_request_on_same_connection(proxy, origin, name):
    """The attack arrives pipelined behind a valid request: the valid one is served,
    the attack gets 400 and never reaches the origin."""
    good = rawhttp.build_request("GET", "/echo?before-attack")
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(good)
        first = c.read_response()
        assert first.status == 200
        mark = origin.mark()
        c.send(ATTACKS[name])
        try:
            resp = c.read_response()
        except rawhttp.Closed as e:
            pytest.fail("%s: connection closed without a 400 response (%s)" % (name, e))
        assert resp.status == 400, resp
        assert c.wait_closed(3) == "closed"
    fresh_request_only(proxy, origin, mark, name)


@pytest.mark.parametrize("name", sorted(BAD_CHUNKS))
def test_bad_chunk_size(proxy, origin, name):
    raw = head(b"Transfer-Encoding: chunked\r\n\r\n" + BAD_CHUNKS[name], path="/echo?bad-chunk")
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(raw)
        try:
            resp = c.read_response()
            assert resp.status == 400, "%s: expected 400 or a closed connection, got %r" % (name, resp)
        except rawhttp.Closed:
            pass
        assert c.wait_closed(3) == "closed"
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo?fresh"))
    assert resp.status == 200


def test_headers_over_60k_431(proxy, origin):
    raw = rawhttp.build_request("GET", "/echo?big", headers=[("X-Big", "a" * (70 * 1024))])
    expect_rejected(proxy, origin, raw, 431, "70 KiB header", must_close=False)


def test_many_header_lines_over_60k_431(proxy, origin):
    hdrs = [("X-Part-%d" % i, "b" * 1000) for i in range(64)]  # 64 KiB in 64 headers
    raw = rawhttp.build_request("GET", "/echo?big2", headers=hdrs)
    expect_rejected(proxy, origin, raw, 431, "64 x 1 KiB headers", must_close=False)


def test_more_than_100_headers_431(proxy, origin):
    hdrs = [("X-H-%d" % i, "v") for i in range(110)]
    raw = rawhttp.build_request("GET", "/echo?many", headers=hdrs)
    expect_rejected(proxy, origin, raw, 431, "110 headers", must_close=False)


def test_headers_within_limits_ok(proxy):
    hdrs = [("X-H-%d" % i, "v" * 500) for i in range(60)]  # 60 headers, ~31 KiB
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo", headers=hdrs))
    assert resp.status == 200, resp


def test_valid_chunked_with_extensions_and_trailers(proxy, origin):
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    raw = head(b"Transfer-Encoding: chunked\r\n\r\n" + body, path="/echo?ext")
    resp = rawhttp.request(proxy.outbound, raw)
    assert resp.status == 200, resp
    r = origin.wait_for_request("/echo")
    assert bytes(r.body) == b"hello world"


def test_header_limit_flags(make_proxy, origin):
    """--max-headers-count and --max-request-headers-kb set the limits."""
    proxy = make_proxy(extra_args=["--max-headers-count", "20", "--max-request-headers-kb", "8"])
    ok = rawhttp.build_request("GET", "/echo?ok", headers=[("X-H-%d" % i, "v" * 200) for i in range(15)])
    assert rawhttp.request(proxy.outbound, ok).status == 200
    many = rawhttp.build_request("GET", "/echo?many", headers=[("X-H-%d" % i, "v") for i in range(25)])
    expect_rejected(proxy, origin, many, 431, "25 headers over a limit of 20", must_close=False)
    big = rawhttp.build_request("GET", "/echo?big", headers=[("X-Big", "b" * 10 * 1024)])
    expect_rejected(proxy, origin, big, 431, "10 KiB over a limit of 8 KiB", must_close=False)
