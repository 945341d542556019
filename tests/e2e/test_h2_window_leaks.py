"""Connection windows survive cancelled streams: bytes held back for a slow
client (response) or a slow upstream (request body) go back to the shared
connection window when the stream ends, so later streams are not starved
(RFC 9113 §6.9)."""
import socket
import threading
import time

import h2.config
import h2.connection
import pytest

import h2origin
from h2peer import H2Peer, get_headers
from test_h2_upstream import se


@pytest.fixture
def h2o():
    o = h2origin.H2Origin()
    yield o
    o.close()


class Blackhole:
    """An h2c server that takes request HEADERS but never gives DATA window back
    and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        c.sendall(conn.data_to_send())
        while True:
            d = c.recv(65536)
            if not d:
                return
            try:
                conn.receive_data(d)
            except Exception:
                return
            out = conn.data_to_send()
            if out:
                c.sendall(out)


def test_upstream_conn_window_after_cancelled_slow_downloads(make_proxy, tmp_path, h2o):
    cfg = tmp_path / "h2.yaml"
    cfg.write_text(se("h2", "h2.test", h2o.port))
    p = make_proxy(concurrency=1, extra_args=["--config", str(cfg)])
    import os
    for i in range(int(os.environ.get('N','24'))):
        c = H2Peer(p.outbound, timeout=5)
        c.handshake()
        sid = c.new_stream_id()
        c.send_headers(sid, get_headers("/download?bytes=2000000", authority="h2.test"))
        end = time.monotonic() + 0.4
        while time.monotonic() < end:  # read, never give window back
            c.poll_frame(0.05)
        c.send_rst(sid)
        time.sleep(0.05)
        c.close()
    time.sleep(0.3)
    c = H2Peer(p.outbound, timeout=5)
    c.handshake()
    r = c.request(get_headers("/download?bytes=300000", authority="h2.test"), timeout=8)
    assert len(r.body) == 300000
    assert h2o.connections == 1


def test_downstream_conn_window_after_cancelled_backlogged_uploads(make_proxy, tmp_path, h2o):
    bh = Blackhole()
    cfg = tmp_path / "h2.yaml"
    cfg.write_text(se("h2", "h2.test", h2o.port) + "---\n" + se("bh", "bh.test", bh.port))
    p = make_proxy(concurrency=1, extra_args=["--config", str(cfg)])
    c = H2Peer(p.outbound, timeout=5)
    c.handshake()
    for i in range(24):
        sid = c.new_stream_id()
        c.send_headers(sid, get_headers("/up", authority="bh.test", method="POST"), end_stream=False)
        # as much as the windows take: the blackhole's 64 KiB, then ours
        try:
            c.send_body(sid, b"x" * 200000, end_stream=False, timeout=0.5)
        except AssertionError:
            pass
        c.send_rst(sid)
    time.sleep(0.3)
    sid = c.new_stream_id()
    c.send_headers(sid, get_headers("/echo", authority="h2.test", method="POST"), end_stream=False)
    c.send_body(sid, b"y" * 300000, end_stream=True, timeout=5)
    r = c.read_response(sid, timeout=5)
    assert r.status == 200
