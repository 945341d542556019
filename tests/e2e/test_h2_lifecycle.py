"""An HTTP/2 client connection's life: drain (GOAWAY NO_ERROR naming the last
stream taken, in-flight streams finish, then the close), idle timeout (GOAWAY,
then the close), and a configuration reload under an open connection."""

import signal
import time

from conftest import SLOW
from h2peer import NO_ERROR, H2Peer, get_headers
from hyperframe.frame import GoAwayFrame


def test_drain_sends_goaway_and_lets_streams_finish(make_proxy, origin):
    """RFC 9113 §6.8: on SIGTERM the server says GOAWAY (NO_ERROR) with the
    last stream it took; that stream's response still comes whole; then the
    connection closes and the process exits 0."""
    p = make_proxy(drain_timeout="5s")
    c = H2Peer(p.outbound, timeout=5 * SLOW)
    c.handshake()
    sid = c.new_stream_id()
    c.send_headers(sid, get_headers("/slow?ms=800"))
    assert origin.wait_for_request("/slow", timeout=5)
    p.expect_exit = True
    p.proc.send_signal(signal.SIGTERM)
    g = c.expect(lambda f: isinstance(f, GoAwayFrame), "GOAWAY on drain")
    assert g.error_code == NO_ERROR and g.last_stream_id == sid
    r = c.read_response(sid, timeout=5 * SLOW)
    assert r.status == 200 and bytes(r.body) == b"slow done\n"
    c.expect_closed(5 * SLOW, "the close after the last stream")
    assert p.wait_exit(6 * SLOW) == 0


def test_idle_connection_gets_goaway_then_close(make_proxy):
    """--idle-timeout: a connection without streams for that long is told
    GOAWAY (NO_ERROR), then closed."""
    p = make_proxy(extra_args=["--idle-timeout", "1s"])
    c = H2Peer(p.outbound, timeout=5 * SLOW)
    c.handshake()
    r = c.request(get_headers("/echo"))
    assert r.status == 200
    t0 = time.monotonic()
    g = c.expect(lambda f: isinstance(f, GoAwayFrame), "GOAWAY after the idle timeout", timeout=5 * SLOW)
    assert g.error_code == NO_ERROR
    assert time.monotonic() - t0 >= 0.5
    c.expect_closed(5 * SLOW)


def test_reload_keeps_the_connection(make_proxy, origin, tmp_path):
    """A reload publishes a new snapshot under an open HTTP/2 connection: its
    next streams go by the new configuration, on the same connection."""
    p = make_proxy()
    c = H2Peer(p.outbound, timeout=5 * SLOW)
    c.handshake()
    assert c.request(get_headers("/echo", authority="later.test")).status == 404
    extra = tmp_path / "later.yaml"
    extra.write_text(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: later, namespace: default}\n"
        "spec:\n  hosts: [later.test]\n  resolution: STATIC\n  ports: [{number: 80, name: http, protocol: HTTP}]\n"
        "  endpoints: [{address: 127.0.0.1, ports: {http: %d}}]\n" % origin.port)
    p.config_path.write_text(p.config_path.read_text() + "\n---\n" + extra.read_text())
    p.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5 * SLOW
    status = None
    while time.monotonic() < deadline:
        status = c.request(get_headers("/echo", authority="later.test")).status
        if status == 200:
            break
        time.sleep(0.05)
    assert status == 200
    c.close()
