#!/usr/bin/python3
"""bench/compare.py: ringside side by side with nginx and HAProxy, in one run.

Measures, against one nginx origin and with the same CPU pinning for every
subject (proxies on one CPU, origin and load generator on the other):

  direct                   the load generator straight to the origin
  ringside                 one shard (--concurrency 1), a generated ServiceEntry
  ringside-busypoll        the same with --busy-poll 50us
  nginx                    1 worker, upstream keep-alive
  haproxy                  1 thread, http-reuse always
  <proxy>-pair             a sidecar pair: client -> proxy A -> proxy B -> origin
                           (ringside-pair, nginx-pair, haproxy-pair; also
                           ringside-busypoll-pair when asked for)
  <proxy>-mtls-pair        the pair with mutual TLS between A and B, on
                           certificates from `ringside ca` (also
                           ringside-busypoll-mtls-pair, --busy-poll 200us, and
                           haproxy-busypoll-mtls-pair, busy-polling, when
                           asked for)
  <proxy>-handshakes       the mTLS pair's B alone, a new TLS connection (a full
                           handshake with a client certificate) per request:
                           handshakes per second and CPU per handshake

For each subject and protocol (HTTP/1.1; HTTP/2 cleartext from the client to
the first proxy): latency at fixed request rates and connection counts (open
loop, corrected for coordinated omission) and what it adds over direct,
requests/s at saturation (closed loop), the proxy processes' CPU time per
request, and their RSS idle and under load. Writes
bench/results/compare-<UTC>.json and .md, and gnuplot PNGs beside them.
bench/README.md says how to read them.

Exits 0 when it wrote a report (read its flags and notes: a subject may have
been skipped or have failed), 1 when it could not run at all, 2 on bad usage.
Python 3 standard library only; run it with Debian's /usr/bin/python3.
"""
import argparse
import datetime
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_report  # noqa: E402  (beside this file)

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
HOST = "origin.test"
BODY = "hello from origin\n"
PROTOS = ("h1", "h2")


class Subject:
    """One thing measured: `kind` names the proxy (None: direct), `hops` is 1
    for a single proxy and 2 for a sidecar pair, `args` are extra flags.
    `mtls`: the pair's hop from A to B is mutual TLS; with one hop, the proxy
    is that B alone, and the load generator its TLS client (`handshakes`:
    one connection per request, closed loop only, HTTP/1.1 only)."""

    def __init__(self, name, kind, hops, args=(), default=True, mtls=False):
        self.name, self.kind, self.hops, self.args, self.default = name, kind, hops, list(args), default
        self.mtls = mtls
        self.handshakes = mtls and hops == 1


SUBJECTS = {s.name: s for s in [
    Subject("direct", None, 0),
    Subject("ringside", "ringside", 1),
    Subject("ringside-busypoll", "ringside", 1, ["--busy-poll", "50us"]),
    Subject("nginx", "nginx", 1),
    Subject("haproxy", "haproxy", 1),
    Subject("ringside-pair", "ringside", 2),
    # two proxies spinning on one CPU take turns at it: measured on request only
    Subject("ringside-busypoll-pair", "ringside", 2, ["--busy-poll", "50us"], default=False),
    Subject("nginx-pair", "nginx", 2),
    Subject("haproxy-pair", "haproxy", 2),
    Subject("ringside-mtls-pair", "ringside", 2, mtls=True),
    Subject("nginx-mtls-pair", "nginx", 2, mtls=True),
    Subject("haproxy-mtls-pair", "haproxy", 2, mtls=True),
    # A waits about 100 µs for B's answer: a 50 µs spin ends before it comes
    Subject("ringside-busypoll-mtls-pair", "ringside", 2, ["--busy-poll", "200us"], default=False, mtls=True),
    # HAProxy's own spinning (`busy-polling`: pollers with a null timeout), for a like-for-like row
    Subject("haproxy-busypoll-mtls-pair", "haproxy", 2, ["busy-polling"], default=False, mtls=True),
    Subject("ringside-handshakes", "ringside", 1, mtls=True),
    Subject("nginx-handshakes", "nginx", 1, mtls=True),
    Subject("haproxy-handshakes", "haproxy", 1, mtls=True),
]}
# The name B's certificate carries for nginx and HAProxy besides its SPIFFE ID:
# neither can match a URI SAN (bench/README.md, "The mTLS pair").
PEER_DNS_NAME = "b.default.svc.cluster.local"

# A ringside built before HTTP/2 (issue 6) answers the h2c preface as HTTP/1.1:
# its h2 rows say so. One that speaks HTTP/2 and fails the probe has failed.
RINGSIDE_H2_MISSING = "not supported yet (ringside speaks HTTP/2 with issue 6)"


class Fatal(Exception):
    """The run cannot go on at all."""


class Skip(Exception):
    """A subject cannot be measured (a peer missing, a start-up failure)."""


class Failed(Exception):
    """A subject broke while it was measured."""


def log(msg):
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- options

def seconds(text):
    """'5s', '500ms', '1m' or a bare number of seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text.strip())
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 5s, 500ms)")
    return float(m.group(1)) * {"ms": 1e-3, "s": 1, "m": 60, None: 1}[m.group(2)]


def int_list(text):
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}")
    if not vals or min(vals) <= 0:
        raise argparse.ArgumentTypeError(f"want positive whole numbers: {text!r}")
    return vals


def name_list(known):
    def parse(text):
        names = [v.strip() for v in text.split(",") if v.strip()]
        bad = [n for n in names if n not in known]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(bad) or 'empty list'} (known: {', '.join(known)})")
        return names
    return parse


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="bench/compare.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0],
        epilog="Every process is pinned: proxies on --proxy-cpu, the origin and the load "
               "generator on --load-cpu.\nSee bench/README.md.")
    p.add_argument("--quick", action="store_true",
                   help="CI smoke: every subject, one rate and connection count, 0.3 s runs")
    p.add_argument("--subjects", metavar="LIST", type=name_list(list(SUBJECTS)),
                   default=[s.name for s in SUBJECTS.values() if s.default],
                   help="comma-separated, measured in that order; direct is always measured "
                        "(added latency is over it). Default: every subject but "
                        "ringside-busypoll-pair and the *-busypoll-mtls-pair ones")
    p.add_argument("--proto", metavar="LIST", type=name_list(PROTOS), default=list(PROTOS),
                   help="h1 and/or h2 (client to first proxy over h2c), default h1,h2")
    p.add_argument("--rates", metavar="LIST", type=int_list, help="open-loop request rates, default 1000,5000,10000")
    p.add_argument("--conns", metavar="LIST", type=int_list, help="HTTP/1.1 connection counts, default 1,16,64")
    p.add_argument("--h2-conns", metavar="LIST", type=int_list,
                   help="HTTP/2 connection counts, default 4 (x --streams each)")
    p.add_argument("--streams", metavar="N", type=int, default=16,
                   help="HTTP/2 streams per connection, default 16")
    p.add_argument("--duration", metavar="T", type=seconds, help="each measured run, default 5s")
    p.add_argument("--warmup", metavar="T", type=seconds, help="run before each measurement, default 1s")
    p.add_argument("--sat-conns", metavar="N", type=int, default=64,
                   help="HTTP/1.1 connections of the closed-loop saturation run, default 64 "
                        "(HTTP/2: --h2-conns' first x --streams)")
    p.add_argument("--hs-conns", metavar="N", type=int, default=64,
                   help="connections of the closed-loop handshake runs (one TLS connection per "
                        "request), default 64")
    p.add_argument("--max-per-conn", metavar="N", type=int, default=2000,
                   help="leave out points asking more req/s of one connection (HTTP/2: of one "
                        "stream) than this, default 2000 (see bench/README.md)")
    p.add_argument("--spectrum-at", metavar="RATE/CONNS", default="5000/16",
                   help="RATE/CONNS of the headline point: the spectrum plot and the summary "
                        "table (HTTP/2: RATE at its first connection count); default 5000/16")
    p.add_argument("--wait-idle", type=int, default=0, metavar="SECS",
                   help="wait (at most SECS, before the run and before each subject) until "
                        "both CPUs are under 10%% busy")
    p.add_argument("--proxy-cpu", metavar="CPU", type=int, default=None, help="default 1")
    p.add_argument("--load-cpu", metavar="CPU", type=int, default=None, help="default 0")
    p.add_argument("--ringside-bin", metavar="PATH", default=os.environ.get("RINGSIDE_BIN"),
                   help="default build/src/cmd/ringside")
    p.add_argument("--loadgen-bin", metavar="PATH", default=os.environ.get("RINGSIDE_LOAD_BIN"),
                   help="default build/tools/loadgen/ringside-load")
    p.add_argument("--ringside-args", metavar="ARGS", default=os.environ.get("RINGSIDE_ARGS", ""),
                   help="extra flags for every ringside process, e.g. '--buffers 512'")
    p.add_argument("--results-dir", metavar="DIR", default=os.path.join(BENCH, "results"))
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--keep-tmp", action="store_true",
                   help="keep the run directory (configs, logs, raw load-generator JSON); "
                        "it is also kept when a subject failed or a request failed")
    a = p.parse_args(argv)
    if a.quick:
        defaults = dict(rates=[1000], conns=[16], h2_conns=[4], duration=0.3, warmup=0.1)
        a.spectrum_at = "1000/16" if a.spectrum_at == "5000/16" else a.spectrum_at
    else:
        defaults = dict(rates=[1000, 5000, 10000], conns=[1, 16, 64], h2_conns=[4],
                        duration=5.0, warmup=1.0)
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    m = re.fullmatch(r"(\d+)/(\d+)", a.spectrum_at)
    if not m:
        p.error(f"--spectrum-at wants RATE/CONNS, got {a.spectrum_at!r}")
    a.spectrum_rate, a.spectrum_conns = int(m.group(1)), int(m.group(2))
    if min(a.streams, a.sat_conns, a.max_per_conn, a.hs_conns) < 1:
        p.error("--streams, --sat-conns, --hs-conns and --max-per-conn want 1 or more")
    # direct first: every other subject's added latency is over it
    a.subjects = ["direct"] + [s for s in a.subjects if s != "direct"]
    ncpu = os.cpu_count() or 1
    a.proxy_cpu = a.proxy_cpu if a.proxy_cpu is not None else (1 if ncpu > 1 else 0)
    a.load_cpu = a.load_cpu if a.load_cpu is not None else 0
    a.ringside_bin = a.ringside_bin or os.path.join(REPO, "build", "src", "cmd", "ringside")
    a.loadgen_bin = a.loadgen_bin or os.path.join(REPO, "build", "tools", "loadgen", "ringside-load")
    return a


def grid(opts, proto):
    """The (rate, conns) points of a protocol, and those left out with why."""
    conns = opts.conns if proto == "h1" else opts.h2_conns
    streams = 1 if proto == "h1" else opts.streams
    points, left = [], []
    for c in conns:
        for r in opts.rates:
            per = r / (c * streams)
            if r < c:
                left.append({"rate": r, "conns": c, "reason": "fewer requests per second than connections"})
            elif per > opts.max_per_conn:
                left.append({"rate": r, "conns": c, "reason":
                             f"{per:.0f} req/s per {'connection' if proto == 'h1' else 'stream'} "
                             f"is above --max-per-conn {opts.max_per_conn}"})
            else:
                points.append((r, c))
    return points, left


# ---------------------------------------------------------------- /proc

def proc_stat_fields(pid):
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...]."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()


def proc_tree(pid):
    """pid and every descendant (nginx's master and its worker)."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                kids.setdefault(int(proc_stat_fields(d)[1]), []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out = [pid]
    for p in out:
        out.extend(kids.get(p, []))
    return out


def cpu_ticks(pids):
    """utime + stime of the processes (every thread of each), in clock ticks."""
    total = 0
    for p in pids:
        try:
            f = proc_stat_fields(p)
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def status_kib(pids, field):
    """Sum of one /proc/PID/status field (VmRSS, VmHWM) in KiB."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_sample(cpu):
    """(busy, total, steal) jiffies of one CPU from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            v = line.split()
            if v[0] == f"cpu{cpu}":
                n = [int(x) for x in v[1:9]]
                total = sum(n)
                return total - n[3] - n[4], total, n[7]
    return 0, 0, 0


def busy_pct(a, b):
    dt = b[1] - a[1]
    return round(100 * (b[0] - a[0]) / dt, 1) if dt > 0 else 0.0


# ---------------------------------------------------------------- processes

class Proc:
    def __init__(self, name, popen, cmd, logpath, cpu):
        self.name, self.popen, self.cmd, self.log, self.cpu = name, popen, cmd, logpath, cpu

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def exit_text(self):
        rc = self.popen.poll()
        if rc is None:
            return "running"
        return f"killed by signal {-rc} ({signal.Signals(-rc).name})" if rc < 0 else f"exit status {rc}"

    def log_tail(self, n=15):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:]).rstrip()
        except OSError:
            return ""


class Procs:
    """Every process this run starts, each the leader of its own process group,
    so that stopping one stops its children (nginx workers) and nothing else."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.live = []

    def start(self, name, cpu, argv):
        logpath = os.path.join(self.run_dir, f"{name}.log")
        cmd = ["taskset", "-c", str(cpu)] + argv
        with open(logpath, "ab") as out:
            popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        proc = Proc(name, popen, argv, logpath, cpu)
        self.live.append(proc)
        return proc

    def stop(self, proc, grace=5.0):
        if proc in self.live:
            self.live.remove(proc)
        if proc.alive():
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.popen.wait(grace)
            except subprocess.TimeoutExpired:
                log(f"{proc.name} (pid {proc.pid}) did not exit on SIGTERM; SIGKILL")
            except ProcessLookupError:
                pass
        # whatever is left of its group (a worker whose master went first)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.popen.wait(2)
        except subprocess.TimeoutExpired:
            pass

    def stop_all(self):
        for proc in reversed(list(self.live)):
            self.stop(proc, grace=3.0)


def run_quiet(argv, timeout=10):
    """Output (stdout and stderr) of a short command, '' when it fails."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, errors="replace")
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


# ---------------------------------------------------------------- ports

class Ports:
    """Free TCP ports on 127.0.0.1 below the ephemeral range, from a random start."""

    def __init__(self):
        try:
            with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
                eph = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            eph = 32768
        self.lo, self.hi = 20000, max(eph - 1, 21000)
        self.next = random.randrange(self.lo, self.hi - 500)
        self.given = set()

    def take(self):
        for _ in range(4000):
            self.next = self.next + 1 if self.next < self.hi else self.lo
            port = self.next
            if port in self.given:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            self.given.add(port)
            return port
        raise Fatal("no free TCP port found")


# ---------------------------------------------------------------- readiness

def http_body(port, timeout=1.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Host": HOST})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def wait_until(what, check, procs, timeout):
    """Polls check() until it is true; Skip when time runs out or a process exits."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive():
                raise Skip(f"{p.name} exited before {what} ({p.exit_text()}): {p.log_tail(3)}")
        try:
            if check():
                return
        except (OSError, http.client.HTTPException) as e:
            last = str(e)
        time.sleep(0.05)
    raise Skip(f"no {what} within {timeout:.0f} s{': ' + last if last else ''}")


def listening(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def answers_preface_as_h1(port):
    """The first bytes the server sends for HTTP/2's connection preface and an
    empty SETTINGS frame, when they are an HTTP/1.x status line (a server
    without HTTP/2); None otherwise."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            head = s.recv(64)
    except OSError:
        return None
    return head.split(b"\r\n")[0].decode("latin-1") if head.startswith(b"HTTP/1.") else None


# ---------------------------------------------------------------- the run

class Run:
    def __init__(self, opts):
        self.o = opts
        self.dir = tempfile.mkdtemp(prefix="ringside-compare.")
        self.procs = Procs(self.dir)
        self.ports = Ports()
        self.notes = []
        self.keep = opts.keep_tmp
        self.user = ""
        if os.geteuid() == 0:
            # nginx started by root would switch its worker to "nobody"
            import grp
            import pwd
            self.user = (f"user {pwd.getpwuid(os.getuid()).pw_name} "
                         f"{grp.getgrgid(os.getgid()).gr_name};")
        self.rs_listen = None
        self.loadgen_runs = 0
        self.pki = None

    # -- configs

    def fill(self, template, **subs):
        """A template from bench/ with its @NAME@ placeholders substituted."""
        with open(os.path.join(BENCH, template)) as f:
            text = f.read()
        subs = dict(RUN_DIR=self.dir, USER_DIRECTIVE=self.user, **subs)
        for k, v in subs.items():
            text = text.replace(f"@{k}@", str(v))
        left = re.findall(r"@[A-Z_]+@", text)
        if left:
            raise Fatal(f"{template}: placeholders not substituted: {', '.join(sorted(set(left)))}")
        return text

    def options(self, template, **subs):
        """A template of options (HAProxy's): its lines but comments, joined."""
        return " ".join(line.strip() for line in self.fill(template, **subs).splitlines()
                        if line.strip() and not line.lstrip().startswith("#"))

    def render(self, template, out, **subs):
        text = self.fill(template, **subs)
        path = os.path.join(self.dir, out)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_nginx(self, name, template, cpu, **subs):
        os.makedirs(os.path.join(self.dir, f"{name}.tmp"), exist_ok=True)
        conf = self.render(template, f"{name}.conf", NAME=name, **subs)
        base = ["nginx", "-p", self.dir + "/", "-e", os.path.join(self.dir, f"{name}.error.log"), "-c", conf]
        test = run_quiet(base[:1] + ["-t", "-q"] + base[1:])
        if test:
            raise Skip(f"nginx -t failed for {name}: {test}")
        return self.procs.start(name, cpu, base)

    # -- origin

    def start_origin(self):
        if not shutil.which("nginx"):
            raise Fatal("nginx is needed for the origin (apt-get install nginx-light)")
        self.origin_port = self.ports.take()
        self.origin_h2_port = self.ports.take()
        os.makedirs(os.path.join(self.dir, "nginx-origin.d"), exist_ok=True)
        with open(os.path.join(self.dir, "nginx-origin.d", "h2c.conf"), "w") as f:
            f.write(f"listen 127.0.0.1:{self.origin_h2_port} http2;\n")
        try:
            self.origin = self.start_nginx("nginx-origin", "nginx-origin.conf", self.o.load_cpu,
                                           ORIGIN_PORT=self.origin_port)
            wait_until("origin body", lambda: http_body(self.origin_port) == (200, BODY),
                       [self.origin], 10)
        except Skip as e:
            raise Fatal(f"the origin did not come up: {e}")
        log(f"origin: nginx on 127.0.0.1:{self.origin_port} (h2c :{self.origin_h2_port}), "
            f"CPU {self.o.load_cpu}")

    # -- the mesh's certificates (the mTLS subjects)

    def identities(self):
        """Certificates from the project's own CA, made once per run in
        <run>/pki: a root (`ringside ca init`), and workload certificates for
        service accounts a (the pair's A, and the load generator of the
        handshake runs) and b (B), each a directory of cert-chain.pem,
        key.pem, root-cert.pem. nginx and HAProxy cannot match B's SPIFFE ID,
        so their B presents b-peer: the same root, key type and extensions, and
        a DNS name (PEER_DNS_NAME) beside the URI, made by openssl. For
        HAProxy, `<id>.pem` holds the chain and the key in one file."""
        if self.pki:
            return self.pki
        b = self.o.ringside_bin
        if not os.access(b, os.X_OK):
            raise Skip(f"ringside binary (for `ringside ca`) not found: {b}")
        if not shutil.which("openssl"):
            raise Skip("openssl is not installed (it makes the peers' certificate with a DNS name)")
        d = os.path.join(self.dir, "pki")
        steps = [[b, "ca", "init", "--dir", f"{d}/ca"]] + [
            [b, "ca", "issue", "--dir", f"{d}/ca", "--namespace", "default", "--service-account", sa,
             "--out", f"{d}/{sa}"] for sa in ("a", "b")]
        os.makedirs(f"{d}/b-peer", exist_ok=True)
        ext = os.path.join(d, "b-peer.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
                    "extendedKeyUsage = serverAuth, clientAuth\nsubjectKeyIdentifier = hash\n"
                    "authorityKeyIdentifier = keyid\nsubjectAltName = critical, "
                    f"URI:spiffe://cluster.local/ns/default/sa/b, DNS:{PEER_DNS_NAME}\n")
        steps += [["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{d}/b-peer/key.pem"],
                  ["openssl", "req", "-new", "-key", f"{d}/b-peer/key.pem", "-subj", "/", "-out", f"{d}/b-peer.csr"],
                  ["openssl", "x509", "-req", "-in", f"{d}/b-peer.csr", "-CA", f"{d}/ca/root-cert.pem",
                   "-CAkey", f"{d}/ca/root-key.pem", "-set_serial", "0x" + os.urandom(16).hex(), "-days", "1",
                   "-sha256", "-extfile", ext, "-out", f"{d}/b-peer/leaf.pem"]]
        for argv in steps:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            if r.returncode != 0:
                raise Skip(f"making the certificates failed: {' '.join(argv)}: {(r.stdout + r.stderr).strip()[:300]}")
        cat = lambda *names: "".join(open(os.path.join(d, n)).read() for n in names)  # noqa: E731
        with open(f"{d}/b-peer/cert-chain.pem", "w") as f:
            f.write(cat("b-peer/leaf.pem", "ca/root-cert.pem"))
        shutil.copy(f"{d}/ca/root-cert.pem", f"{d}/b-peer/root-cert.pem")
        self.pki = {}
        for ident in ("a", "b", "b-peer"):
            files = {k: os.path.join(d, ident, f) for k, f in
                     (("CERT", "cert-chain.pem"), ("KEY", "key.pem"), ("CA", "root-cert.pem"))}
            files["CRT"] = os.path.join(d, f"{ident}.pem")
            with open(files["CRT"], "w") as f:
                f.write(cat(f"{ident}/cert-chain.pem", f"{ident}/key.pem"))
            self.pki[ident] = files
        return self.pki

    def identity_args(self, ident):
        f = self.identities()[ident]
        return ["--cert", f["CERT"], "--key", f["KEY"]]

    # -- proxies: each start_* returns (proc, port, command line) or raises Skip.
    # tls: None (plain HTTP both sides), "server" (the mTLS pair's B: mutual
    # TLS in, plain to the origin) or "client" (A: plain in, mutual TLS to B)

    def start_ringside(self, name, upstream, args, tls=None):
        b = self.o.ringside_bin
        if not os.access(b, os.X_OK):
            raise Skip(f"ringside binary not found: {b} (tools/build.sh release, or --ringside-bin)")
        if self.rs_listen is None:
            self.rs_listen = "--listen-address" in run_quiet([b, "proxy", "--help"])
        conf = os.path.join(self.dir, f"{name}.config.yaml")
        if tls == "server":
            # the inbound port, mutual TLS only, to the application (the origin) on port 80's entry
            docs = ["apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
                    "metadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: STRICT}\n",
                    "apiVersion: networking.istio.io/v1\nkind: Sidecar\n"
                    "metadata: {name: default, namespace: default}\nspec:\n  ingress:\n"
                    "  - port: {number: 80, protocol: HTTP, name: http}\n"
                    f"    defaultEndpoint: 127.0.0.1:{upstream}\n"]
        else:
            sa = "\n    serviceAccount: b" if tls == "client" else ""
            docs = ["apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\n"
                    f"metadata: {{name: origin, namespace: default}}\nspec:\n  hosts: [{HOST}]\n"
                    "  location: MESH_INTERNAL\n"
                    "  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n"
                    f"  endpoints:\n  - address: 127.0.0.1\n    ports: {{http: {upstream}}}{sa}\n"]
            if tls == "client":
                docs.append("apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
                            f"metadata: {{name: origin, namespace: default}}\nspec:\n  host: {HOST}\n"
                            "  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n")
        with open(conf, "w") as f:
            f.write("---\n".join(docs))
        out, inb, admin, stats, health = (self.ports.take() for _ in range(5))
        argv = [b, "proxy", "--config", conf, "--concurrency", "1", "--outbound-port", str(out),
                "--inbound-port", str(inb), "--admin-port", str(admin), "--stats-port", str(stats),
                "--health-port", str(health), "--log-level", "warn"]
        if self.rs_listen:
            argv += ["--listen-address", "127.0.0.1"]
        if tls:
            ident = "b" if tls == "server" else "a"
            argv += ["--namespace", "default", "--service-account", ident] + self.identity_args(ident)
            argv += ["--ca", self.identities()[ident]["CA"]]
        argv += args + self.o.ringside_args.split()
        proc = self.procs.start(name, self.o.proxy_cpu, argv)
        wait_until("GET /ready 200 on the admin port",
                   lambda: http_status(admin, "/ready") == 200, [proc], 20)
        rejected = re.search(r"^ringside_config_rejected_resources (\d+)", http_text(admin, "/stats/prometheus"), re.M)
        if not rejected or rejected.group(1) != "0":
            raise Skip(f"{name} did not take its whole configuration: {proc.log_tail(3)}")
        shown = " ".join(argv).replace(conf, "<config>").replace(os.path.join(self.dir, "pki"), "<pki>")
        return proc, inb if tls == "server" else out, shown

    def start_nginx_proxy(self, name, upstream, front, tls=None):
        port = self.ports.take()
        os.makedirs(os.path.join(self.dir, f"{name}.d"), exist_ok=True)
        if tls == "server":
            self.render("nginx-mtls-server.conf", f"{name}.d/server-tls.conf", **self.identities()["b-peer"])
        elif tls == "client":
            self.render("nginx-mtls-upstream.conf", f"{name}.d/location-tls.conf", PEER_NAME=PEER_DNS_NAME,
                        **self.identities()["a"])
        opts = "ssl" if tls == "server" else "http2" if front == "h2" else ""
        proc = self.start_nginx(name, "nginx-proxy.conf", self.o.proxy_cpu, LISTEN_PORT=port, LISTEN_OPTS=opts,
                                UPSTREAM_PORT=upstream, UPSTREAM_SCHEME="https" if tls == "client" else "http")
        wait_until("listening socket", lambda: listening(port), [proc], 10)
        return proc, port, " ".join(proc.cmd)

    def start_haproxy(self, name, upstream, front, tls=None, args=()):
        if not shutil.which("haproxy"):
            raise Skip("haproxy is not installed (tools/deps.sh bench)")
        port = self.ports.take()
        bind = (self.options("haproxy-mtls-bind.txt", **self.identities()["b-peer"]) if tls == "server"
                else "proto h2" if front == "h2" else "")
        server = (self.options("haproxy-mtls-server.txt", PEER_NAME=PEER_DNS_NAME, **self.identities()["a"])
                  if tls == "client" else "")
        cfg = self.render("haproxy.cfg", f"{name}.cfg", LISTEN_PORT=port, BIND_OPTS=bind,
                          UPSTREAM_PORT=upstream, SERVER_OPTS=server, GLOBAL_OPTS=" ".join(args))
        check = subprocess.run(["haproxy", "-c", "-q", "-f", cfg], capture_output=True, text=True,
                               timeout=10)
        if check.returncode != 0:
            raise Skip(f"haproxy -c failed for {name}: {(check.stdout + check.stderr).strip()}")
        proc = self.procs.start(name, self.o.proxy_cpu, ["haproxy", "-db", "-f", cfg])
        wait_until("listening socket", lambda: listening(port), [proc], 10)
        return proc, port, " ".join(proc.cmd)

    def start_subject(self, subj, proto):
        """Starts a subject's proxies, the server side of a pair first. Returns
        (processes, port the load goes to, their command lines)."""
        if subj.kind is None:
            return [], self.origin_port if proto == "h1" else self.origin_h2_port, []
        upstream, procs, cmds = self.origin_port, [], []
        before = len(self.procs.live)
        for hop in range(subj.hops):
            last = hop == subj.hops - 1
            name = subj.name if subj.hops == 1 else f"{subj.name}.{'a' if last else 'b'}"
            front = proto if last else "h1"   # only the client's hop speaks HTTP/2
            # mTLS: B (hop 0) takes it, A (the second hop) makes it
            tls = ("server" if hop == 0 else "client") if subj.mtls else None
            try:
                if subj.kind == "ringside":
                    proc, upstream, cmd = self.start_ringside(name, upstream, subj.args, tls)
                elif subj.kind == "nginx":
                    proc, upstream, cmd = self.start_nginx_proxy(name, upstream, front, tls)
                else:
                    proc, upstream, cmd = self.start_haproxy(name, upstream, front, tls, subj.args)
            except Skip:
                for p in self.procs.live[before:]:  # a process that never got ready too
                    self.procs.stop(p)
                raise
            procs.append(proc)
            cmds.append(cmd)
        return procs, upstream, cmds

    # -- the load generator

    def loadgen(self, tag, port, proto, conns, rate, duration, warmup, sampler=None, handshakes=False):
        """One ringside-load run; returns its JSON report. Raises Failed when it
        did not produce one. handshakes: over mutual TLS (A's certificate; the
        server's is not verified, which costs only the client), one new
        connection, so one full handshake, per request."""
        self.loadgen_runs += 1
        out = os.path.join(self.dir, f"{tag}.json")
        argv = [self.o.loadgen_bin, "-c", str(conns), "-r", str(rate), "-d", f"{duration * 1000:.0f}ms",
                "-w", f"{warmup * 1000:.0f}ms", "-H", f"Host: {HOST}", "--timeout", "2s",
                "--json", out, "-q"]
        if proto == "h2":
            argv += ["--h2", "-s", str(self.o.streams)]
        if handshakes:
            argv += ["--per-conn", "1", "-k"] + self.identity_args("a")
        argv.append(f"{'https' if handshakes else 'http'}://127.0.0.1:{port}/")
        # connect (5 s at most), warm-up, measurement, drain (--timeout), and slack
        limit = warmup + duration + 5 + 2 + 15
        p = self.procs.start(f"{tag}.loadgen", self.o.load_cpu, argv)
        deadline = time.monotonic() + limit
        try:
            while p.alive():
                if time.monotonic() > deadline:
                    raise Failed(f"ringside-load did not finish in {limit:.0f} s")
                if sampler:
                    sampler()
                time.sleep(0.1)
        finally:
            self.procs.stop(p, grace=1.0)
        if p.popen.returncode != 0 or not os.path.exists(out):
            raise Failed(f"ringside-load {p.exit_text()}: {p.log_tail(3)}")
        with open(out) as f:
            return json.load(f)

    def probe(self, port, proto, handshakes=False):
        """A few requests through the subject: None when every one came back 2xx
        with the origin's answer, else what went wrong."""
        if proto == "h1" and not handshakes:
            try:
                status, body = http_body(port, timeout=2)
            except (OSError, http.client.HTTPException) as e:
                return f"GET / failed: {e}"
            return None if (status, body) == (200, BODY) else f"GET / answered {status} {body[:120]!r}"
        try:
            j = self.loadgen(f"probe-{proto}", port, proto, 1, 50, 0.2, 0, handshakes=handshakes)
        except Failed as e:
            return str(e)
        done, ok = j["requests"]["completed"], j["status"]["2xx"]
        if done and ok == done and not j["errors"]["total"]:
            return None
        errs = ", ".join(f"{k} {v}" for k, v in j["errors"].items() if v and k != "total")
        return f"{'TLS' if handshakes else 'h2c'} probe: {done} answered ({ok} 2xx) of {j['requests']['sent']}, errors: {errs or 'none'}"


def http_get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def http_status(port, path):
    return http_get(port, path)[0]


def http_text(port, path):
    return http_get(port, path)[1]


# ---------------------------------------------------------------- measuring

def point_flags(j, rate, duration):
    """What makes a run's numbers untrustworthy, as 'kind: detail'; [] when none."""
    flags = []
    r, errs = j["requests"], j["errors"]
    if r["completed"] == 0:
        flags.append("no responses: none of the requests was answered")
    if errs["total"]:
        flags.append("errors: " + ", ".join(f"{k} {v}" for k, v in errs.items() if v and k != "total"))
    non2xx = r["completed"] - j["status"]["2xx"]
    if non2xx:
        flags.append(f"non-2xx: {non2xx} responses")
    # a request or two due in the last instant may be cut off by the end of
    # the run; more than 0.1% of the schedule unsent means the target lagged
    if rate and r["backlog_end"] > max(2, 0.001 * rate * duration):
        flags.append(f"backlog: {r['backlog_end']} requests due were never sent (the target did not keep up)")
    if r["inflight_end"]:
        flags.append(f"unanswered: {r['inflight_end']} requests at the end")
    return flags


def point_record(j, rate, conns, streams, duration):
    lat = j["latency_us"]
    pick = lambda h, keys: {k: round(h[k], 1) for k in keys}  # noqa: E731
    return {
        "rate": rate, "conns": conns, "streams": streams,
        "achieved_rps": round(j["requests"]["rate"], 1),
        "sent": j["requests"]["sent"], "completed": j["requests"]["completed"],
        "backlog_end": j["requests"]["backlog_end"], "inflight_end": j["requests"]["inflight_end"],
        "status": j["status"], "errors": j["errors"],
        "latency_us": pick(lat["corrected"], ("p50", "p90", "p99", "p99.9", "p99.99", "max", "mean")),
        "uncorrected_us": pick(lat["uncorrected"], ("p50", "p90", "p99", "p99.9", "max")),
        "send_lag_us": pick(lat["send_lag"], ("p50", "p99", "max")),
        "spectrum": [[round(q, 5), round(v, 1)] for q, v in lat["corrected"]["spectrum"]],
        "flags": point_flags(j, rate, duration),
    }


def measure(run, subj, proto):
    """Everything measured for one subject and protocol: a row of the report."""
    points, left = grid(run.o, proto) if not subj.handshakes else ([], [])
    row = {"subject": subj.name, "proto": proto, "kind": subj.kind or "direct", "hops": subj.hops,
           "mtls": subj.mtls, "handshakes": subj.handshakes,
           "status": "ok", "processes": [], "points": [], "points_left_out": left, "flags": []}
    procs = []
    try:
        procs, port, cmds = run.start_subject(subj, proto)
        row["processes"] = [{"name": p.name, "pid": p.pid, "cpu": p.cpu, "command": c}
                            for p, c in zip(procs, cmds)]
        problem = run.probe(port, proto, subj.handshakes)
        h1_answer = answers_preface_as_h1(port) if problem and subj.kind == "ringside" and proto == "h2" else None
        if h1_answer:
            raise Skip(f"{RINGSIDE_H2_MISSING}; the h2c preface was answered {h1_answer!r}")
        if problem:
            raise Failed(f"requests through it fail: {problem}")
        measure_points(run, row, procs, port, points)
        measure_saturation(run, row, procs, port)
    except Skip as e:
        row.update(status="skipped", reason=str(e))
    except Failed as e:
        run.keep = True
        row.update(status="failed", reason=str(e))
    finally:
        for p in reversed(procs):
            run.procs.stop(p)
            check_log(run, row, p)
    row["flags"] = sorted({f.split(":")[0] for pt in row["points"] + [row.get("saturation") or {}]
                           for f in pt.get("flags", [])})
    return row


def pids_of(procs):
    return [q for p in procs for q in proc_tree(p.pid)]


def check_alive(procs, phase):
    for p in procs:
        if not p.alive():
            raise Failed(f"{p.name} exited during {phase} ({p.exit_text()}): {p.log_tail(3)}")


def measure_points(run, row, procs, port, points):
    """Idle RSS, then the open-loop runs at each rate and connection count."""
    o, proto = run.o, row["proto"]
    time.sleep(0.1 if o.quick else 0.3)
    if procs:
        row["rss_idle_kib"] = status_kib(pids_of(procs), "VmRSS")
    streams = o.streams if proto == "h2" else 1
    for rate, conns in points:
        tag = f"{row['subject']}-{proto}-r{rate}-c{conns}"
        log(f"{row['subject']} {proto}: {rate} req/s over {conns} connection(s)"
            + (f" x {streams} streams" if streams > 1 else ""))
        pids = pids_of(procs)
        t0, w0 = cpu_ticks(pids), time.monotonic()
        j = run.loadgen(tag, port, proto, conns, rate, o.duration, o.warmup)
        t1, w1 = cpu_ticks(pids), time.monotonic()
        check_alive(procs, f"the run at {rate} req/s over {conns} connections")
        rec = point_record(j, rate, conns, streams, o.duration)
        if procs:
            # the proxies' CPU over the whole run (warm-up included), as a
            # share of one core: what spinning (--busy-poll) costs at a rate
            rec["proxy_cpu_pct"] = round(100 * (t1 - t0) / os.sysconf("SC_CLK_TCK") / max(1e-3, w1 - w0), 1)
        for f in rec["flags"]:
            log(f"  {tag}: {f}")
        if rec["errors"]["total"]:
            run.keep = True  # the raw JSON and the logs, to look at what failed
        row["points"].append(rec)


def measure_saturation(run, row, procs, port):
    """Closed loop: requests/s, the proxies' CPU time per request, RSS under load."""
    o, proto, name, hs = run.o, row["proto"], row["subject"], row["handshakes"]
    conns = o.hs_conns if hs else o.sat_conns if proto == "h1" else o.h2_conns[0]
    streams = o.streams if proto == "h2" else 1
    log(f"{name} {proto}: saturation, closed loop over {conns} connection(s)"
        + (", a new TLS connection per request" if hs else ""))
    run.loadgen(f"{name}-{proto}-sat-warmup", port, proto, conns, 0, o.warmup, 0, handshakes=hs)
    check_alive(procs, "the saturation warm-up")
    pids, rss = pids_of(procs), [0]

    def sample():
        rss[0] = max(rss[0], status_kib(pids, "VmRSS"))

    t0, c0, p0 = cpu_ticks(pids), cpu_sample(o.load_cpu), cpu_sample(o.proxy_cpu)
    j = run.loadgen(f"{name}-{proto}-sat", port, proto, conns, 0, o.duration, 0, sample, handshakes=hs)
    t1, c1, p1 = cpu_ticks(pids), cpu_sample(o.load_cpu), cpu_sample(o.proxy_cpu)
    check_alive(procs, "the saturation run")
    done = j["requests"]["completed"]
    sat = {
        "conns": conns, "streams": streams, "rps": round(j["requests"]["rate"], 1),
        "completed": done, "errors": j["errors"], "status": j["status"],
        "latency_us": {k: round(j["latency_us"]["corrected"][k], 1) for k in ("p50", "p99", "max")},
        "load_cpu_busy_pct": busy_pct(c0, c1), "proxy_cpu_busy_pct": busy_pct(p0, p1),
        "steal_pct": round(100 * ((c1[2] - c0[2]) + (p1[2] - p0[2]))
                           / max(1, (c1[1] - c0[1]) + (p1[1] - p0[1])), 1),
        "flags": point_flags(j, 0, o.duration),
    }
    if procs:
        # /proc/PID/stat and /proc/stat count in the same clock ticks (USER_HZ)
        sat["proxy_cpu_ticks"] = t1 - t0
        sat["proxy_share_of_cpu_pct"] = round(100 * (t1 - t0) / max(1, p1[1] - p0[1]), 1)
        sat["cpu_us_per_request"] = (round((t1 - t0) * 1e6 / os.sysconf("SC_CLK_TCK") / done, 2)
                                     if done else None)
        row["rss_load_kib"] = rss[0] or status_kib(pids, "VmRSS")
        row["rss_hwm_kib"] = status_kib(pids, "VmHWM")
    row["saturation"] = sat
    contamination(run, row, sat)


def contamination(run, row, sat):
    """Other work on the proxy CPU shows as busy time the proxy did not use:
    the row is flagged and the run's notes say how much."""
    o, name = run.o, f"{row['subject']} {row['proto']}"
    if o.proxy_cpu == o.load_cpu:
        return
    busy, used = sat["proxy_cpu_busy_pct"], sat.get("proxy_share_of_cpu_pct", 0)
    if row["kind"] == "direct" and busy > 10:
        why = f"CPU {o.proxy_cpu}, idle for this subject, was {busy}% busy: other work is running on the machine"
    elif row["kind"] != "direct" and busy - used > 10:
        why = f"CPU {o.proxy_cpu} was {busy}% busy and the proxies used {used}% of it: other work ran there"
    else:
        return
    sat["flags"].append(f"contaminated: {why}")
    run.notes.append(f"{name} saturation: {why}")


def check_log(run, row, proc):
    """What a proxy printed: a sanitizer report fails the row; anything else
    (they run at warning level) goes to the notes."""
    tail = proc.log_tail(200)
    if re.search(r"Sanitizer|runtime error:", tail):
        run.keep = True
        row.update(status="failed", reason=f"{proc.name}: sanitizer report in {proc.log}")
    elif tail:
        lines = tail.splitlines()
        run.notes.append(f"{proc.name} ({row['proto']}) wrote {len(lines)} line(s) to its output; "
                         f"the last: {lines[-1][:200]}")


# ---------------------------------------------------------------- machine

def background(run):
    """Busy share of both CPUs over one second."""
    a, b = cpu_sample(run.o.load_cpu), cpu_sample(run.o.proxy_cpu)
    time.sleep(1)
    return busy_pct(a, cpu_sample(run.o.load_cpu)), busy_pct(b, cpu_sample(run.o.proxy_cpu))


def wait_idle(run, before):
    """With --wait-idle, waits (at most that long) until both CPUs are under
    10% busy; notes it when they are not. Returns the last 1 s sample."""
    bg = background(run)
    deadline = time.monotonic() + run.o.wait_idle
    while max(bg) >= 10 and time.monotonic() < deadline:
        log(f"waiting for an idle machine before {before} (CPU {run.o.load_cpu} {bg[0]}%, "
            f"CPU {run.o.proxy_cpu} {bg[1]}%)")
        time.sleep(4)
        bg = background(run)
    if max(bg) > 10:
        run.notes.append(f"machine not idle before {before}: CPU {run.o.load_cpu} {bg[0]}% busy, "
                         f"CPU {run.o.proxy_cpu} {bg[1]}% busy (1 s sample); numbers are noisier")
    return {"load_cpu": bg[0], "proxy_cpu": bg[1]}


def machine_info(run):
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    u = os.uname()
    return {"hostname": u.nodename, "kernel": u.release, "nproc": os.cpu_count(),
            "cpu_model": cpu or u.machine}


def versions(run):
    git = lambda *a: run_quiet(["git", "-C", REPO] + list(a))  # noqa: E731
    rev = git("rev-parse", "--short", "HEAD") or "none"
    if rev != "none" and git("status", "--porcelain", "--untracked-files=no"):
        rev += "-dirty"
    ver = lambda argv, pat: (re.search(pat, run_quiet(argv)) or [None, "n/a"])[1]  # noqa: E731
    return {
        "nginx": ver(["nginx", "-v"], r"nginx/(\S+)"),
        "haproxy": ver(["haproxy", "-v"], r"version (\S+)"),
        "ringside": (run_quiet([run.o.ringside_bin, "version"]).splitlines() or ["n/a"])[0],
        "ringside_git": rev,
        "ringside_bin": run.o.ringside_bin,
        "loadgen": f"ringside-load (tools/loadgen, rev {rev})",
        "loadgen_bin": run.o.loadgen_bin,
        "gnuplot": ver(["gnuplot", "--version"], r"gnuplot (\S+ patchlevel \S+)"),
        "python": sys.version.split()[0],
    }


def command_line(argv):
    words = ["/usr/bin/python3", "bench/compare.py"] + argv
    return " ".join(w if re.fullmatch(r"[\w,./=:+@%-]+", w) else repr(w) for w in words)


# ---------------------------------------------------------------- main

def main(argv):
    opts = parse_args(argv)
    if not os.access(opts.loadgen_bin, os.X_OK):
        log(f"load generator not found: {opts.loadgen_bin} (tools/build.sh release, or --loadgen-bin)")
        return 1
    if not shutil.which("taskset"):
        log("taskset not found (util-linux)")
        return 1

    def on_signal(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)
    # also when started with SIGINT ignored (in the background of a script)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    run = Run(opts)
    status = 1
    try:
        started = time.monotonic()
        log(f"run directory {run.dir}; proxies on CPU {opts.proxy_cpu}, origin and load on CPU {opts.load_cpu}")
        if opts.proxy_cpu == opts.load_cpu:
            run.notes.append(f"proxies, origin and load generator all run on CPU {opts.load_cpu}: "
                             "the numbers say little")
        bg = wait_idle(run, "the run")
        log(f"background busy before the run: CPU {opts.load_cpu} {bg['load_cpu']}%, "
            f"CPU {opts.proxy_cpu} {bg['proxy_cpu']}%")
        run.start_origin()
        rows = []
        for proto in opts.proto:
            for name in opts.subjects:
                if SUBJECTS[name].handshakes and proto != "h1":
                    continue  # a connection per request: measured once, over HTTP/1.1
                # other work comes and goes during a long run: look again before each subject
                idle = wait_idle(run, f"{name} {proto}") if opts.wait_idle else None
                row = measure(run, SUBJECTS[name], proto)
                row["background_busy_pct"] = idle
                if row["status"] != "ok":
                    log(f"{name} {proto}: {row['status'].upper()}: {row['reason']}")
                rows.append(row)
        if not run.origin.alive():
            run.notes.append(f"the origin exited during the run ({run.origin.exit_text()})")
        now = datetime.datetime.now(datetime.timezone.utc)
        result = {
            "benchmark": "compare",
            "date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "stamp": now.strftime("%Y%m%dT%H%M%SZ"),
            "command": command_line(argv),
            "elapsed_s": round(time.monotonic() - started, 1),
            "machine": machine_info(run),
            "versions": versions(run),
            "pinning": {"proxy_cpu": opts.proxy_cpu, "origin_cpu": opts.load_cpu, "loadgen_cpu": opts.load_cpu},
            "background_busy_pct": bg,
            "load": {"duration_s": opts.duration, "warmup_s": opts.warmup, "rates": opts.rates,
                     "h1_conns": opts.conns, "h2_conns": opts.h2_conns, "h2_streams": opts.streams,
                     "sat_conns_h1": opts.sat_conns, "sat_duration_s": opts.duration,
                     "handshake_conns": opts.hs_conns,
                     "max_per_conn": opts.max_per_conn, "request_timeout_s": 2,
                     "spectrum_at": {"rate": opts.spectrum_rate, "conns": opts.spectrum_conns},
                     "host_header": HOST, "response_body": BODY, "quick": opts.quick},
            "rows": rows,
            "notes": run.notes,
        }
        compare_report.derive(result)
        os.makedirs(opts.results_dir, exist_ok=True)
        paths = compare_report.write(result, opts.results_dir, plots=not opts.no_plots)
        print(compare_report.summary_text(result))
        for p in paths:
            print(f"wrote {p}")
        status = 0
    except Fatal as e:
        log(f"error: {e}")
        run.keep = True
    except KeyboardInterrupt as e:
        log(f"interrupted ({e or 'SIGINT'}): stopping everything")
        status = 143 if str(e) == "SIGTERM" else 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        run.procs.stop_all()
        if run.keep:
            log(f"run directory kept: {run.dir}")
        else:
            shutil.rmtree(run.dir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
