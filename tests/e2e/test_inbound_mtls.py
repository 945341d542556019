"""The inbound port (15006): mutual TLS by PeerAuthentication (STRICT,
PERMISSIVE, DISABLE), the peer's SPIFFE ID passed to the application in
x-forwarded-client-cert, Sidecar ingress saying where the application
listens, and a sidecar pair: client -> proxy A (ISTIO_MUTUAL) -> proxy B
(STRICT) -> application."""

import os
import shutil
import socket
import ssl
import subprocess
import time

import httpx
import pytest

from tlspeers import pki, xfcc  # noqa: F401 (pki: a fixture)


def sidecar_ingress(app_port):
    return ("apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: default}\n"
            "spec:\n  ingress:\n  - port: {number: 80, protocol: HTTP, name: http}\n"
            "    defaultEndpoint: 127.0.0.1:%d\n" % app_port)


def peer_auth(mode):
    return ("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
            "metadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: %s}\n" % mode)


def server_proxy(make_proxy, tmp_path, pki, origin, mode=None, identity=True):
    tmp_path.mkdir(exist_ok=True)
    docs = [sidecar_ingress(origin.port)] + ([peer_auth(mode)] if mode else [])
    args = ["--service-account", "web"]
    if identity:
        args += ["--cert", str(pki / "server.crt"), "--key", str(pki / "server.key"), "--ca", str(pki / "ca.crt")]
    cfg = tmp_path / "b.yaml"
    cfg.write_text("---\n".join(docs))
    return make_proxy(extra_args=["--config", str(cfg)] + args)


def tls_ctx(pki, cert="client"):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.check_hostname = False  # the server's name is a SPIFFE ID, not the address
    if cert:
        ctx.load_cert_chain(str(pki / (cert + ".crt")), str(pki / (cert + ".key")))
    return ctx


def https_get(p, ctx, path="/echo"):
    with httpx.Client(verify=ctx, timeout=10) as c:
        return c.get("https://127.0.0.1:%d%s" % (p.inbound, path), headers={"Host": "web.test"})


def plain_get(p, path="/echo"):
    with httpx.Client(timeout=10) as c:
        return c.get("http://127.0.0.1:%d%s" % (p.inbound, path), headers={"Host": "web.test"})


def test_strict_serves_mutual_tls_and_names_the_peer(make_proxy, tmp_path, pki, origin):
    p = server_proxy(make_proxy, tmp_path, pki, origin, "STRICT")
    r = https_get(p, tls_ctx(pki))
    assert r.status_code == 200, r.text
    req = origin.requests[-1]
    assert req.header("x-forwarded-client-cert") == \
        xfcc("spiffe://cluster.local/ns/default/sa/web", pki / "client.crt", "spiffe://t/ns/a/sa/b")


@pytest.mark.parametrize("how", ["plaintext", "no client certificate", "another CA", "expired"])
def test_strict_refuses_and_the_application_gets_nothing(make_proxy, tmp_path, pki, origin, how):
    if how == "expired" and not (pki / "expired.crt").exists():
        pytest.skip("faketime is not installed: no expired certificate to try")
    p = server_proxy(make_proxy, tmp_path, pki, origin, "STRICT")
    with pytest.raises((httpx.HTTPError, ssl.SSLError, OSError)):
        if how == "plaintext":
            plain_get(p)
        elif how == "no client certificate":
            # Under TLS 1.3 the server's refusal shows at the first read.
            https_get(p, tls_ctx(pki, cert=None))
        elif how == "another CA":
            https_get(p, tls_ctx(pki, cert="stranger"))
        else:
            https_get(p, tls_ctx(pki, cert="expired"))
    assert origin.requests == []


def test_strict_without_an_identity_refuses_every_connection(make_proxy, tmp_path, pki, origin):
    p = server_proxy(make_proxy, tmp_path, pki, origin, "STRICT", identity=False)
    with pytest.raises((httpx.HTTPError, OSError)):
        plain_get(p)
    assert origin.requests == []


def test_permissive_serves_both_on_one_port(make_proxy, tmp_path, pki, origin):
    p = server_proxy(make_proxy, tmp_path, pki, origin)  # no PeerAuthentication: PERMISSIVE
    r = plain_get(p)
    assert r.status_code == 200
    assert origin.requests[-1].header("x-forwarded-client-cert") is None
    r = https_get(p, tls_ctx(pki))
    assert r.status_code == 200
    assert "URI=spiffe://t/ns/a/sa/b" in origin.requests[-1].header("x-forwarded-client-cert")


def test_a_client_cannot_forge_the_peer_identity(make_proxy, tmp_path, pki, origin):
    p = server_proxy(make_proxy, tmp_path, pki, origin, "PERMISSIVE")
    with httpx.Client(timeout=10) as c:
        r = c.get("http://127.0.0.1:%d/echo" % p.inbound,
                  headers={"Host": "web.test", "x-forwarded-client-cert": "URI=spiffe://evil"})
    assert r.status_code == 200
    assert origin.requests[-1].header("x-forwarded-client-cert") is None


def test_disable_takes_clear_text_only(make_proxy, tmp_path, pki, origin):
    p = server_proxy(make_proxy, tmp_path, pki, origin, "DISABLE")
    assert plain_get(p).status_code == 200
    with pytest.raises((httpx.HTTPError, ssl.SSLError, OSError)):
        https_get(p, tls_ctx(pki))


def test_no_route_back_into_the_proxy(make_proxy, tmp_path, pki, origin):
    p = server_proxy(make_proxy, tmp_path, pki, origin)
    with httpx.Client(timeout=10) as c:
        r = c.get("http://127.0.0.1:%d/" % p.inbound, headers={"Host": "web.test:%d" % p.inbound})
    assert r.status_code == 404
    assert "no inbound route to port %d" % p.inbound in r.text


def client_proxy(make_proxy, tmp_path, pki, b, more_policy="", **kw):
    """Proxy A of a pair: web.test is B's inbound port, run as service account
    web, reached with ISTIO_MUTUAL (plus more_policy lines) as client.crt."""
    a_cfg = tmp_path / "a.yaml"
    a_cfg.write_text(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: web, namespace: default}\n"
        "spec:\n  hosts: [web.test]\n  location: MESH_INTERNAL\n  resolution: STATIC\n"
        "  ports: [{number: 80, name: http, protocol: HTTP}]\n  endpoints:\n"
        "  - address: 127.0.0.1\n    ports: {http: %d}\n    serviceAccount: web\n"
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: web}\n"
        "spec:\n  host: web.test\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n%s" % (b.inbound, more_policy))
    return make_proxy(extra_args=["--config", str(a_cfg), "--cert", str(pki / "client.crt"),
                                  "--key", str(pki / "client.key"), "--ca", str(pki / "ca.crt")], **kw)


def test_sidecar_pair_over_mutual_tls(make_proxy, tmp_path, pki, origin):
    """client -> A:outbound -> (ISTIO_MUTUAL) -> B:inbound (STRICT) -> application."""
    b = server_proxy(make_proxy, tmp_path / "b", pki, origin, "STRICT")
    a = client_proxy(make_proxy, tmp_path, pki, b)
    for i in range(3):
        r = a.get("/echo", host="web.test")
        assert r.status_code == 200, r.text
    assert origin.requests[-1].header("x-forwarded-client-cert") == \
        xfcc("spiffe://cluster.local/ns/default/sa/web", pki / "client.crt", "spiffe://t/ns/a/sa/b")


# ---------------------------------------------------------------- rotation

def peer_cert_pem(p, ctx):
    with socket.create_connection(("127.0.0.1", p.inbound), timeout=5) as raw:
        with ctx.wrap_socket(raw) as s:
            return ssl.DER_cert_to_PEM_cert(s.getpeercert(binary_form=True))


def same_cert(pem_a, pem_b):
    return ssl.PEM_cert_to_DER_cert(pem_a) == ssl.PEM_cert_to_DER_cert(pem_b)


def replace(path, data):
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_rotation_new_handshakes_new_certificate_old_connections_kept(make_proxy, tmp_path, pki, origin):
    """The workload's files are replaced by rename: new handshakes present the
    new certificate, an HTTP/2 connection made before keeps working, and once
    the old root leaves the bundle, certificates from it are refused."""
    ident = tmp_path / "ident"
    ident.mkdir()
    for src, dst in (("server.crt", "cert.pem"), ("server.key", "key.pem"), ("ca.crt", "ca.pem")):
        shutil.copy(pki / src, ident / dst)
    cfg = tmp_path / "b.yaml"
    cfg.write_text(sidecar_ingress(origin.port) + "---\n" + peer_auth("STRICT"))
    p = make_proxy(extra_args=["--config", str(cfg), "--service-account", "web", "--cert", str(ident / "cert.pem"),
                               "--key", str(ident / "key.pem"), "--ca", str(ident / "ca.pem")])
    ctx = tls_ctx(pki)
    assert same_cert(peer_cert_pem(p, ctx), (pki / "server.crt").read_text())
    kept = httpx.Client(verify=ctx, timeout=10, http1=False, http2=True)  # ALPN h2 only
    r = kept.get("https://127.0.0.1:%d/echo" % p.inbound, headers={"Host": "web.test"})
    assert r.status_code == 200 and r.http_version == "HTTP/2"

    # A new certificate (a new key, a new serial) from the same root.
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", "new.key", "-out", "new.csr", "-subj", "/CN=server2"], cwd=pki, check=True,
                   capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", "new.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                    "-CAcreateserial", "-days", "2", "-out", "new.crt", "-extfile", "server.ext"], cwd=pki,
                   check=True, capture_output=True)
    gen = p.metrics().value("ringside_config_generation")
    replace(ident / "key.pem", (pki / "new.key").read_bytes())
    replace(ident / "cert.pem", (pki / "new.crt").read_bytes())
    p.wait_metric(lambda m: m.value("ringside_config_generation") > gen)
    deadline = time.monotonic() + 10
    while not same_cert(peer_cert_pem(p, ctx), (pki / "new.crt").read_text()):
        assert time.monotonic() < deadline, "new handshakes still present the old certificate"
        time.sleep(0.1)
    # The connection made before the rotation carries on (one connection:
    # the application saw no new one from the proxy's side either).
    r = kept.get("https://127.0.0.1:%d/echo" % p.inbound, headers={"Host": "web.test"})
    assert r.status_code == 200 and r.http_version == "HTTP/2"
    assert p.metrics().value("ringside_downstream_cx_http2_total") == 1
    kept.close()

    # A session made under the old root, kept by the client.
    sess = tmp_path / "sess.pem"
    rc, out = s_client(p, pki, sess_out=sess)
    assert rc == 0 and "HTTP/1.1 200" in out, out
    rc, out = s_client(p, pki, sess_in=sess)
    assert rc == 0 and "Reused, TLSv1.3" in out, out

    # The old root leaves the bundle: clients with certificates from it are
    # refused, and so are the sessions they made under it.
    gen = p.metrics().value("ringside_config_generation")
    replace(ident / "ca.pem", (pki / "other-ca.crt").read_bytes())
    p.wait_metric(lambda m: m.value("ringside_config_generation") > gen)
    time.sleep(0.2)
    n = len(origin.requests)
    with pytest.raises((httpx.HTTPError, ssl.SSLError, OSError)):
        https_get(p, tls_ctx(pki))
    rc, out = s_client(p, pki, sess_in=sess)
    assert "HTTP/1.1 200" not in out and "Reused" not in out, out
    assert len(origin.requests) == n
    ok = https_get(p, tls_ctx(pki, cert="stranger"))
    assert ok.status_code == 200


def test_sidecar_pair_reconnects_resume_and_keep_the_peer_identity(make_proxy, tmp_path, pki, origin):
    """A new connection from A to B per request (maxRequestsPerConnection: 1):
    the first is a full handshake, each later one resumes with B's latest
    ticket (A runs one shard, so one pool), and every request reaches the
    application with A's SPIFFE ID and certificate hash, which B's tickets
    keep."""
    b = server_proxy(make_proxy, tmp_path / "b", pki, origin, "STRICT")
    a = client_proxy(make_proxy, tmp_path, pki, b, "    connectionPool: {http: {maxRequestsPerConnection: 1}}\n",
                     concurrency=1)
    for i in range(6):
        r = a.get("/echo", host="web.test")
        assert r.status_code == 200, (i, r.text)
        assert origin.requests[-1].header("x-forwarded-client-cert") == \
            xfcc("spiffe://cluster.local/ns/default/sa/web", pki / "client.crt", "spiffe://t/ns/a/sa/b")
    ma, mb = a.metrics(), b.metrics()
    assert ma.value("ringside_upstream_cx_tls_total") == 6
    assert ma.value("ringside_upstream_cx_tls_resumed_total") == 5
    assert mb.value("ringside_downstream_cx_tls_total") == 6
    assert mb.value("ringside_downstream_cx_tls_resumed_total") == 5


def s_client(p, pki, cert="client", sess_out=None, sess_in=None, extra=()):
    """One request through openssl s_client to p's inbound port with cert,
    saving (sess_out) or offering (sess_in) the session. Returns (rc, what
    s_client printed)."""
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % p.inbound, "-CAfile", str(pki / "ca.crt"),
            "-cert", str(pki / (cert + ".crt")), "-key", str(pki / (cert + ".key")), "-ign_eof"]
    args += ["-sess_out", str(sess_out)] if sess_out else []
    args += ["-sess_in", str(sess_in)] if sess_in else []
    r = subprocess.run(args + list(extra), input=b"GET /echo HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n",
                       capture_output=True, timeout=20)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def test_openssl_resumes_with_the_identity_it_first_showed(make_proxy, tmp_path, pki, origin):
    """openssl keeps B's TLS 1.3 ticket and comes back with it: the handshake
    resumes, no certificate is sent, and the application still learns who
    the client is. A ticket from another proxy (another key) gets a full
    handshake instead, which succeeds."""
    b = server_proxy(make_proxy, tmp_path / "b", pki, origin, "STRICT")
    sess = tmp_path / "sess.pem"
    rc, out = s_client(b, pki, sess_out=sess)
    assert rc == 0 and "HTTP/1.1 200" in out and "New, TLSv1.3" in out, out
    want = xfcc("spiffe://cluster.local/ns/default/sa/web", pki / "client.crt", "spiffe://t/ns/a/sa/b")
    assert origin.requests[-1].header("x-forwarded-client-cert") == want
    assert origin.requests[-1].header("x-forwarded-proto") == "https"  # set by B: the client sent none
    n = len(origin.requests)
    rc, out = s_client(b, pki, sess_in=sess)
    assert rc == 0 and "HTTP/1.1 200" in out and "Reused, TLSv1.3" in out, out
    assert len(origin.requests) == n + 1
    assert origin.requests[-1].header("x-forwarded-client-cert") == want
    assert b.metrics().value("ringside_downstream_cx_tls_resumed_total") == 1

    # A reload under the same trust bundle (a new snapshot, new TLS
    # contexts) keeps the ticket good.
    cfg = tmp_path / "b" / "b.yaml"
    gen = b.metrics().value("ringside_config_generation")
    cfg.write_text(cfg.read_text() + "# edited\n")
    b.wait_metric(lambda m: m.value("ringside_config_generation") > gen)
    rc, out = s_client(b, pki, sess_in=sess)
    assert rc == 0 and "HTTP/1.1 200" in out and "Reused, TLSv1.3" in out, out
    assert origin.requests[-1].header("x-forwarded-client-cert") == want

    other = server_proxy(make_proxy, tmp_path / "other", pki, origin, "STRICT")
    rc, out = s_client(other, pki, sess_in=sess)
    assert rc == 0 and "HTTP/1.1 200" in out and "New, TLSv1.3" in out, out
    assert origin.requests[-1].header("x-forwarded-client-cert") == want
    assert other.metrics().value("ringside_downstream_cx_tls_resumed_total") == 0


def test_tls_1_2_resumes_by_ticket_only(make_proxy, tmp_path, pki, origin):
    """With TLS 1.2 admitted, a client resumes with a ticket (RFC 5077),
    which keeps its identity. A client without tickets is given no session
    ID either (so nothing to save), because a session resumed by ID would
    have lost the certificate."""
    cfg = tmp_path / "b.yaml"
    cfg.write_text(sidecar_ingress(origin.port) + "---\n" + peer_auth("STRICT"))
    b = make_proxy(extra_args=["--config", str(cfg), "--service-account", "web", "--tls-min-version", "1.2",
                               "--cert", str(pki / "server.crt"), "--key", str(pki / "server.key"),
                               "--ca", str(pki / "ca.crt")])
    want = xfcc("spiffe://cluster.local/ns/default/sa/web", pki / "client.crt", "spiffe://t/ns/a/sa/b")
    sess = tmp_path / "sess.pem"
    rc, out = s_client(b, pki, sess_out=sess, extra=["-tls1_2"])
    assert rc == 0 and "New, TLSv1.2" in out, out
    rc, out = s_client(b, pki, sess_in=sess, extra=["-tls1_2"])
    assert rc == 0 and "HTTP/1.1 200" in out and "Reused, TLSv1.2" in out, out
    assert origin.requests[-1].header("x-forwarded-client-cert") == want
    assert b.metrics().value("ringside_downstream_cx_tls_resumed_total") == 1

    no_ticket = tmp_path / "no-ticket.pem"
    rc, out = s_client(b, pki, sess_out=no_ticket, extra=["-tls1_2", "-no_ticket"])
    assert rc == 0 and "HTTP/1.1 200" in out and "New, TLSv1.2" in out, out
    assert "Session-ID: \n" in out and not no_ticket.exists(), out
    assert origin.requests[-1].header("x-forwarded-client-cert") == want


def test_tls_1_2_only_when_allowed(make_proxy, tmp_path, pki, origin):
    """Between sidecars TLS 1.3 is the floor; --tls-min-version 1.2 (Istio's
    meshMTLS.minProtocolVersion) lets TLS 1.2 clients in, with the AEAD
    suites only."""
    ctx = tls_ctx(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    p = server_proxy(make_proxy, tmp_path / "strict13", pki, origin, "STRICT")
    n = len(origin.requests)
    with pytest.raises((httpx.HTTPError, ssl.SSLError, OSError)):
        https_get(p, ctx)
    assert len(origin.requests) == n
    assert https_get(p, tls_ctx(pki)).status_code == 200  # TLS 1.3

    (tmp_path / "allow12").mkdir()
    cfg = tmp_path / "allow12" / "b.yaml"
    cfg.write_text(sidecar_ingress(origin.port) + "---\n" + peer_auth("STRICT"))
    p12 = make_proxy(extra_args=["--config", str(cfg), "--service-account", "web", "--tls-min-version", "1.2",
                                 "--cert", str(pki / "server.crt"), "--key", str(pki / "server.key"),
                                 "--ca", str(pki / "ca.crt")])
    with socket.create_connection(("127.0.0.1", p12.inbound), timeout=5) as raw:
        with ctx.wrap_socket(raw) as s:
            assert s.version() == "TLSv1.2"
            assert "GCM" in s.cipher()[0] or "CHACHA20" in s.cipher()[0], s.cipher()
    r = https_get(p12, ctx)
    assert r.status_code == 200


def auto_client(make_proxy, tmp_path, pki, b, labelled, dr_tls=None):
    """Proxy A without a DestinationRule tls (or with dr_tls): web.test's
    endpoint is B's inbound port, labelled security.istio.io/tlsMode: istio
    when it has a sidecar."""
    d = tmp_path / ("a-%s-%s" % (labelled, dr_tls))
    d.mkdir()
    labels = "\n    labels: {security.istio.io/tlsMode: istio}" if labelled else ""
    docs = ("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: web, namespace: default}\n"
            "spec:\n  hosts: [web.test]\n  location: MESH_INTERNAL\n  resolution: STATIC\n"
            "  ports: [{number: 80, name: http, protocol: HTTP}]\n  endpoints:\n"
            "  - address: 127.0.0.1\n    ports: {http: %d}\n    serviceAccount: web%s\n" % (b.inbound, labels))
    if dr_tls:
        docs += ("---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: web}\n"
                 "spec:\n  host: web.test\n  trafficPolicy:\n    tls: {mode: %s}\n" % dr_tls)
    (d / "a.yaml").write_text(docs)
    return make_proxy(extra_args=["--config", str(d / "a.yaml"), "--cert", str(pki / "client.crt"),
                                  "--key", str(pki / "client.key"), "--ca", str(pki / "ca.crt")])


def test_auto_mutual_tls_to_endpoints_with_a_sidecar(make_proxy, tmp_path, pki, origin):
    """Istio's auto mutual TLS: with no DestinationRule tls, an endpoint
    labelled security.istio.io/tlsMode: istio is reached with ISTIO_MUTUAL
    (B, STRICT, serves it and names A's identity); an endpoint without the
    label, or a rule saying DISABLE, goes in clear text, which B's STRICT
    port refuses (503, the application gets nothing)."""
    b = server_proxy(make_proxy, tmp_path / "b", pki, origin, "STRICT")
    a = auto_client(make_proxy, tmp_path, pki, b, labelled=True)
    r = a.get("/echo", host="web.test")
    assert r.status_code == 200, r.text
    assert origin.requests[-1].header("x-forwarded-client-cert").endswith(";URI=spiffe://t/ns/a/sa/b")
    n = len(origin.requests)
    for p in (auto_client(make_proxy, tmp_path, pki, b, labelled=False),
              auto_client(make_proxy, tmp_path, pki, b, labelled=True, dr_tls="DISABLE")):
        r = p.get("/echo", host="web.test")
        assert r.status_code == 503, r.text
    assert len(origin.requests) == n


@pytest.mark.parametrize("version,path,size", [("1.1", "/download?bytes=3000000", 3000000),
                                               ("1.0", "/close?v=1.0", None)])
def test_a_closing_response_ends_with_close_notify_after_all_of_it(make_proxy, tmp_path, pki, origin, version, path,
                                                                   size):
    """`Connection: close` over mutual TLS to a client that reads slowly: the
    whole body comes, then close_notify (RFC 8446 §6.1), so the client can
    tell the end from a cut. The second case (HTTP/1.0) has no length at
    all: the close is its only end."""
    from origin import CLOSE_BODY, pattern_bytes

    b = server_proxy(make_proxy, tmp_path / "b", pki, origin, "STRICT")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # so the proxy's queue backs up
    raw.settimeout(20)
    raw.connect(("127.0.0.1", b.inbound))
    ctx = tls_ctx(pki)
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # Python's default hides a missing close_notify
    s = ctx.wrap_socket(raw, suppress_ragged_eofs=False)
    s.sendall(b"GET %s HTTP/%s\r\nHost: web.test\r\nConnection: close\r\n\r\n" % (path.encode(), version.encode()))
    time.sleep(0.5)
    data = bytearray()
    while True:
        chunk = s.recv(65536)  # SSLEOFError if the stream ends without close_notify
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    if not size:  # delimited by the close alone
        assert b"content-length" not in head.lower() and b"chunked" not in head.lower(), head
    want = b"".join(pattern_bytes(size)) if size else CLOSE_BODY
    assert len(body) == len(want) and body == want
