"""DestinationRule trafficPolicy.tls SIMPLE, MUTUAL and ISTIO_MUTUAL: the
proxy originates TLS to the destination (nginx), verifies it, presents a
client certificate when told to (its own workload certificate for
ISTIO_MUTUAL, checking the destination's SPIFFE ID), and never sends a TLS
destination's request in clear."""

import types

import pytest

from tlspeers import nginx, pki  # noqa: F401 (fixtures)
from test_routing import get, proxy_with, service


def port(n):
    return types.SimpleNamespace(port=n)


def rule(host, tls):
    return ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: %s}\n"
            "spec:\n  host: %s\n  trafficPolicy:\n    tls:\n%s" % (
                host.split(".")[0], host, "".join("      %s\n" % l for l in tls.splitlines())))


def tls_proxy(make_proxy, tmp_path, nginx_port, tls, host="secure.test"):
    tmp_path.mkdir(exist_ok=True)
    return proxy_with(make_proxy, tmp_path, service(host.split(".")[0], host, [(port(nginx_port), {})]),
                      rule(host, tls))


def test_simple_verifies_and_keeps_the_connection(make_proxy, tmp_path, pki, nginx):
    p = tls_proxy(make_proxy, tmp_path, nginx.tls_open,
                  "mode: SIMPLE\ncaCertificates: %s\nsni: origin.test" % (pki / "ca.crt"))
    for _ in range(5):
        r = get(p, "secure.test", "/")
        assert r.status_code == 200, r.text
        assert r.text.startswith("tls TLSv1.")
    # kept alive: at most one connection per shard for five requests
    assert p.metrics().value("ringside_upstream_cx_total") <= 2


def test_simple_with_another_ca_fails_without_sending(make_proxy, tmp_path, pki, nginx):
    p = tls_proxy(make_proxy, tmp_path, nginx.tls_open,
                  "mode: SIMPLE\ncaCertificates: %s" % (pki / "other-ca.crt"))
    r = get(p, "secure.test", "/")
    assert r.status_code == 503
    assert "reset reason: connection failure, transport failure reason: TLS_error:" in r.text


def test_subject_alt_names_are_checked(make_proxy, tmp_path, pki, nginx):
    ok = tls_proxy(make_proxy, tmp_path / "ok", nginx.tls_open,
                   "mode: SIMPLE\ncaCertificates: %s\nsubjectAltNames: [other.test, origin.test]" % (pki / "ca.crt"))
    assert get(ok, "secure.test", "/").status_code == 200
    bad = tls_proxy(make_proxy, tmp_path / "bad", nginx.tls_open,
                    "mode: SIMPLE\ncaCertificates: %s\nsubjectAltNames: [evil.test]" % (pki / "ca.crt"))
    r = get(bad, "secure.test", "/")
    assert r.status_code == 503
    assert "subjectAltNames" in r.text


def test_mutual_presents_the_client_certificate(make_proxy, tmp_path, pki, nginx):
    p = tls_proxy(make_proxy, tmp_path, nginx.tls,
                  "mode: MUTUAL\ncaCertificates: %s\nclientCertificate: %s\nprivateKey: %s\nsni: origin.test"
                  % (pki / "ca.crt", pki / "client.crt", pki / "client.key"))
    r = get(p, "secure.test", "/")
    assert r.status_code == 200, r.text
    assert r.text.strip() == "client CN=client"


def test_simple_to_a_server_wanting_a_client_certificate(make_proxy, tmp_path, pki, nginx):
    """nginx completes the handshake and answers 400 itself."""
    p = tls_proxy(make_proxy, tmp_path, nginx.tls, "mode: SIMPLE\ncaCertificates: %s" % (pki / "ca.crt"))
    r = get(p, "secure.test", "/")
    assert r.status_code == 400
    assert "No required SSL certificate was sent" in r.text


def test_unreadable_files_fail_closed(make_proxy, tmp_path, pki, nginx):
    p = tls_proxy(make_proxy, tmp_path, nginx.tls_open, "mode: SIMPLE\ncaCertificates: /nonexistent/ca.pem")
    r = get(p, "secure.test", "/")
    assert r.status_code == 503
    assert "caCertificates: not a readable PEM bundle" in r.text
    p2 = tls_proxy(make_proxy, tmp_path / "m", nginx.tls,
                   "mode: MUTUAL\ncaCertificates: %s\nclientCertificate: %s\nprivateKey: /nonexistent/key.pem"
                   % (pki / "ca.crt", pki / "client.crt"))
    r = get(p2, "secure.test", "/")
    assert r.status_code == 503
    assert "privateKey" in r.text


def test_plain_and_tls_to_one_endpoint_are_pooled_apart(make_proxy, tmp_path, pki, nginx):
    """Two services on nginx's TLS port, one with SIMPLE and one without: the
    plaintext one's connection never carries the TLS one's requests."""
    docs = [service("plain", "plain.test", [(port(nginx.tls_open), {})]),
            service("secure", "secure.test", [(port(nginx.tls_open), {})]),
            rule("secure.test", "mode: SIMPLE\ncaCertificates: %s" % (pki / "ca.crt"))]
    p = proxy_with(make_proxy, tmp_path, *docs)
    for _ in range(3):
        r = get(p, "plain.test", "/")
        assert r.status_code == 400  # nginx: plain HTTP to its TLS port
        r = get(p, "secure.test", "/")
        assert r.status_code == 200 and r.text.startswith("tls TLSv1.")


def mesh_service(nginx_port, sa):
    ep = "  - address: 127.0.0.1\n    ports: {http: %d}\n" % nginx_port
    if sa:
        ep += "    serviceAccount: %s\n" % sa
    return ("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: web, namespace: default}\n"
            "spec:\n  hosts: [web.test]\n  location: MESH_INTERNAL\n  resolution: STATIC\n"
            "  ports: [{number: 80, name: http, protocol: HTTP}]\n  endpoints:\n" + ep)


def mesh_proxy(make_proxy, tmp_path, pki, nginx, sa, identity=True):
    tmp_path.mkdir(exist_ok=True)
    cfg = tmp_path / "mesh.yaml"
    cfg.write_text(mesh_service(nginx.tls, sa) + "---\n" + rule("web.test", "mode: ISTIO_MUTUAL\nsni: origin.test"))
    args = ["--config", str(cfg)]
    if identity:
        args += ["--cert", str(pki / "client.crt"), "--key", str(pki / "client.key"), "--ca", str(pki / "ca.crt")]
    return make_proxy(extra_args=args)


@pytest.mark.parametrize("sa", [None, "web"])
def test_istio_mutual_presents_the_workload_identity(make_proxy, tmp_path, pki, nginx, sa):
    """The destination's certificate carries spiffe://cluster.local/ns/default/sa/web:
    with no service account known any mesh workload is accepted; with `web` it matches."""
    p = mesh_proxy(make_proxy, tmp_path, pki, nginx, sa)
    r = get(p, "web.test", "/")
    assert r.status_code == 200, r.text
    assert r.text.strip() == "client CN=client"


def test_istio_mutual_checks_the_spiffe_id(make_proxy, tmp_path, pki, nginx):
    p = mesh_proxy(make_proxy, tmp_path, pki, nginx, "billing")
    r = get(p, "web.test", "/")
    assert r.status_code == 503
    assert "subjectAltNames" in r.text


def test_istio_mutual_without_an_identity_fails_closed(make_proxy, tmp_path, pki, nginx):
    p = mesh_proxy(make_proxy, tmp_path, pki, nginx, None, identity=False)
    r = get(p, "web.test", "/")
    assert r.status_code == 503
    assert "ISTIO_MUTUAL needs the workload's --cert, --key and --ca" in r.text


def test_new_connections_resume_the_tls_session(make_proxy, tmp_path, pki, nginx):
    """One request per connection (maxRequestsPerConnection: 1): after each
    shard's first full handshake, its next connections to the destination
    resume the session with the ticket nginx gave ($ssl_session_reused: r)."""
    tmp_path.mkdir(exist_ok=True)
    docs = [service("secure", "secure.test", [(port(nginx.tls_open), {})]),
            rule("secure.test", "mode: SIMPLE\ncaCertificates: %s" % (pki / "ca.crt")).replace(
                "  trafficPolicy:\n", "  trafficPolicy:\n    connectionPool: {http: {maxRequestsPerConnection: 1}}\n")]
    p = proxy_with(make_proxy, tmp_path, *docs)
    reused = [get(p, "secure.test", "/").text.split()[-1] for _ in range(8)]
    assert reused.count("r") >= 6, reused  # at most one full handshake per shard
    m = p.metrics()
    assert m.value("ringside_upstream_cx_total") == 8
    assert m.value("ringside_upstream_cx_tls_total") == 8
    assert m.value("ringside_upstream_cx_tls_resumed_total") == reused.count("r")
