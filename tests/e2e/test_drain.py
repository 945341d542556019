"""Graceful drain on SIGTERM and on POST /quitquitquit."""

import signal
import threading
import time

import rawhttp
from conftest import SLOW, http_client

DRAIN = 5.0


class SlowRequest(threading.Thread):
    """Sends GET /slow?ms=N on its own connection and keeps the response (or error)."""

    def __init__(self, proxy, ms):
        super().__init__(daemon=True)
        self.proxy = proxy
        self.ms = ms
        self.resp = None
        self.error = None
        self.done_at = None

    def run(self):
        try:
            self.resp = rawhttp.request(self.proxy.outbound, rawhttp.build_request("GET", "/slow?ms=%d" % self.ms), timeout=15)
        except Exception as e:  # reported by the test
            self.error = e
        self.done_at = time.monotonic()


def start_slow(proxy, origin, ms=1500):
    t = SlowRequest(proxy, ms)
    t.start()
    assert origin.wait_for_request("/slow", timeout=5), "the slow request never reached the origin"
    return t


def test_sigterm_drains_inflight_and_exits_0(make_proxy, origin):
    proxy = make_proxy(drain_timeout="5s", extra_args=["--route-timeout", "10s"])
    slow = start_slow(proxy, origin, 1500)
    proxy.expect_exit = True
    t0 = time.monotonic()
    proxy.proc.send_signal(signal.SIGTERM)
    assert rawhttp.wait_port_refused(proxy.outbound, timeout=2.0), "new connections still accepted 2 s after SIGTERM"
    slow.join(15)
    assert slow.error is None, "in-flight request failed during drain: %r" % slow.error
    assert slow.resp.status == 200, slow.resp
    assert slow.resp.body == b"slow done\n"
    rc = proxy.wait_exit(DRAIN + 1.0 * SLOW - (time.monotonic() - t0))
    assert rc is not None, "proxy still running %.1fs after SIGTERM (drain timeout %.0fs)" % (time.monotonic() - t0, DRAIN)
    assert rc == 0, "exit code %d after SIGTERM" % rc


def test_sigterm_idle_exits_promptly(make_proxy):
    proxy = make_proxy(drain_timeout="5s")
    proxy.expect_exit = True
    t0 = time.monotonic()
    proxy.proc.send_signal(signal.SIGTERM)
    rc = proxy.wait_exit(DRAIN + SLOW)
    assert rc is not None, "idle proxy still running after the drain timeout"
    assert rc == 0, "exit code %d" % rc
    elapsed = time.monotonic() - t0
    assert elapsed < DRAIN, "idle proxy took %.2fs to exit (drain timeout %.0fs)" % (elapsed, DRAIN)


def test_sigterm_with_idle_keepalive_connection(make_proxy):
    """An idle keep-alive client connection does not hold the drain past its timeout."""
    proxy = make_proxy(drain_timeout="2s")
    with rawhttp.Conn(proxy.outbound, timeout=10) as c:
        c.send(rawhttp.build_request("GET", "/echo"))
        assert c.read_response().status == 200
        proxy.expect_exit = True
        t0 = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        rc = proxy.wait_exit(2.0 + 2 * SLOW)
        assert rc is not None, "proxy still running %.1fs after SIGTERM with drain timeout 2s" % (time.monotonic() - t0)
        assert rc == 0, "exit code %d" % rc
        assert c.wait_closed(1) == "closed"


def test_drain_timeout_bounds_a_stuck_request(make_proxy, origin):
    """A request that outlives the drain timeout does not keep the process alive."""
    proxy = make_proxy(drain_timeout="1s", extra_args=["--route-timeout", "30s"])
    slow = start_slow(proxy, origin, 10000)
    proxy.expect_exit = True
    t0 = time.monotonic()
    proxy.proc.send_signal(signal.SIGTERM)
    rc = proxy.wait_exit(1.0 + 3 * SLOW)
    assert rc is not None, "proxy still running %.1fs after SIGTERM (drain timeout 1s)" % (time.monotonic() - t0)
    assert rc == 0, "exit code %d" % rc
    slow.join(15)


def test_quitquitquit(make_proxy, origin):
    proxy = make_proxy(drain_timeout="5s", extra_args=["--route-timeout", "10s"])
    slow = start_slow(proxy, origin, 1000)
    proxy.expect_exit = True
    t0 = time.monotonic()
    with http_client() as c:
        r = c.post("http://127.0.0.1:%d/quitquitquit" % proxy.admin)
    assert r.status_code == 200, r.text
    slow.join(15)
    assert slow.error is None, "in-flight request failed during drain: %r" % slow.error
    assert slow.resp.status == 200
    rc = proxy.wait_exit(DRAIN + SLOW - (time.monotonic() - t0))
    assert rc is not None, "proxy still running after /quitquitquit and the drain timeout"
    assert rc == 0, "exit code %d after /quitquitquit" % rc


def test_quitquitquit_requires_post(proxy):
    with http_client() as c:
        r = c.get("http://127.0.0.1:%d/quitquitquit" % proxy.admin)
    assert r.status_code in (400, 404, 405), r
    assert proxy.alive()
