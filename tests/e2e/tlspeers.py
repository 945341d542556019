"""TLS peers for the end-to-end tests: a private PKI made with openssl, and
nginx serving HTTP/2 in clear and TLS that demands a client certificate."""

import shutil
import socket
import subprocess
import time

import pytest

from conftest import free_ports


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """In d: ca and other-ca; server.crt for origin.test and
    spiffe://cluster.local/ns/default/sa/web (from ca); client.crt
    (spiffe://t/ns/a/sa/b, from ca) and stranger.crt (from other-ca); each
    with its .key. Returns d."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".crt", "-days", "2", "-subj",
                 "/CN=" + ca, cwd=d)
    for name, ca, san in (("server", "ca", "DNS:origin.test,URI:spiffe://cluster.local/ns/default/sa/web"), ("client", "ca", "URI:spiffe://t/ns/a/sa/b"),
                          ("stranger", "other-ca", "URI:spiffe://t/ns/a/sa/c")):
        _openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
        (d / (name + ".ext")).write_text("subjectAltName=%s\n" % san)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
                 "-days", "2", "-out", name + ".crt", "-extfile", name + ".ext", cwd=d)
    if shutil.which("faketime"):
        # expired.crt: from ca, valid for a day in 2020 (signed at that time).
        _openssl("req", *ec, "-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=expired", cwd=d)
        (d / "expired.ext").write_text("subjectAltName=URI:spiffe://t/ns/a/sa/old\n")
        subprocess.run(["faketime", "2020-01-01 00:00:00", "openssl", "x509", "-req", "-in", "expired.csr",
                        "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
                        "-out", "expired.crt", "-extfile", "expired.ext"], cwd=d, check=True, capture_output=True)
    return d


class Nginx:
    """nginx on three ports: h2c; TLS (h2 and http/1.1) demanding a client
    certificate from pki's ca, answering with the client's subject; TLS that
    asks for none. Stopped by stop()."""

    def __init__(self, pki, d):
        if not shutil.which("nginx"):
            raise RuntimeError("nginx is not installed")
        self.h2c, self.tls, self.tls_open = free_ports(3)
        conf = d / "nginx.conf"
        conf.write_text("""
worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;
events {{}}
http {{
  access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d}; keepalive_requests 100000;
  ssl_certificate {p}/server.crt; ssl_certificate_key {p}/server.key;
  # nginx 1.22's default stops at TLS 1.2; a mesh peer speaks 1.3.
  ssl_protocols TLSv1.2 TLSv1.3;
  server {{ listen 127.0.0.1:{h2c} http2; location / {{ return 200 "h2c\\n"; }} }}
  server {{
    listen 127.0.0.1:{tls} ssl http2;
    ssl_client_certificate {p}/ca.crt; ssl_verify_client on;
    location / {{ return 200 "client $ssl_client_s_dn\\n"; }}
  }}
  server {{ listen 127.0.0.1:{tls_open} ssl; location / {{ return 200 "tls $ssl_protocol $ssl_session_reused\\n"; }} }}
}}
""".format(d=d, p=pki, h2c=self.h2c, tls=self.tls, tls_open=self.tls_open))
        self.proc = subprocess.Popen(["nginx", "-c", str(conf)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.tls_open), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("nginx did not start: %s" % self.proc.stderr.read().decode())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """make_pki in a directory of the module's."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def nginx(pki, tmp_path_factory):
    """An Nginx for the module."""
    if not shutil.which("nginx"):
        pytest.skip("nginx is not installed")
    n = Nginx(pki, tmp_path_factory.mktemp("nginx"))
    yield n
    n.stop()


def xfcc(by, cert_pem_path, uri):
    """x-forwarded-client-cert as ringside's inbound port sets it (Istio's
    fields, Envoy's order): By, Hash (SHA-256 of the peer certificate's DER,
    the first of the file), URI."""
    import hashlib
    import ssl as _ssl

    text = open(cert_pem_path).read()
    first = text[:text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return "By=%s;Hash=%s;URI=%s" % (by, hashlib.sha256(_ssl.PEM_cert_to_DER_cert(first)).hexdigest(), uri)
