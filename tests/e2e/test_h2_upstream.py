"""Upstream HTTP/2: requests (from HTTP/1.1 or HTTP/2 clients) carried to an
HTTP/2 origin on multiplexed connections, chosen by the service port's
protocol (HTTP2, GRPC), by h2UpgradePolicy, or by the client's protocol where
the port declares none; trailers carried; a refused stream sent again; and a
sidecar pair carrying HTTP/2 over mutual TLS (ALPN istio-h2)."""

import concurrent.futures
import hashlib
import json
import time

import httpx
import pytest

import h2origin
from conftest import SLOW
from h2peer import H2Peer, get_headers
from tlspeers import pki, xfcc  # noqa: F401 (pki: a fixture)


def se(name, host, port, proto="HTTP2", port_name="grpc", extra=""):
    return ("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: %s, namespace: default}\n"
            "spec:\n  hosts: [%s]\n  resolution: STATIC\n  ports: [{number: 80, name: %s%s}]\n"
            "  endpoints: [{address: 127.0.0.1, ports: {%s: %d}%s}]\n"
            % (name, host, port_name, ", protocol: %s" % proto if proto else "", port_name, port, extra))


@pytest.fixture
def h2o():
    o = h2origin.H2Origin()
    yield o
    o.close()


@pytest.fixture
def h2proxy(make_proxy, tmp_path, h2o):
    cfg = tmp_path / "h2.yaml"
    cfg.write_text(se("h2", "h2.test", h2o.port) + "---\n" + se("auto", "auto.test", h2o.port, proto=None, port_name="web"))
    return make_proxy(extra_args=["--config", str(cfg)])


def h1_get(p, path, host="h2.test", headers=None):
    with httpx.Client(trust_env=False, timeout=10 * SLOW) as c:
        return c.get("http://127.0.0.1:%d%s" % (p.outbound, path), headers=headers or {"Host": host})


def test_http1_client_to_http2_origin(h2proxy, h2o):
    """A GRPC/HTTP2 port: the HTTP/1.1 request goes as HTTP/2 (RFC 9113 §8.3.1:
    Host becomes :authority, field names in lower case, no connection-specific
    fields), the response comes back as HTTP/1.1."""
    r = h1_get(h2proxy, "/echo?x=1", headers={"Host": "h2.test", "X-Mixed-Case": "v", "Connection": "keep-alive",
                                              "Cookie": "a=1"})
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["method"] == "GET" and e["path"] == "/echo?x=1" and e["authority"] == "h2.test"
    assert e["scheme"] == "http"
    names = [n for n, _ in e["headers"]]
    assert "x-mixed-case" in names and "cookie" in names
    for banned in ("host", "connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"):
        assert banned not in names, e["headers"]


def test_many_requests_share_few_connections(h2proxy, h2o):
    """Streams are multiplexed: 64 concurrent HTTP/1.1 requests reach the origin
    over at most one connection per shard."""
    def one(i):
        return h1_get(h2proxy, "/slow?ms=50", host="h2.test").status_code

    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        codes = list(ex.map(one, range(64)))
    assert codes == [200] * 64
    assert 1 <= h2o.connections <= 2, h2o.connections


def test_http2_client_bodies_both_ways(h2proxy, h2o):
    """HTTP/2 to HTTP/2: a 3 MiB upload and a 3 MiB download on concurrent
    streams, each larger than every window, arrive byte for byte."""
    body = h2origin.pattern(3 << 20)[::-1]
    c = H2Peer(h2proxy.outbound, timeout=10 * SLOW)
    c.handshake()
    up = c.new_stream_id()
    c.send_headers(up, get_headers("/echo", authority="h2.test", method="POST"), end_stream=False)
    c.send_body(up, body, end_stream=True, timeout=30 * SLOW)
    down = c.request(get_headers("/download?bytes=%d" % (3 << 20), authority="h2.test"), timeout=30 * SLOW)
    assert not h2o.errors
    r = c.read_response(up, timeout=30 * SLOW)
    assert r.status == 200
    e = json.loads(bytes(r.body))
    assert e["body_len"] == len(body) and e["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert down.status == 200 and bytes(down.body) == h2origin.pattern(3 << 20)
    c.close()


def test_trailers_reach_an_http2_client(h2proxy):
    """gRPC's status travels in trailers: a HEADERS frame after the DATA."""
    c = H2Peer(h2proxy.outbound, timeout=5 * SLOW)
    c.handshake()
    r = c.request(get_headers("/trailers", authority="h2.test"))
    assert r.status == 200 and bytes(r.body) == b"payload"
    assert dict(r.trailers) == {"grpc-status": "0", "x-trailer": "yes"}
    r = c.request(get_headers("/only-trailers", authority="h2.test"))
    assert r.status == 200 and r.header("grpc-status") == "14" and not r.body
    c.close()


def test_undeclared_port_follows_the_client(h2proxy, h2o):
    """A port without a protocol goes as the client came (Istio's protocol
    sniffing): HTTP/2 from an HTTP/2 client. (The origin here speaks only
    HTTP/2, so an HTTP/1.1 client's request fails there: 502 or 503.)"""
    c = H2Peer(h2proxy.outbound, timeout=5 * SLOW)
    c.handshake()
    r = c.request(get_headers("/echo", authority="auto.test"))
    assert r.status == 200, bytes(r.body)
    assert json.loads(bytes(r.body))["authority"] == "auto.test"
    c.close()
    assert h1_get(h2proxy, "/echo", host="auto.test").status_code in (502, 503)


def sidecar_b(make_proxy, tmp_path, pki, app_port, proto):
    """Proxy B: STRICT mutual TLS on its inbound port, the application at
    app_port behind a Sidecar ingress port of protocol proto (None: undeclared)."""
    b_cfg = tmp_path / "b.yaml"
    b_cfg.write_text(
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: default}\n"
        "spec:\n  ingress:\n  - port: {number: 80, name: app%s}\n"
        "    defaultEndpoint: 127.0.0.1:%d\n---\n"
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        "metadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: STRICT}\n"
        % (", protocol: %s" % proto if proto else "", app_port))
    return make_proxy(extra_args=["--config", str(b_cfg), "--service-account", "web", "--cert", str(pki / "server.crt"),
                                  "--key", str(pki / "server.key"), "--ca", str(pki / "ca.crt")])


def sidecar_a(make_proxy, tmp_path, pki, b, proto="GRPC", port_name="grpc", pool=""):
    """Proxy A: web.test is B's inbound port (service account web), reached
    with ISTIO_MUTUAL."""
    a_cfg = tmp_path / "a.yaml"
    a_cfg.write_text(se("web", "web.test", b.inbound, proto=proto, port_name=port_name, extra=", serviceAccount: web") +
                     "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: web, namespace: default}\n"
                     "spec:\n  host: web.test\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n" + pool)
    return make_proxy(extra_args=["--config", str(a_cfg), "--cert", str(pki / "client.crt"),
                                  "--key", str(pki / "client.key"), "--ca", str(pki / "ca.crt")])


def test_h2_upgrade_policy_upgrades_an_http_port_between_sidecars(make_proxy, tmp_path, pki, h2o):
    """DestinationRule connectionPool.http.h2UpgradePolicy UPGRADE: an HTTP
    port's HTTP/1.1 requests travel as HTTP/2 to the destination's sidecar.
    B's port declares no protocol, so it passes on the protocol it received:
    the HTTP/2-only application answering shows that A upgraded."""
    (tmp_path / "b").mkdir()
    b = sidecar_b(make_proxy, tmp_path / "b", pki, h2o.port, None)
    a = sidecar_a(make_proxy, tmp_path, pki, b, proto="HTTP", port_name="http",
                  pool="    connectionPool:\n      http: {h2UpgradePolicy: UPGRADE}\n")
    r = h1_get(a, "/echo", host="web.test")
    assert r.status_code == 200, r.text
    assert r.json()["authority"] == "web.test"


def test_h2_upgrade_policy_leaves_a_destination_without_sidecar(make_proxy, tmp_path, origin):
    """UPGRADE to an endpoint reached in clear text (no sidecar to take
    HTTP/2 for its application): the HTTP/1.1 server still gets HTTP/1.1."""
    cfg = tmp_path / "up.yaml"
    cfg.write_text(se("web", "web.test", origin.port, proto="HTTP", port_name="http") +
                   "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: web, namespace: default}\n"
                   "spec:\n  host: web.test\n  trafficPolicy:\n    connectionPool:\n      http: {h2UpgradePolicy: UPGRADE}\n")
    p = make_proxy(extra_args=["--config", str(cfg)])
    r = h1_get(p, "/echo", host="web.test")
    assert r.status_code == 200, r.text
    assert r.json()["version"] == "HTTP/1.1"


def test_refused_stream_is_sent_again_once(h2proxy, h2o):
    """RST_STREAM REFUSED_STREAM means the request was not processed (RFC 9113
    §8.7): it goes once more, on a new connection; refused again, the client
    gets 503 naming the reason."""
    r = h1_get(h2proxy, "/refuse")
    assert r.status_code == 503
    assert "remote refused stream reset" in r.text
    assert h2o.refused == 2


def test_origin_gone_is_503(make_proxy, tmp_path):
    """The origin goes away (its connections closed, nothing listening): the
    pooled connection's end is seen, and the next request fails with 503 (a
    new connection is refused) rather than waiting on the dead one."""
    o = h2origin.H2Origin()
    cfg = tmp_path / "h2.yaml"
    cfg.write_text(se("h2", "h2.test", o.port))
    p = make_proxy(extra_args=["--config", str(cfg)])
    assert h1_get(p, "/echo").status_code == 200
    o.close()
    r = h1_get(p, "/echo")
    assert r.status_code == 503, r.text


def test_sidecar_pair_carries_http2_over_mutual_tls(make_proxy, tmp_path, pki):
    """client (h2c) -> A -> ISTIO_MUTUAL, ALPN istio-h2 -> B:inbound (STRICT) ->
    an HTTP/2 application (Sidecar ingress port declared GRPC)."""
    o = h2origin.H2Origin()
    (tmp_path / "b").mkdir()
    b = sidecar_b(make_proxy, tmp_path / "b", pki, o.port, "GRPC")
    a = sidecar_a(make_proxy, tmp_path, pki, b)
    c = H2Peer(a.outbound, timeout=10 * SLOW)
    c.handshake()
    ids = [c.new_stream_id() for _ in range(20)]
    for sid in ids:
        c.send_headers(sid, get_headers("/echo?s=%d" % sid, authority="web.test"))
    got = c.read_responses(ids, timeout=20 * SLOW)
    for sid in ids:
        assert got[sid].status == 200, bytes(got[sid].body)
        e = json.loads(bytes(got[sid].body))
        assert e["path"] == "/echo?s=%d" % sid
        assert dict(e["headers"])["x-forwarded-client-cert"] == \
            xfcc("spiffe://cluster.local/ns/default/sa/web", pki / "client.crt", "spiffe://t/ns/a/sa/b")
    r = c.request(get_headers("/trailers", authority="web.test"))
    assert dict(r.trailers) == {"grpc-status": "0", "x-trailer": "yes"}
    c.close()
    # B to the application: HTTP/2, on one connection per shard.
    assert 1 <= o.connections <= 2
    o.close()


def grpc_headers(path, authority="h2.test", extra=()):
    return get_headers(path, authority=authority, method="POST",
                       extra=[("content-type", "application/grpc"), ("te", "trailers")] + list(extra))


def test_grpc_statuses_counted_and_local_answers_are_grpc(h2proxy, h2o):
    """gRPC calls are counted by grpc-status, from the trailers or a
    trailers-only answer; a call the proxy answers itself (no route) gets a
    trailers-only response with the mapped status (404: UNIMPLEMENTED), which
    is what a gRPC client reads; the te: trailers gRPC servers check for
    reaches the origin."""
    c = H2Peer(h2proxy.outbound, timeout=5 * SLOW)
    c.handshake()
    r = c.request(grpc_headers("/trailers"), body=b"")
    assert dict(r.trailers)["grpc-status"] == "0"
    r = c.request(grpc_headers("/only-trailers"), body=b"")
    assert r.header("grpc-status") == "14"
    r = c.request(grpc_headers("/echo"), body=b"")
    assert ["te", "trailers"] in json.loads(bytes(r.body))["headers"]
    r = c.request(grpc_headers("/svc/Method", authority="nowhere.test"), body=b"")
    assert r.status == 200 and r.header("grpc-status") == "12" and r.ended and not r.body
    assert "no route" in r.header("grpc-message")
    c.close()
    m = h2proxy.wait_metric(lambda m: m.sum("ringside_grpc_rq_total", grpc_status=12) >= 1)
    assert m.sum("ringside_grpc_rq_total", grpc_status=12) == 1
    assert m.sum("ringside_grpc_rq_total", grpc_status=0) == 1
    assert m.sum("ringside_grpc_rq_total", grpc_status=2) == 1  # /echo: 200 without grpc-status
    assert m.sum("ringside_grpc_rq_total", grpc_status=14) == 1
    assert m.sum("ringside_downstream_cx_http2_total") >= 1
    assert m.sum("ringside_upstream_cx_http2_total") >= 1


def test_grpc_timeout_ends_the_call(h2proxy, h2o):
    """grpc-timeout (200 ms) on a call the origin answers after 2 s: the proxy
    ends it near the deadline with grpc-status DEADLINE_EXCEEDED (4)."""
    c = H2Peer(h2proxy.outbound, timeout=5 * SLOW)
    c.handshake()
    t0 = time.monotonic()
    r = c.request(grpc_headers("/slow?ms=2000", extra=[("grpc-timeout", "200m")]), body=b"")
    took = time.monotonic() - t0
    assert r.status == 200 and r.header("grpc-status") == "4", r.headers
    assert 0.15 <= took < 1.5 * SLOW, took
    c.close()


def test_many_fields_all_arrive(make_proxy, tmp_path, h2o):
    """--max-headers-count 400: a request of 300 fields, from an HTTP/1.1 or
    an HTTP/2 client, reaches the HTTP/2 origin whole (the name/value lists
    are not cut at a fixed size)."""
    cfg = tmp_path / "h2.yaml"
    cfg.write_text(se("h2", "h2.test", h2o.port))
    p = make_proxy(extra_args=["--config", str(cfg), "--max-headers-count", "400"])
    headers = {"Host": "h2.test"}
    headers.update({"x-f%03d" % i: "v%d" % i for i in range(300)})
    r = h1_get(p, "/echo", headers=headers)
    assert r.status_code == 200, r.text
    got = dict(r.json()["headers"])
    assert all(got.get("x-f%03d" % i) == "v%d" % i for i in range(300))
    c = H2Peer(p.outbound, timeout=5 * SLOW)
    c.handshake()
    r = c.request(get_headers("/echo", authority="h2.test", extra=[("x-g%03d" % i, "w") for i in range(300)]))
    assert r.status == 200
    assert sum(1 for n, _ in json.loads(bytes(r.body))["headers"] if n.startswith("x-g")) == 300
    c.close()
