"""Fixtures for ringside's end-to-end tests: an origin, the proxy process, helpers.

Environment:
  RINGSIDE_BIN        path to the ringside binary (tests are skipped without it)
  RINGSIDE_SANITIZED  1 when the binary is an ASan build (relaxed memory bounds and timeouts)
  E2E_LOG_LEVEL       optional --log-level for the proxy (debug|info|warn|error)
"""

import os
import random
import re
import signal
import socket
import subprocess
import time

import httpx
import pytest

import origin as origin_mod
import prom

RINGSIDE_BIN = os.environ.get("RINGSIDE_BIN")
SANITIZED = os.environ.get("RINGSIDE_SANITIZED") == "1"
# Timeouts that scale when the binary is instrumented.
SLOW = 3.0 if SANITIZED else 1.0
READY_TIMEOUT = 10.0

_SANITIZER_PATTERNS = re.compile(
    r"(ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: AddressSanitizer|SUMMARY: UndefinedBehaviorSanitizer|runtime error:|ERROR: ThreadSanitizer)"
)


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = f.read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 for the proxy's listeners.

    They are taken below the kernel's ephemeral range when there is room, so that
    no outgoing connection (of the tests, the origin or the proxy) can take one of
    them between this check and the proxy's bind. Each is checked by binding it."""
    lo, hi = _ephemeral_range()
    candidates = list(range(10000, lo)) if lo - 10000 >= 1000 else []
    random.shuffle(candidates)
    ports = []
    socks = []
    try:
        for port in candidates[:2000]:
            if len(ports) == n:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            ports.append(port)
        while len(ports) < n:  # fallback: let the kernel choose
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
        return ports
    finally:
        for s in socks:
            s.close()


def service_entry(name, host, port, svc_port=80):
    return (
        "apiVersion: networking.istio.io/v1beta1\n"
        "kind: ServiceEntry\n"
        "metadata: {name: %s, namespace: default}\n"
        "spec:\n"
        "  hosts: [%s]\n"
        "  ports: [{number: %d, name: http, protocol: HTTP}]\n"
        "  resolution: STATIC\n"
        "  endpoints: [{address: 127.0.0.1, ports: {http: %d}}]\n" % (name, host, svc_port, port)
    )


def http_client(timeout=10.0):
    return httpx.Client(trust_env=False, timeout=timeout)


class Proxy:
    def __init__(self, tmp_path, hosts, concurrency=2, drain_timeout="2s", extra_args=()):
        self.tmp_path = tmp_path
        (self.outbound, self.inbound, self.admin, self.stats, self.health) = free_ports(5)
        docs = [service_entry(h.split(".")[0].replace("_", "-") + "-se", h, p) for h, p in hosts.items()]
        self.config_path = tmp_path / "ringside.yaml"
        self.config_path.write_text("---\n".join(docs))
        self.drain_timeout = drain_timeout
        self.args = [
            RINGSIDE_BIN,
            "proxy",
            "--config",
            str(self.config_path),
            "--outbound-port",
            str(self.outbound),
            "--inbound-port",
            str(self.inbound),
            "--admin-port",
            str(self.admin),
            "--stats-port",
            str(self.stats),
            "--health-port",
            str(self.health),
            "--drain-timeout",
            drain_timeout,
        ]
        if concurrency is not None:
            self.args += ["--concurrency", str(concurrency)]
        if os.environ.get("E2E_LOG_LEVEL"):
            self.args += ["--log-level", os.environ["E2E_LOG_LEVEL"]]
        self.args += list(extra_args)
        self.stderr_path = tmp_path / ("ringside-%d.stderr" % self.outbound)
        self.proc = None
        self.expect_exit = False  # set by tests that stop the proxy themselves
        self.exited_during_test = None
        self.signalled_by_teardown = None

    # ------------------------------------------------------------ lifecycle
    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RINGSIDE_")}
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr, env=env)
        self.pid = self.proc.pid
        self.wait_ready(READY_TIMEOUT)
        return self

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        with http_client(timeout=1.0) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    pytest.fail("ringside exited during startup with code %s:\n%s" % (self.proc.returncode, self.stderr_tail()))
                try:
                    r = c.get("http://127.0.0.1:%d/ready" % self.admin)
                    last = "admin /ready: %d %r" % (r.status_code, r.text[:100])
                    if r.status_code == 200 and r.text.strip() == "LIVE":
                        h = c.get("http://127.0.0.1:%d/healthz/ready" % self.health)
                        last = "health /healthz/ready: %d %r" % (h.status_code, h.text[:100])
                        if h.status_code == 200:
                            return
                except httpx.HTTPError as e:
                    last = repr(e)
                time.sleep(0.05)
        pytest.fail("ringside not ready within %.0fs (last: %s)\n%s" % (timeout, last, self.stderr_tail()))

    def alive(self):
        return self.proc.poll() is None

    def wait_exit(self, timeout):
        """Waits for the process to exit; returns its code or None on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def teardown(self):
        """Stops the process; returns a list of problems (crash, sanitizer report)."""
        problems = []
        if self.proc is None:
            return problems
        rc = self.proc.poll()
        if rc is not None and not self.expect_exit:
            problems.append("ringside exited during the test with code %d" % rc)
        if rc is None:
            self.signalled_by_teardown = signal.SIGTERM
            self.proc.send_signal(signal.SIGTERM)
            rc = self.wait_exit(self._seconds(self.drain_timeout) + 3 * SLOW)
            if rc is None:
                self.signalled_by_teardown = signal.SIGKILL
                self.proc.kill()
                rc = self.proc.wait(10)
        if rc < 0:
            sig = -rc
            if sig != self.signalled_by_teardown and not (self.expect_exit and sig in (signal.SIGTERM, signal.SIGKILL)):
                problems.append("ringside died by signal %s (crash)" % signal.Signals(sig).name)
        if SANITIZED and rc in (23, 24):  # exit codes tests/e2e/meson.build gives ASan and UBSan
            problems.append("ringside exited with code %d: a sanitizer report" % rc)
        self._stderr.close()
        m = _SANITIZER_PATTERNS.search(self.stderr_text())
        if m:
            problems.append("sanitizer reported an error: %s" % m.group(0))
        return problems

    @staticmethod
    def _seconds(d):
        m = re.fullmatch(r"(\d+)(ms|s|m)", d)
        n = int(m.group(1))
        return {"ms": n / 1000.0, "s": n, "m": 60 * n}[m.group(2)]

    # ------------------------------------------------------------ output
    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stderr_tail(self, max_chars=20000):
        t = self.stderr_text()
        if len(t) > max_chars:
            t = "[... %d chars omitted ...]\n" % (len(t) - max_chars) + t[-max_chars:]
        return "command: %s\n%s" % (" ".join(self.args), t)

    # ------------------------------------------------------------ helpers
    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.outbound, path)

    def get(self, path, host="origin.test", headers=None, **kw):
        h = {"Host": host}
        h.update(headers or {})
        with http_client() as c:
            return c.get(self.url(path), headers=h, **kw)

    def scrape_text(self):
        with http_client() as c:
            r = c.get("http://127.0.0.1:%d/stats/prometheus" % self.stats)
        assert r.status_code == 200, r.text
        return r

    def metrics(self):
        return prom.Metrics(self.scrape_text().text)

    def wait_metric(self, predicate, timeout=5.0):
        """Scrapes until predicate(metrics) is true; returns the last Metrics."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.metrics()
            if predicate(m) or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def rss_kib(self):
        """(VmRSS, VmHWM) in KiB, or None when the process is gone."""
        try:
            with open("/proc/%d/status" % self.pid) as f:
                status = f.read()
        except OSError:
            return None
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        hwm = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        return int(rss.group(1)) if rss else 0, int(hwm.group(1)) if hwm else 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for p in getattr(item, "_ringside_proxies", []):
            rep.sections.append(("ringside output (pid %s)" % getattr(p, "pid", "?"), p.stderr_tail()))
        o = getattr(item, "_ringside_origin", None)
        if o is not None and o.errors:
            rep.sections.append(("origin: requests it could not parse", "\n".join(o.errors)))


@pytest.fixture
def origin(request):
    o = origin_mod.Origin().start()
    request.node._ringside_origin = o
    yield o
    o.stop()
    if o.internal_errors:
        pytest.fail("the test origin itself failed:\n" + "\n".join(o.internal_errors), pytrace=False)


@pytest.fixture
def refused():
    r = origin_mod.RefusedPort()
    yield r
    r.close()


@pytest.fixture
def make_proxy(request, tmp_path, origin, refused):
    """Factory: make_proxy(hosts=None, concurrency=2, drain_timeout="2s", extra_args=()).
    Default hosts: origin.test -> origin, refused.test -> a refused port."""
    if not RINGSIDE_BIN:
        pytest.skip("RINGSIDE_BIN is not set: no ringside binary to test")
    if not os.access(RINGSIDE_BIN, os.X_OK):
        pytest.fail("RINGSIDE_BIN=%s is not an executable file" % RINGSIDE_BIN)
    proxies = []
    request.node._ringside_proxies = proxies
    counter = [0]

    def make(hosts=None, **kw):
        if hosts is None:
            hosts = {"origin.test": origin.port, "refused.test": refused.port}
        counter[0] += 1
        d = tmp_path / ("proxy%d" % counter[0])
        d.mkdir()
        p = Proxy(d, hosts, **kw)
        proxies.append(p)
        return p.start()

    yield make
    problems = []
    for p in proxies:
        problems += p.teardown()
    if problems:
        pytest.fail("; ".join(problems) + " (see the ringside output below)", pytrace=False)


@pytest.fixture
def proxy(make_proxy):
    return make_proxy()


def pytest_report_header(config):
    return "ringside: RINGSIDE_BIN=%s sanitized=%s" % (RINGSIDE_BIN, SANITIZED)
