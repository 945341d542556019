"""`ringside ca init|issue|show`: the mesh CA, checked with what peers use (openssl)."""
import datetime
import os
import re
import ssl
import stat
import subprocess
import threading
import time

import httpx
import pytest

from conftest import RINGSIDE_BIN, SLOW, _SANITIZER_PATTERNS, free_ports
from test_inbound_mtls import peer_auth, peer_cert_pem, same_cert, sidecar_ingress
from tlspeers import xfcc

OPENSSL = "/usr/bin/openssl"


def ringside(*args, umask=None):
    if not RINGSIDE_BIN:
        pytest.skip("RINGSIDE_BIN is not set: no ringside binary to test")

    def set_umask():
        if umask is not None:
            os.umask(umask)

    p = subprocess.run(
        [RINGSIDE_BIN, *map(str, args)], capture_output=True, text=True, timeout=60, preexec_fn=set_umask
    )
    m = _SANITIZER_PATTERNS.search(p.stderr)
    assert not m, p.stderr
    return p


def ok(*args, **kw):
    p = ringside(*args, **kw)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def openssl(*args, check=True, **kw):
    if not os.path.exists(OPENSSL):
        pytest.skip("openssl is not installed")
    p = subprocess.run([OPENSSL, *map(str, args)], capture_output=True, text=True, timeout=30, **kw)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def x509_text(path):
    return openssl("x509", "-in", path, "-noout", "-text").stdout


def x509_dates(path):
    out = openssl("x509", "-in", path, "-noout", "-startdate", "-enddate").stdout
    fmt = "%b %d %H:%M:%S %Y %Z"
    nb = re.search(r"notBefore=(.*)", out).group(1).strip()
    na = re.search(r"notAfter=(.*)", out).group(1).strip()
    return (
        datetime.datetime.strptime(nb, fmt).replace(tzinfo=datetime.timezone.utc),
        datetime.datetime.strptime(na, fmt).replace(tzinfo=datetime.timezone.utc),
    )


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def pem_blocks(path):
    return re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", open(path).read(), re.S)


@pytest.fixture
def ca(tmp_path):
    d = tmp_path / "ca"
    ok("ca", "init", "--dir", d)
    return d


def issue(ca, out, ns="default", sa="bookinfo", *extra, umask=None):
    return ok("ca", "issue", "--dir", ca, "--namespace", ns, "--service-account", sa, "--out", out, *extra,
              umask=umask)


# --- init ---


def test_init_makes_a_p256_root_with_safe_modes(tmp_path):
    d = tmp_path / "ca"
    p = ok("ca", "init", "--dir", d, umask=0o022)
    assert "trust domain cluster.local" in p.stdout
    assert mode(d) == 0o700
    assert mode(d / "root-key.pem") == 0o600
    assert mode(d / "root-cert.pem") == 0o644
    assert sorted(os.listdir(d)) == ["root-cert.pem", "root-key.pem"]
    text = x509_text(d / "root-cert.pem")
    assert "Subject: O = cluster.local, CN = ringside mesh root" in text
    assert "Issuer: O = cluster.local, CN = ringside mesh root" in text
    assert re.search(r"Basic Constraints: critical\s+CA:TRUE", text), text
    assert re.search(r"Key Usage: critical\s+Certificate Sign, CRL Sign", text), text
    assert "URI:spiffe://cluster.local\n" in text
    assert "ASN1 OID: prime256v1" in text
    assert "ecdsa-with-SHA256" in text
    nb, na = x509_dates(d / "root-cert.pem")
    assert abs((na - nb).total_seconds() - (3650 * 86400 + 60)) <= 2
    key = openssl("pkey", "-in", d / "root-key.pem", "-noout", "-text").stdout
    assert "prime256v1" in key or "P-256" in key
    assert open(d / "root-key.pem").read().startswith("-----BEGIN EC PRIVATE KEY-----\n")
    # self-signed and strict-RFC 5280 clean
    openssl("verify", "-x509_strict", "-CAfile", d / "root-cert.pem", d / "root-cert.pem")


def test_init_trust_domain_and_days(tmp_path):
    d = tmp_path / "ca"
    ok("ca", "init", "--dir", d, "--trust-domain", "example.org", "--days", "30")
    text = x509_text(d / "root-cert.pem")
    assert "Subject: O = example.org, CN = ringside mesh root" in text
    assert "URI:spiffe://example.org\n" in text
    nb, na = x509_dates(d / "root-cert.pem")
    assert abs((na - nb).total_seconds() - (30 * 86400 + 60)) <= 2


def test_init_keeps_an_existing_root_unless_forced(ca):
    before = open(ca / "root-cert.pem").read()
    p = ringside("ca", "init", "--dir", ca)
    assert p.returncode == 1
    assert "root-key.pem exists" in p.stderr and "--force" in p.stderr
    assert open(ca / "root-cert.pem").read() == before
    ok("ca", "init", "--dir", ca, "--force")
    assert open(ca / "root-cert.pem").read() != before
    assert mode(ca / "root-key.pem") == 0o600
    assert sorted(os.listdir(ca)) == ["root-cert.pem", "root-key.pem"]


def test_init_refuses_when_only_the_certificate_is_left(ca):
    os.unlink(ca / "root-key.pem")
    p = ringside("ca", "init", "--dir", ca)
    assert p.returncode == 1 and "root-cert.pem exists" in p.stderr
    assert not os.path.exists(ca / "root-key.pem")


# --- issue ---


def test_issue_is_an_istio_style_x509_svid(ca, tmp_path):
    out = tmp_path / "certs"
    p = issue(ca, out, umask=0o022)  # a new directory's mode follows the umask
    assert p.stdout.startswith("issued spiffe://cluster.local/ns/default/sa/bookinfo\n")
    assert sorted(os.listdir(out)) == ["cert-chain.pem", "key.pem", "root-cert.pem"]
    assert mode(out) == 0o755
    assert mode(out / "key.pem") == 0o600
    assert mode(out / "cert-chain.pem") == 0o644
    assert mode(out / "root-cert.pem") == 0o644

    text = x509_text(out / "cert-chain.pem")  # the first block: the leaf
    assert re.search(r"Subject Alternative Name: critical\s+URI:spiffe://cluster.local/ns/default/sa/bookinfo\n", text), text
    assert re.search(r"Subject: *\n", text), text  # empty, as Istio's
    assert "Issuer: O = cluster.local, CN = ringside mesh root" in text
    assert re.search(r"Basic Constraints: critical\s+CA:FALSE", text), text
    assert re.search(r"Key Usage: critical\s+Digital Signature\n", text), text
    assert re.search(r"Extended Key Usage: *\n\s+TLS Web Server Authentication, TLS Web Client Authentication", text), text
    assert "Authority Key Identifier" in text and "Subject Key Identifier" in text
    assert "ASN1 OID: prime256v1" in text
    # 128 random bits, kept positive
    serial = openssl("x509", "-in", out / "cert-chain.pem", "-noout", "-serial").stdout.strip().split("=")[1]
    assert 1 <= int(serial, 16) < 2**128
    nb, na = x509_dates(out / "cert-chain.pem")
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((nb - now).total_seconds() + 60) <= 5
    assert abs((na - nb).total_seconds() - (24 * 3600 + 60)) <= 1

    # the chain: the leaf, then the root as DIR has it; the bundle as DIR has it
    blocks = pem_blocks(out / "cert-chain.pem")
    assert len(blocks) == 2
    assert blocks[1] == pem_blocks(ca / "root-cert.pem")[0]
    assert open(out / "root-cert.pem").read() == open(ca / "root-cert.pem").read()
    # the key is the leaf's
    cert_pub = openssl("x509", "-in", out / "cert-chain.pem", "-noout", "-pubkey").stdout
    key_pub = openssl("pkey", "-in", out / "key.pem", "-pubout").stdout
    assert cert_pub == key_pub


def test_issued_certificate_verifies_with_openssl(ca, tmp_path):
    out = tmp_path / "w"
    issue(ca, out)
    p = openssl("verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", out / "root-cert.pem", out / "cert-chain.pem")
    assert p.stdout.strip().endswith(": OK")
    openssl("verify", "-purpose", "sslclient", "-CAfile", out / "root-cert.pem", out / "cert-chain.pem")
    # not by another root
    other = tmp_path / "other"
    ok("ca", "init", "--dir", other)
    p = openssl("verify", "-CAfile", other / "root-cert.pem", out / "cert-chain.pem", check=False)
    assert p.returncode != 0


def handshake(server_dir, client_dir, trust, client_cert=True):
    """An HTTP request through openssl s_client to s_server -www over TLS;
    the server wants a client certificate from its root. Returns s_client's
    result, whose stdout has the page it got."""
    (port,) = free_ports(1)
    srv = subprocess.Popen(
        [OPENSSL, "s_server", "-accept", f"127.0.0.1:{port}", "-naccept", "1", "-www",
         "-cert", server_dir / "cert-chain.pem", "-key", server_dir / "key.pem",
         "-CAfile", server_dir / "root-cert.pem", "-Verify", "1", "-verify_return_error"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # s_server prints ACCEPT once it listens
        for line in srv.stdout:
            if line.startswith("ACCEPT"):
                break
        else:
            raise AssertionError("s_server did not start")
        args = ["s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", trust, "-verify_return_error",
                "-ign_eof"]
        if client_cert:
            args += ["-cert", client_dir / "cert-chain.pem", "-key", client_dir / "key.pem"]
        return openssl(*args, input="GET / HTTP/1.0\r\n\r\n", check=False)
    finally:
        srv.kill()
        srv.wait()


def test_mutual_tls_handshake_between_two_identities(ca, tmp_path):
    server, client = tmp_path / "server", tmp_path / "client"
    issue(ca, server, "shop", "cart")
    issue(ca, client, "shop", "frontend")
    cli = handshake(server, client, client / "root-cert.pem")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "Verify return code: 0 (ok)" in cli.stdout
    # the server verified the client's certificate and says so in its page
    assert "HTTP/1.0 200 ok" in cli.stdout
    assert "Client certificate" in cli.stdout


def test_handshake_refused_with_a_client_from_another_mesh(ca, tmp_path):
    other = tmp_path / "other"
    ok("ca", "init", "--dir", other)
    server, stranger = tmp_path / "server", tmp_path / "stranger"
    issue(ca, server, "shop", "cart")
    issue(other, stranger, "shop", "frontend")
    cli = handshake(server, stranger, server / "root-cert.pem")
    # under TLS 1.3 the refusal arrives after the client's handshake ends:
    # what matters is that no page came back
    assert "HTTP/1.0 200 ok" not in cli.stdout
    # and the client refuses a server of another mesh
    cli = handshake(server, stranger, stranger / "root-cert.pem")
    assert cli.returncode != 0
    assert "HTTP/1.0 200 ok" not in cli.stdout


def test_trust_domain_comes_from_the_root(tmp_path):
    d = tmp_path / "ca"
    ok("ca", "init", "--dir", d, "--trust-domain", "example.org")
    issue(d, tmp_path / "a", "ns1", "sa1")
    assert "URI:spiffe://example.org/ns/ns1/sa/sa1\n" in x509_text(tmp_path / "a" / "cert-chain.pem")
    # an explicit one wins (Istio's trust domain aliases)
    issue(d, tmp_path / "b", "ns1", "sa1", "--trust-domain", "legacy.local")
    assert "URI:spiffe://legacy.local/ns/ns1/sa/sa1\n" in x509_text(tmp_path / "b" / "cert-chain.pem")


def test_modes_do_not_depend_on_the_umask(ca, tmp_path):
    issue_args = ("ca", "issue", "--dir", ca, "--namespace", "a", "--service-account", "b")
    ok(*issue_args, "--out", tmp_path / "open", umask=0)
    assert mode(tmp_path / "open" / "key.pem") == 0o600
    ok(*issue_args, "--out", tmp_path / "closed", umask=0o077)
    assert mode(tmp_path / "closed" / "cert-chain.pem") == 0o644


def test_reissue_replaces_each_file_by_rename(ca, tmp_path):
    out = tmp_path / "w"
    issue(ca, out)
    first = {f: os.stat(out / f).st_ino for f in os.listdir(out)}
    serial1 = openssl("x509", "-in", out / "cert-chain.pem", "-noout", "-serial").stdout
    issue(ca, out)
    second = {f: os.stat(out / f).st_ino for f in os.listdir(out)}
    assert first.keys() == second.keys() == {"cert-chain.pem", "key.pem", "root-cert.pem"}
    assert all(first[f] != second[f] for f in first), "each file is a new inode renamed in place"
    assert openssl("x509", "-in", out / "cert-chain.pem", "-noout", "-serial").stdout != serial1
    assert openssl("x509", "-in", out / "cert-chain.pem", "-noout", "-pubkey").stdout == openssl(
        "pkey", "-in", out / "key.pem", "-pubout").stdout


def test_a_watcher_never_reads_half_a_file(ca, tmp_path):
    out = tmp_path / "w"
    issue(ca, out)
    stop = threading.Event()
    reads, bad = [], []

    def watch():
        while not stop.is_set():
            for name, begins in (("cert-chain.pem", 2), ("key.pem", 0), ("root-cert.pem", 1)):
                try:
                    text = open(out / name).read()
                except FileNotFoundError:
                    bad.append(name + " missing")
                    continue
                reads.append(name)
                if text.count("-----BEGIN") != max(begins, 1) or not text.endswith("-----\n"):
                    bad.append(name + ": " + repr(text[-60:]))

    t = threading.Thread(target=watch)
    t.start()
    try:
        for _ in range(8):
            issue(ca, out)
    finally:
        stop.set()
        t.join()
    assert not bad, bad[:5]
    assert len(reads) > 8
    assert sorted(os.listdir(out)) == ["cert-chain.pem", "key.pem", "root-cert.pem"]


def test_short_ttl_expires(ca, tmp_path):
    out = tmp_path / "w"
    p = issue(ca, out, "default", "short", "--ttl", "1s")
    assert "(1s)" in p.stdout
    nb, na = x509_dates(out / "cert-chain.pem")
    assert (na - nb).total_seconds() == 61
    # at fixed times, not the clock's: a second is soon gone on a busy machine
    verify = ("verify", "-CAfile", out / "root-cert.pem", "-attime")
    openssl(*verify, int(na.timestamp()) - 1, out / "cert-chain.pem")
    p = openssl(*verify, int(na.timestamp()) + 1, out / "cert-chain.pem", check=False)
    assert p.returncode != 0
    assert "certificate has expired" in p.stdout + p.stderr


def test_ttl_flag_forms(ca, tmp_path):
    issue(ca, tmp_path / "w", "a", "b", "--ttl", "90m")
    nb, na = x509_dates(tmp_path / "w" / "cert-chain.pem")
    assert (na - nb).total_seconds() == 90 * 60 + 60


def test_ttl_may_not_outlive_the_root(tmp_path):
    d = tmp_path / "ca"
    ok("ca", "init", "--dir", d, "--days", "1")
    p = ringside("ca", "issue", "--dir", d, "--namespace", "a", "--service-account", "b", "--out", tmp_path / "w",
                 "--ttl", "48h")
    assert p.returncode == 2
    assert "would outlive the root" in p.stderr
    assert not os.path.exists(tmp_path / "w")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--namespace", "Shop", "--service-account", "a"], '--namespace "Shop" must be lowercase'),
        (["--namespace", "shop_1", "--service-account", "a"], "'_' at position 5"),
        (["--namespace", "-shop", "--service-account", "a"], "must start with a letter or digit"),
        (["--namespace", "a" * 64, "--service-account", "a"], "a namespace is at most 63"),
        (["--namespace", "shop", "--service-account", "a..b"], "empty label"),
        (["--namespace", "shop", "--service-account", ""], '--service-account "" is empty'),
        (["--namespace", "shop", "--service-account", "a", "--trust-domain", "spiffe://td"], "give the trust domain alone"),
        (["--namespace", "shop", "--service-account", "a", "--trust-domain", "TD"], "must be lowercase"),
        (["--namespace", "shop", "--service-account", "a", "--ttl", "24"], '--ttl "24": give a duration'),
        (["--namespace", "shop", "--service-account", "a", "--ttl", "0s"], "at least 1s"),
        (["--service-account", "a"], "--namespace NS is required"),
        (["--namespace", "shop"], "--service-account SA is required"),
        (["--namespace", "--service-account", "a"], "--namespace needs a value"),
        (["--namespace", "shop", "--service-account", "a", "--frob"], "unknown flag --frob"),
    ],
)
def test_issue_bad_input_exits_2(ca, tmp_path, args, message):
    out = tmp_path / "w"
    p = ringside("ca", "issue", "--dir", ca, "--out", out, *args)
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.startswith("ringside ca issue: ")
    assert message in p.stderr, p.stderr
    assert not os.path.exists(out)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--dir DIR is required"),
        (["--dir", "{tmp}/x", "--days", "0"], "--days \"0\": give a whole number"),
        (["--dir", "{tmp}/x", "--days", "ten"], "--days \"ten\""),
        (["--dir", "{tmp}/x", "--trust-domain", "a b"], "a space at position 2"),
        (["--dir", "{tmp}/x", "extra"], 'unexpected argument "extra"'),
    ],
)
def test_init_bad_input_exits_2(tmp_path, args, message):
    p = ringside("ca", "init", *[a.format(tmp=tmp_path) for a in args])
    assert p.returncode == 2, p.stdout + p.stderr
    assert message in p.stderr, p.stderr
    assert not os.path.exists(tmp_path / "x")


def test_issue_without_a_root_fails(tmp_path):
    p = ringside("ca", "issue", "--dir", tmp_path / "none", "--namespace", "a", "--service-account", "b",
                 "--out", tmp_path / "w")
    assert p.returncode == 1
    assert "root-cert.pem" in p.stderr and "ringside ca init" in p.stderr


def test_issue_refuses_a_key_that_is_not_the_roots(ca, tmp_path):
    other = tmp_path / "other"
    ok("ca", "init", "--dir", other)
    os.replace(other / "root-key.pem", ca / "root-key.pem")
    p = ringside("ca", "issue", "--dir", ca, "--namespace", "a", "--service-account", "b", "--out", tmp_path / "w")
    assert p.returncode == 1
    assert "is not the key of" in p.stderr


def test_issue_warns_of_a_readable_root_key(ca, tmp_path):
    os.chmod(ca / "root-key.pem", 0o644)
    p = ok("ca", "issue", "--dir", ca, "--namespace", "a", "--service-account", "b", "--out", tmp_path / "w")
    assert "can be read by others (mode 0644)" in p.stderr


# --- with the proxy ---


def client_ctx(d):
    ctx = ssl.create_default_context(cafile=str(d / "root-cert.pem"))
    ctx.check_hostname = False  # a workload is named by its SPIFFE ID, not its address
    ctx.load_cert_chain(str(d / "cert-chain.pem"), str(d / "key.pem"))
    return ctx


def test_the_proxy_takes_issued_identities_and_rotations(make_proxy, ca, tmp_path, origin):
    """ringside proxy serves STRICT mutual TLS with the files `ca issue` wrote,
    names the peer by its SPIFFE ID, and a re-issue into the directory it
    watches is a rotation: new handshakes present the new certificate."""
    web, client = tmp_path / "web", tmp_path / "client"
    issue(ca, web, "default", "web")
    issue(ca, client, "shop", "frontend")
    cfg = tmp_path / "b.yaml"
    cfg.write_text(sidecar_ingress(origin.port) + "---\n" + peer_auth("STRICT"))
    p = make_proxy(extra_args=["--config", str(cfg), "--service-account", "web",
                               "--cert", str(web / "cert-chain.pem"), "--key", str(web / "key.pem"),
                               "--ca", str(web / "root-cert.pem")])
    ctx = client_ctx(client)
    with httpx.Client(verify=ctx, timeout=10) as c:
        r = c.get("https://127.0.0.1:%d/echo" % p.inbound, headers={"Host": "web.test"})
    assert r.status_code == 200, r.text
    assert origin.requests[-1].header("x-forwarded-client-cert") == xfcc(
        "spiffe://cluster.local/ns/default/sa/web", client / "cert-chain.pem",
        "spiffe://cluster.local/ns/shop/sa/frontend")
    assert same_cert(peer_cert_pem(p, ctx), pem_blocks(web / "cert-chain.pem")[0])

    gen = p.metrics().value("ringside_config_generation")
    issue(ca, web, "default", "web")
    p.wait_metric(lambda m: m.value("ringside_config_generation") > gen)
    new = pem_blocks(web / "cert-chain.pem")[0]
    deadline = time.monotonic() + 10 * SLOW
    while not same_cert(peer_cert_pem(p, ctx), new):
        assert time.monotonic() < deadline, "new handshakes still present the old certificate"
        time.sleep(0.1)


# --- show and help ---


def test_show(ca, tmp_path):
    out = tmp_path / "w"
    issue(ca, out, "shop", "cart")
    p = ok("ca", "show", out / "cert-chain.pem")
    assert "certificate 1\n  subject:     (empty)\n" in p.stdout
    assert "uri san:     spiffe://cluster.local/ns/shop/sa/cart\n" in p.stdout
    assert "ca:          no\n" in p.stdout
    assert "certificate 2\n  subject:     O=cluster.local, CN=ringside mesh root\n" in p.stdout
    assert "ca:          yes\n" in p.stdout
    serial = openssl("x509", "-in", out / "cert-chain.pem", "-noout", "-serial").stdout.strip().split("=")[1]
    shown = re.search(r"serial: +(\S+)", p.stdout).group(1)
    assert int(shown.replace(":", ""), 16) == int(serial, 16)
    p = ringside("ca", "show", out / "key.pem")
    assert p.returncode == 1 and "no certificate in it" in p.stderr


def test_help_names_the_commands():
    p = ok("--help")
    assert "ca " in p.stdout and "ca issue" in p.stdout
    p = ok("ca", "--help")
    assert "spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>" in p.stdout
    for sub in ("init", "issue", "show"):
        p = ok("ca", sub, "--help")
        assert p.stdout.startswith("usage: ringside ca " + sub)
    p = ringside("ca")
    assert p.returncode == 2
    p = ringside("ca", "frob")
    assert p.returncode == 2 and 'unknown command "frob"' in p.stderr
