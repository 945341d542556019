"""Regressions for problems a review of the data path found: each test is the
triggering input, and asserts what a client and the origin observe."""
import json
import os
import socket
import subprocess
import time

import pytest

import rawhttp


def _read_to_eof(s):
    """Everything the proxy sends until it closes; closes s."""
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return data
            data += d
    finally:
        s.close()


def test_absolute_form_with_headers_crossing_buffer_growth(proxy, origin):
    # The Host added for an absolute-form target once copied from a buffer
    # that growing it had freed: sizes around 1 and 2 KiB crossed it.
    for pad in (900, 976, 1000, 2016, 2020, 4000):
        mark = origin.mark()
        with rawhttp.Conn(proxy.outbound) as c:
            c.send(b"GET http://origin.test/echo?abs=%d HTTP/1.1\r\nX-Pad: %s\r\n\r\n"
                   % (pad, b"a" * pad))
            r = c.read_response()
        assert r.status == 200, (pad, r)
        got = origin.requests_since(mark)
        assert [q.target for q in got] == ["/echo?abs=%d" % pad], pad
        assert got[0].header("host") == "origin.test"
        assert got[0].header("x-pad") == "a" * pad


@pytest.mark.parametrize("option", ["content-length", "Content-Length", "host"])
def test_connection_option_cannot_remove_framing(proxy, origin, option):
    # Naming Content-Length in Connection once dropped it while the body was
    # forwarded raw: the body then reached the origin as a second request.
    smuggled = b"GET /admin HTTP/1.1\r\nHost: origin.test\r\n\r\n"
    mark = origin.mark()
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: origin.test\r\nConnection: %s\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (option.encode(), len(smuggled), smuggled))
        r = c.read_response()
    assert r.status == 200, r
    assert json.loads(r.body)["bytes"] == len(smuggled)
    got = origin.requests_since(mark)
    assert [q.path for q in got] == ["/upload"], [q.target for q in got]
    assert got[0].header("content-length") == str(len(smuggled))


def test_upgrade_request_does_not_poison_the_connection(proxy):
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(rawhttp.build_request("GET", "/echo?ws", headers=[
            ("Connection", "Upgrade"), ("Upgrade", "websocket")]))
        r = c.read_response()
        assert r.status == 200, r
        assert "upgrade" not in [h.lower() for h, _ in json.loads(r.body)["headers"]]
        c.send(rawhttp.build_request("GET", "/echo?after"))
        r = c.read_response()
        assert r.status == 200, r


def test_half_close_still_answers_pipelined_requests(proxy):
    s = socket.create_connection(("127.0.0.1", proxy.outbound))
    s.settimeout(5)
    reqs = b"".join(rawhttp.build_request("GET", "/echo?n=%d" % i) for i in range(5))
    s.sendall(reqs)
    s.shutdown(socket.SHUT_WR)
    data = _read_to_eof(s)
    assert data.count(b"HTTP/1.1 200 ") == 5, data[:400]


def test_pipelined_local_replies_are_bounded_for_a_client_that_never_reads(make_proxy):
    # 404s the proxy writes itself once queued without limit: 64 KiB per
    # connection of receive buffer on the client, a flood of requests, and
    # the proxy's memory must stay flat.
    proxy = make_proxy(concurrency=1)
    rss0 = proxy.rss_kib()[0]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", proxy.outbound))
    s.settimeout(0.5)
    req = b"GET / HTTP/1.1\r\nHost: nosuch.test\r\n\r\n" * 1000
    sent = 0
    deadline = time.monotonic() + 5
    while sent < 64 << 20 and time.monotonic() < deadline:
        try:
            sent += s.send(req)
        except socket.timeout:
            break  # the proxy stopped reading: backpressure works
    rss1 = proxy.rss_kib()[0]
    s.close()
    limit = 256 * 1024 if os.environ.get("RINGSIDE_SANITIZED") else 64 * 1024
    assert rss1 - rss0 < limit, "RSS grew by %d KiB after %d bytes of 404 requests" % (rss1 - rss0, sent)
    assert proxy.get("/echo").status_code == 200


def test_restart_while_connections_are_in_time_wait(make_proxy, tmp_path):
    # A previous run's closed connections in TIME_WAIT must not make the port
    # look taken.
    p1 = make_proxy()
    with rawhttp.Conn(p1.outbound) as c:
        c.send(rawhttp.build_request("GET", "/echo", headers=[("Connection", "close")]))
        assert c.read_response().status == 200
        assert c.wait_closed(2) == "closed"
    port = p1.outbound
    p1.expect_exit = True
    p1.proc.terminate()
    assert p1.wait_exit(5) == 0
    cfg = tmp_path / "again.yaml"
    cfg.write_text("")
    p = subprocess.Popen([os.environ["RINGSIDE_BIN"], "proxy", "--config", str(cfg),
                          "--outbound-port", str(port), "--admin-port", "0", "--stats-port", "0",
                          "--health-port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 5
        ok = False
        while time.monotonic() < deadline and p.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                ok = True
                break
            except OSError:
                time.sleep(0.05)
        assert ok, "restart failed: %s" % (p.stderr.read() if p.poll() is not None else "not listening")
    finally:
        p.terminate()
        p.wait(5)


def test_repeated_config_flags_all_load(make_proxy, origin, tmp_path, monkeypatch):
    extra = tmp_path / "second.yaml"
    extra.write_text(
        "apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\n"
        "metadata: {name: second, namespace: default}\n"
        "spec:\n  hosts: [second.test]\n  ports: [{number: 80, name: http}]\n"
        "  resolution: STATIC\n  endpoints: [{address: 127.0.0.1, ports: {http: %d}}]\n" % origin.port)
    proxy = make_proxy(extra_args=["--config", str(extra)])
    assert proxy.get("/echo", host="second.test").status_code == 200
    assert proxy.get("/echo", host="origin.test").status_code == 200


def test_upstream_header_value_over_limit_is_a_502(make_proxy, tmp_path):
    # One response header value growing without bound once took the proxy's
    # memory with it.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    proxy = make_proxy(hosts={"big.test": port})

    import threading

    def serve():
        c, _ = srv.accept()
        c.recv(65536)
        try:
            c.sendall(b"HTTP/1.1 200 OK\r\nX-Big: ")
            chunk = b"b" * 65536
            for _ in range(64):  # 4 MiB of one value
                c.sendall(chunk)
        except OSError:
            pass
        finally:
            c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    with rawhttp.Conn(proxy.outbound) as c:
        c.send(rawhttp.build_request("GET", "/", host="big.test"))
        r = c.read_response()
    assert r.status == 502, r
    assert b"protocol error" in r.body
    t.join(5)
    srv.close()


def _racing_origin():
    """An origin whose first connection answers one request, then closes when
    the next arrives (a keep-alive timeout firing as the request leaves);
    later connections answer every request."""
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    state = {"conns": 0}

    def handle(c, first):
        buf = b""
        answered = 0
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                if first and answered == 1:
                    return  # close without answering
                body = b"conn %d\n" % (1 if first else 2)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                answered += 1
        finally:
            c.close()

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            state["conns"] += 1
            threading.Thread(target=handle, args=(c, state["conns"] == 1), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv, state


@pytest.mark.parametrize("method,expect", [("GET", 200), ("POST", 503)])
def test_request_on_a_pooled_connection_closing_under_it(make_proxy, method, expect):
    srv, state = _racing_origin()
    try:
        proxy = make_proxy(hosts={"race.test": srv.getsockname()[1]}, concurrency=1)
        with rawhttp.Conn(proxy.outbound) as c:
            c.send(rawhttp.build_request("GET", "/", host="race.test"))
            assert c.read_response().status == 200
            body = b"x" if method == "POST" else b""
            c.send(rawhttp.build_request(method, "/", host="race.test", body=body))
            r = c.read_response()
        # GET is idempotent and had no body: resent once on a new connection.
        # POST is not: the client is told (Envoy's UC).
        assert r.status == expect, r
        if expect == 200:
            assert r.body == b"conn 2\n" and state["conns"] == 2
        else:
            assert b"connection termination" in r.body
    finally:
        srv.close()


@pytest.mark.parametrize("half_close", [False, True])
def test_connection_close_request_with_body(proxy, half_close):
    # "Connection: close" once stopped the parser after the head, as if the
    # proxy had answered itself: the body never went out and nothing came back.
    s = socket.create_connection(("127.0.0.1", proxy.outbound))
    s.settimeout(5)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n"
              b"Content-Length: 2\r\n\r\nab")
    if half_close:
        s.shutdown(socket.SHUT_WR)
    data = _read_to_eof(s)
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    assert b'"bytes": 2' in data, data


def test_connection_close_with_bad_chunk_is_still_refused(proxy, origin):
    r = rawhttp.request(proxy.outbound,
                        b"PUT /echo HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n0\x00\r\n\r\n")
    assert r.status == 400, r


def test_max_connections(make_proxy):
    # --max-connections 2 with one shard: a third connection is closed at
    # once and counted; once one closes, a new one is served again.
    proxy = make_proxy(concurrency=1, extra_args=["--max-connections", "2"])
    held = [rawhttp.Conn(proxy.outbound) for _ in range(2)]
    try:
        for c in held:
            c.send(rawhttp.build_request("GET", "/echo"))
            assert c.read_response().status == 200
        extra = socket.create_connection(("127.0.0.1", proxy.outbound))
        extra.settimeout(3)
        try:
            extra.sendall(rawhttp.build_request("GET", "/echo"))
            got = extra.recv(4096)
        except ConnectionResetError:
            got = b""
        assert got == b"", got
        extra.close()
        assert proxy.metrics().value("ringside_downstream_cx_overflow_total") >= 1
    finally:
        held[0].close()
    deadline = time.monotonic() + 3
    while True:
        with rawhttp.Conn(proxy.outbound) as c:
            try:
                c.send(rawhttp.build_request("GET", "/echo"))
                if c.read_response().status == 200:
                    break
            except (rawhttp.Closed, OSError):
                pass
        assert time.monotonic() < deadline, "no connection served after one of two closed"
        time.sleep(0.05)
    held[1].close()


def test_transfer_codings_other_than_chunked_are_501(proxy, origin):
    # Re-chunking "gzip, chunked" would forward gzip bytes as if uncoded.
    mark = origin.mark()
    r = rawhttp.request(proxy.outbound,
                        b"POST /upload HTTP/1.1\r\nHost: origin.test\r\n"
                        b"Transfer-Encoding: gzip, chunked\r\n\r\n1\r\na\r\n0\r\n\r\n")
    assert r.status == 501, r
    assert origin.byte_count_since(mark) == 0
