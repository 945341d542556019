"""testssl (Debian's testssl.sh) against the inbound port: nothing of MEDIUM
severity or above except what comes of a private mesh CA with short-lived
SPIFFE certificates. Skipped in sanitizer builds (it checks the TLS
configuration, not memory) and without testssl."""

import json
import shutil
import subprocess

import pytest

from conftest import SANITIZED
from test_inbound_mtls import peer_auth, sidecar_ingress
from tlspeers import pki  # noqa: F401 (a fixture)

# Inherent to a mesh CA: its root is in no public trust store, the names are
# SPIFFE URIs not host names, certificates live hours not months, and
# revocation is by expiry, without CRL or OCSP.
INHERENT = {"cert_trust", "cert_chain_of_trust", "cert_expirationStatus", "cert_notAfter",
            "cert_revocation", "cert_chain_of_trust_warn"}


@pytest.mark.skipif(SANITIZED, reason="a TLS configuration check: the release build is enough")
@pytest.mark.skipif(not shutil.which("testssl"), reason="testssl (Debian testssl.sh) is not installed")
def test_inbound_port_passes_testssl(make_proxy, tmp_path, pki, origin):
    cfg = tmp_path / "b.yaml"
    cfg.write_text(sidecar_ingress(origin.port) + "---\n" + peer_auth("STRICT"))
    # With TLS 1.2 admitted: the wider of the two configurations is the one
    # to scan, and Debian's testssl 3.0.8 gives up on a TLS 1.3-only port
    # ("Your OpenSSL cannot connect") before scanning anything.
    p = make_proxy(extra_args=["--config", str(cfg), "--service-account", "web", "--cert", str(pki / "server.crt"),
                               "--key", str(pki / "server.key"), "--ca", str(pki / "ca.crt"),
                               "--tls-min-version", "1.2"])
    report = tmp_path / "testssl.json"
    subprocess.run(["testssl", "--quiet", "--color", "0", "--warnings", "batch",
                    "--jsonfile-pretty", str(report), "127.0.0.1:%d" % p.inbound],
                   capture_output=True, text=True, timeout=600)
    findings = [f for scan in json.loads(report.read_text())["scanResult"] for v in scan.values()
                if isinstance(v, list) for f in v]
    assert any(f["id"] == "TLS1_3" and f["finding"].startswith("offered") for f in findings), \
        "testssl did not reach the port"
    serious = [(f["severity"], f["id"], f["finding"]) for f in findings
               if f.get("severity") in ("MEDIUM", "HIGH", "CRITICAL") and f["id"] not in INHERENT]
    assert serious == []
