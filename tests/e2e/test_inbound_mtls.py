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


def client_proxy(make_proxy, tmp_path, pki, b, more_policy=""):
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
                                  "--key", str(pki / "client.key"), "--ca", str(pki / "ca.crt")])


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

    # The old root leaves the bundle: clients with certificates from it are refused.
    gen = p.metrics().value("ringside_config_generation")
    replace(ident / "ca.pem", (pki / "other-ca.crt").read_bytes())
    p.wait_metric(lambda m: m.value("ringside_config_generation") > gen)
    time.sleep(0.2)
    n = len(origin.requests)
    with pytest.raises((httpx.HTTPError, ssl.SSLError, OSError)):
        https_get(p, tls_ctx(pki))
    assert len(origin.requests) == n
    ok = https_get(p, tls_ctx(pki, cert="stranger"))
    assert ok.status_code == 200


def test_sidecar_pair_new_connections_keep_the_peer_identity(make_proxy, tmp_path, pki, origin):
    """A new connection from A to B per request (maxRequestsPerConnection: 1):
    each is a full handshake (B gives no tickets, because wolfSSL's carry no
    client certificate), and each request reaches the application with A's
    SPIFFE ID."""
    b = server_proxy(make_proxy, tmp_path / "b", pki, origin, "STRICT")
    a = client_proxy(make_proxy, tmp_path, pki, b, "    connectionPool: {http: {maxRequestsPerConnection: 1}}\n")
    for i in range(6):
        r = a.get("/echo", host="web.test")
        assert r.status_code == 200, (i, r.text)
        assert origin.requests[-1].header("x-forwarded-client-cert") == \
            xfcc("spiffe://cluster.local/ns/default/sa/web", pki / "client.crt", "spiffe://t/ns/a/sa/b")
    ma, mb = a.metrics(), b.metrics()
    assert ma.value("ringside_upstream_cx_tls_total") == 6
    assert mb.value("ringside_downstream_cx_tls_total") == 6
    assert mb.value("ringside_downstream_cx_tls_resumed_total") == 0


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
