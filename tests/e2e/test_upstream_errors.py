"""Upstream failures: refused, connect timeout, reset, route timeout, malformed
response, truncated response, stale pooled connections."""

import socket
import time

import pytest

import origin as origin_mod
import rawhttp
from conftest import SLOW


def get(proxy, path, host="origin.test", timeout=10.0):
    return rawhttp.request(proxy.outbound, rawhttp.build_request("GET", path, host=host), timeout=timeout)


def assert_still_serving(proxy):
    resp = get(proxy, "/echo?still-serving")
    assert resp.status == 200, "proxy stopped serving after the failure: %r" % resp


def test_connection_refused_503(proxy):
    resp = get(proxy, "/echo", host="refused.test")
    assert resp.status == 503, resp
    assert b"reset reason: connection failure" in resp.body, resp
    assert_still_serving(proxy)


def test_connection_refused_keepalive_survives(proxy):
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(rawhttp.build_request("GET", "/echo", host="refused.test"))
        r = c.read_response()
        assert r.status == 503, r
        c.send(rawhttp.build_request("GET", "/echo"))
        r = c.read_response()
        assert r.status == 200, r


def test_connect_timeout_503(make_proxy, origin, refused):
    bh = origin_mod.Blackhole()
    try:
        if not bh.ok:
            pytest.skip("could not fill a loopback listen queue so that connects hang (SYNs are not dropped here)")
        proxy = make_proxy(
            hosts={"origin.test": origin.port, "blackhole.test": bh.port},
            extra_args=["--connect-timeout", "250ms", "--route-timeout", "10s"],
        )
        t0 = time.monotonic()
        resp = get(proxy, "/echo", host="blackhole.test", timeout=15)
        elapsed = time.monotonic() - t0
        assert resp.status == 503, resp
        assert b"reset reason: connection timeout" in resp.body, resp
        assert elapsed < 5 * SLOW, "connect timeout of 250ms took %.2fs" % elapsed
        assert_still_serving(proxy)
    finally:
        bh.close()


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
def test_upstream_closes_before_response_503(proxy, rst):
    resp = get(proxy, "/reset?rst=1" if rst else "/reset")
    assert resp.status == 503, resp
    assert b"reset reason: connection termination" in resp.body, resp
    assert_still_serving(proxy)


def test_route_timeout_504(make_proxy, origin):
    proxy = make_proxy(extra_args=["--route-timeout", "500ms"])
    t0 = time.monotonic()
    resp = get(proxy, "/slow?ms=4000", timeout=10)
    elapsed = time.monotonic() - t0
    assert resp.status == 504, resp
    assert b"upstream request timeout" in resp.body, resp
    assert 0.45 <= elapsed < 3.0 * SLOW, "route timeout of 500ms answered after %.2fs" % elapsed
    assert_still_serving(proxy)


def test_route_timeout_not_hit_by_fast_response(make_proxy):
    proxy = make_proxy(extra_args=["--route-timeout", "2s"])
    resp = get(proxy, "/slow?ms=200")
    assert resp.status == 200, resp
    assert resp.body == b"slow done\n"


def test_malformed_upstream_response_502(proxy):
    resp = get(proxy, "/garbage")
    assert resp.status == 502, resp
    assert b"protocol error" in resp.body, resp
    assert_still_serving(proxy)


def test_upstream_status_passed_through(proxy):
    for code in (200, 201, 301, 404, 418, 500, 503):
        resp = get(proxy, "/status/%d" % code)
        assert resp.status == code, resp
        assert resp.body == b"status %d\n" % code


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_truncated_response_body_not_completed(proxy, chunked):
    """The origin dies mid-body after the headers went out: the client must see the
    response cut short (connection closed), never a complete-looking response."""
    with rawhttp.Conn(proxy.outbound, timeout=10) as c:
        c.send(rawhttp.build_request("GET", "/truncated?chunked=1" if chunked else "/truncated"))
        try:
            resp = c.read_response()
        except rawhttp.Closed:
            resp = None
        except socket.timeout:
            pytest.fail("proxy neither completed nor closed the downstream connection after the upstream died mid-body")
        assert resp is None, "truncated upstream body was delivered as complete: %r" % resp
    assert_still_serving(proxy)


def _proxy_side_state(proxy_port, origin_port):
    """TCP state (hex string) of the proxy's socket 127.0.0.1:proxy_port -> origin_port, or None."""
    want_local = "0100007F:%04X" % proxy_port
    want_remote = "0100007F:%04X" % origin_port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[1] == want_local and parts[2] == want_remote:
                return parts[3]
    return None


def test_stale_pooled_connection_closed_by_origin(make_proxy, origin):
    """The origin closes an idle keep-alive connection without notice: the next
    request must not fail."""
    proxy = make_proxy(concurrency=1)
    resp = get(proxy, "/echo?close=1")
    assert resp.status == 200, resp
    conn = origin.conns[0]
    assert conn.closed.wait(5)
    # poll until the proxy has closed its end (it saw the FIN), at most 2 s
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and _proxy_side_state(conn.peer[1], origin.port) == "08":  # CLOSE_WAIT
        time.sleep(0.01)
    for i in range(3):
        resp = get(proxy, "/echo?after-close=%d" % i)
        assert resp.status == 200, "request %d after the origin closed a pooled connection: %r" % (i, resp)
