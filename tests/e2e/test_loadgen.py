"""ringside-load, the bench suite's load generator, against real servers: the
test origin, nginx (HTTP/2 with prior knowledge, TLS with client
certificates) and an origin that stalls 100 ms once a second."""

import json
import os
import socket
import subprocess
import threading

import pytest

from tlspeers import nginx, pki  # noqa: F401 (fixtures)

LOAD = os.environ.get("RINGSIDE_LOAD")
HERE = os.path.dirname(os.path.abspath(__file__))
STALL_ORIGIN = os.path.join(HERE, "..", "..", "tools", "loadgen", "stall-origin.py")

pytestmark = pytest.mark.skipif(not LOAD, reason="RINGSIDE_LOAD is not set: no ringside-load binary")


def load(*args, timeout=60):
    """Runs ringside-load with a JSON report; returns (exit code, report or None, stderr)."""
    p = subprocess.run([LOAD, "-q", "--json", "-", *args], capture_output=True, text=True, timeout=timeout)
    report = json.loads(p.stdout) if p.stdout.strip() else None
    return p.returncode, report, p.stderr


def ok(report):
    assert report["errors"]["total"] == 0, report["errors"]
    assert report["status"]["2xx"] == report["requests"]["completed"]


def test_closed_loop_every_request_reaches_the_origin(origin):
    rc, r, err = load("-c", "4", "-d", "1", "http://127.0.0.1:%d/status/200" % origin.port)
    assert rc == 0, err
    ok(r)
    assert r["mode"] == "closed"
    assert r["requests"]["completed"] > 50
    # Closed loop: each connection waits for its answer, so nothing is left.
    assert r["requests"]["sent"] == r["requests"]["completed"]
    assert r["requests"]["inflight_end"] == 0
    assert len(origin.requests) == r["requests"]["sent"]
    assert origin.accepted() == 4
    lat = r["latency_us"]["corrected"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert lat["count"] == r["requests"]["completed"]
    assert lat["spectrum"][-1] == [100.0, lat["max"]]


def test_open_loop_sends_on_schedule(origin):
    rc, r, err = load("-c", "2", "-r", "200", "-d", "2", "http://127.0.0.1:%d/status/200" % origin.port)
    assert rc == 0, err
    ok(r)
    assert r["mode"] == "open"
    # Requests are due every 5 ms from the start: 400 in 2 s, whatever the answers do.
    assert r["requests"]["sent"] == 400
    assert r["requests"]["completed"] == 400
    assert r["requests"]["backlog_end"] == 0
    assert 190 <= r["requests"]["rate"] <= 210


def test_headers_method_and_authority_reach_the_origin(origin):
    rc, r, err = load("-d", "0.2", "-m", "POST", "--body-size", "5", "-H", "Host: svc.test", "-H", "X-Bench: 1",
                      "http://127.0.0.1:%d/echo?x=1" % origin.port)
    assert rc == 0, err
    ok(r)
    req = origin.requests[0]
    assert req.method == "POST" and req.target == "/echo?x=1"
    assert req.header("host") == "svc.test" and req.header("x-bench") == "1"
    assert req.header("content-length") == "5"


def test_stall_shows_in_corrected_latency_only():
    """An origin stalling 100 ms once a second, 1000 requests a second on one
    connection: from the due time about a tenth of the requests wait through
    part of a stall (p99 near 90 ms); from the write only one a second does."""
    srv = subprocess.Popen(["/usr/bin/python3", STALL_ORIGIN], stdout=subprocess.PIPE, text=True)
    try:
        port = int(srv.stdout.readline())
        rc, r, err = load("-c", "1", "-r", "1000", "-d", "3", "http://127.0.0.1:%d/" % port)
    finally:
        srv.kill()
        srv.wait()
    assert rc == 0, err
    ok(r)
    corr, unc = r["latency_us"]["corrected"], r["latency_us"]["uncorrected"]
    assert corr["p99"] >= 50000, corr
    assert unc["p99"] * 5 < corr["p99"], (unc, corr)
    assert corr["max"] >= 90000 and unc["max"] >= 90000


def test_errors_are_counted_by_kind(origin):
    # a request that outlives --timeout fails, and takes its connection down
    rc, r, err = load("-d", "0.5", "--timeout", "200ms", "http://127.0.0.1:%d/slow?ms=1500" % origin.port)
    assert rc == 3, err  # nothing answered: the report is written, the exit says so
    assert "no request was answered" in err
    assert r["errors"]["timeout"] >= 1
    assert r["requests"]["completed"] == 0
    # 4xx and 5xx are answers, counted by class, not errors
    rc, r, err = load("-d", "0.3", "http://127.0.0.1:%d/status/503" % origin.port)
    assert rc == 0, err
    assert r["status"]["5xx"] == r["requests"]["completed"] > 0
    assert r["errors"]["total"] == 0


def test_server_closing_after_each_answer(origin):
    """Connection: close is not an error: the connection is replaced."""
    rc, r, err = load("-c", "2", "-r", "100", "-d", "1", "http://127.0.0.1:%d/close?v=1.1" % origin.port)
    assert rc == 0, err
    ok(r)
    # Each request waits for a fresh connection; on a busy machine the last
    # few may still be due when the time is up, and are reported as such.
    q = r["requests"]
    assert q["completed"] + q["backlog_end"] + q["inflight_end"] == 100
    assert q["completed"] >= 90
    assert r["connects"] >= q["completed"] - 2


def test_per_conn_replaces_connections(origin):
    rc, r, err = load("-c", "1", "-r", "100", "-d", "1", "--per-conn", "1", "http://127.0.0.1:%d/status/200" % origin.port)
    assert rc == 0, err
    ok(r)
    assert r["requests"]["completed"] == 100
    assert 99 <= r["connects"] <= 100
    assert origin.accepted() >= 100


def test_requests_due_at_the_end_are_still_sent_and_counted(origin):
    """Two connections to a 30 ms origin cannot carry 100 requests a second:
    a backlog builds up to the end. The requests due before the end are sent
    after it, and their waits are in the corrected latency."""
    rc, r, err = load("-c", "2", "-r", "100", "-d", "1", "http://127.0.0.1:%d/slow?ms=30" % origin.port)
    assert rc == 0, err
    ok(r)
    assert r["requests"]["sent"] == r["requests"]["completed"] == 100
    assert r["requests"]["backlog_end"] == 0
    assert r["latency_us"]["corrected"]["max"] >= 200000  # waited for a free connection
    assert r["latency_us"]["uncorrected"]["max"] < r["latency_us"]["corrected"]["max"]


def test_a_server_that_hangs_up_is_not_hammered():
    """A server that closes every connection at once: the generator pauses
    before each reconnect instead of looping, and exits 3."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    stop = threading.Event()

    def hang_up():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
                c.close()
            except OSError:
                pass

    t = threading.Thread(target=hang_up, daemon=True)
    t.start()
    try:
        rc, r, err = load("-c", "2", "-d", "1", "http://127.0.0.1:%d/" % srv.getsockname()[1])
    finally:
        stop.set()
        t.join()
        srv.close()
    if rc == 1:  # the hang-up came before the start: also a clear refusal
        assert "cannot open 2 connections" in err
        return
    assert rc == 3, err
    assert r["connects"] <= 100, r["connects"]


def test_version():
    p = subprocess.run([LOAD, "--version"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("ringside-load ")


def test_cannot_start_says_why(refused):
    p = subprocess.run([LOAD, "-d", "1", "http://127.0.0.1:%d/" % refused.port], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1
    assert "cannot open 1 connections to 127.0.0.1:%d: Connection refused" % refused.port in p.stderr


@pytest.mark.parametrize("args,words", [
    (["ftp://x/"], "not an http:// or https:// URL"),
    (["-c", "0", "http://x/"], "--connections wants 1 to 100000"),
    (["-r", "-5", "http://x/"], "--rate wants"),
    (["-d", "soon", "http://x/"], "--duration wants"),
    (["-H", "no colon", "http://x/"], "--header wants 'Name: value'"),
    (["https://127.0.0.1:1/"], "wants --cacert FILE"),
    (["--cert", "a.pem", "-k", "https://127.0.0.1:1/"], "--cert and --key go together"),
    (["http://127.0.0.1:99999/"], "not an http:// or https:// URL"),
])
def test_bad_arguments(args, words):
    p = subprocess.run([LOAD, *args], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2
    assert words in p.stderr


# ---------------------------------------------------------------- nginx peers

def test_h2_prior_knowledge_several_streams(nginx):
    rc, r, err = load("--h2", "-c", "2", "-s", "8", "-d", "1", "http://127.0.0.1:%d/" % nginx.h2c)
    assert rc == 0, err
    ok(r)
    assert r["protocol"] == "h2" and r["streams"] == 8
    assert r["requests"]["completed"] > 50
    assert r["requests"]["inflight_end"] == 0


def test_h2_open_loop(nginx):
    rc, r, err = load("--h2", "-c", "1", "-r", "300", "-d", "1", "http://127.0.0.1:%d/" % nginx.h2c)
    assert rc == 0, err
    ok(r)
    assert r["requests"]["completed"] == 300


def tls_args(pki, *more):
    return ["--cacert", str(pki / "ca.crt"), "--sni", "origin.test", *more]


@pytest.mark.parametrize("h2", [False, True])
def test_mutual_tls(nginx, pki, h2):
    extra = ["--h2"] if h2 else []
    rc, r, err = load(*tls_args(pki, "--cert", str(pki / "client.crt"), "--key", str(pki / "client.key")), *extra,
                      "-c", "2", "-d", "1", "https://127.0.0.1:%d/" % nginx.tls)
    assert rc == 0, err
    ok(r)
    assert r["tls"] is True
    assert r["alpn"] == ("h2" if h2 else "http/1.1")
    assert r["requests"]["completed"] > 10


def test_tls_without_client_certificate_is_answered_400(nginx, pki):
    """nginx completes the handshake and answers 400 when the client sends no certificate."""
    rc, r, err = load(*tls_args(pki), "-d", "0.3", "https://127.0.0.1:%d/" % nginx.tls)
    assert rc == 0, err
    assert r["status"]["4xx"] == r["requests"]["completed"] > 0


def test_tls_server_from_another_ca_is_refused(nginx, pki):
    p = subprocess.run([LOAD, "--cacert", str(pki / "other-ca.crt"), "-d", "1", "https://127.0.0.1:%d/" % nginx.tls],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "TLS handshake failed" in p.stderr


def test_tls_wrong_server_name_is_refused(nginx, pki):
    p = subprocess.run([LOAD, "--cacert", str(pki / "ca.crt"), "--sni", "evil.test", "-d", "1",
                        "https://127.0.0.1:%d/" % nginx.tls], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "TLS handshake failed" in p.stderr


def test_new_tls_connection_per_request(nginx, pki):
    rc, r, err = load(*tls_args(pki, "--cert", str(pki / "client.crt"), "--key", str(pki / "client.key")),
                      "--per-conn", "1", "-r", "20", "-d", "1", "https://127.0.0.1:%d/" % nginx.tls)
    assert rc == 0, err
    ok(r)
    assert r["requests"]["completed"] == 20
    assert r["connects"] >= 19
