#!/usr/bin/python3
"""Checks ringside-load against wrk on the same targets, in one run:

1. throughput, closed loop, alternating wrk and ringside-load ROUNDS times,
   medians compared, with each client's CPU time per request: against nginx
   (64 and 1 connections), where the client can be the limit, and against a
   Python origin (4 connections), where the server is and both should agree.
2. coordinated omission: against tools/loadgen/stall-origin.py (100 ms stall
   once a second), ringside-load at 1000 req/s on one connection, corrected
   and uncorrected, beside wrk on one connection.

  tools/loadgen/validate.py [--rounds 3] [--duration 5]

Origin on CPU 0, client on CPU 1. Writes bench/results/loadgen-validate-<UTC>.{json,md}.
Needs wrk and nginx (tools/deps.sh bench)."""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD = os.path.join(ROOT, "build", "tools", "loadgen", "ringside-load")
STALL = os.path.join(ROOT, "tools", "loadgen", "stall-origin.py")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on port %d" % port)


def wrk_us(v):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", v)
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[m.group(2)]


def run_timed(cmd, timeout):
    """Runs cmd on CPU 1; returns its stdout and the CPU seconds it used."""
    p = subprocess.Popen(["taskset", "-c", "1", *cmd], stdout=subprocess.PIPE, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru.ru_utime + ru.ru_stime - run_timed.cpu
    run_timed.cpu = ru.ru_utime + ru.ru_stime
    if p.returncode != 0:
        raise RuntimeError("%s exited %d" % (cmd[0], p.returncode))
    return out, cpu


run_timed.cpu = 0.0


def run_wrk(conns, secs, url):
    out, cpu = run_timed(["wrk", "-t1", "-c%d" % conns, "-d%ds" % secs, "--latency", url], secs + 30)
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    total = int(re.search(r"([0-9]+) requests in", out).group(1))
    lat = {}
    block = out.split("Latency Distribution", 1)[1]
    for p, v in re.findall(r"^\s+([0-9.]+)%\s+(\S+)", block, re.M):
        lat["p%g" % float(p)] = wrk_us(v)
    m = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out)
    lat["max"] = wrk_us(m.group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "latency_us": lat, "errors": errors.group(1) if errors else "none",
            "cpu_us_per_request": cpu * 1e6 / max(total, 1)}


def run_load(args, secs, url):
    out, cpu = run_timed([LOAD, "-q", "--json", "-", "-d", "%ds" % secs, *args, url], secs + 60)
    r = json.loads(out)
    return {"rps": r["requests"]["rate"], "latency_us": r["latency_us"], "errors": r["errors"]["total"],
            "cpu_us_per_request": cpu * 1e6 / max(r["requests"]["completed"], 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    a = ap.parse_args()
    for tool in ("wrk", "nginx", "taskset"):
        if not shutil.which(tool):
            sys.exit("validate.py: %s is not installed (tools/deps.sh bench)" % tool)
    if not os.access(LOAD, os.X_OK):
        sys.exit("validate.py: %s is not built (tools/build.sh release)" % LOAD)

    tmp = tempfile.mkdtemp(prefix="lg-validate-")
    procs = []
    result = {"machine": {"kernel": platform.release(), "cpus": os.cpu_count(),
                          "rev": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                                capture_output=True, text=True).stdout.strip()},
              "rounds": a.rounds, "duration_s": a.duration}
    try:
        port = free_port()
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write("worker_processes 1; daemon off; pid {t}/nginx.pid; error_log {t}/error.log;\n"
                    "events {{}}\nhttp {{ access_log off; keepalive_requests 10000000;\n"
                    "  client_body_temp_path {t}; proxy_temp_path {t}; fastcgi_temp_path {t};\n"
                    "  uwsgi_temp_path {t}; scgi_temp_path {t};\n"
                    "  server {{ listen 127.0.0.1:{p}; location / {{ return 200 \"hello from origin\\n\"; }} }} }}\n"
                    .format(t=tmp, p=port))
        procs.append(subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", os.path.join(tmp, "nginx.conf")]))
        wait_port(port)
        url = "http://127.0.0.1:%d/" % port
        steady = subprocess.Popen(["taskset", "-c", "0", "/usr/bin/python3", STALL, "--stall", "0"],
                                  stdout=subprocess.PIPE, text=True)
        procs.append(steady)
        surl = "http://127.0.0.1:%d/" % int(steady.stdout.readline())
        tput = {}
        # nginx: as fast as a client can go; the Python origin: the server is
        # the limit, so both clients should see the same rate.
        for name, target, conns in (("nginx", url, 64), ("nginx", url, 1), ("python", surl, 4)):
            w, l = [], []
            for _ in range(a.rounds):
                w.append(run_wrk(conns, a.duration, target))
                l.append(run_load(["-c", str(conns)], a.duration, target))
            wm = statistics.median(x["rps"] for x in w)
            lm = statistics.median(x["rps"] for x in l)
            tput["%s c%d" % (name, conns)] = {
                "wrk_rps": [x["rps"] for x in w], "load_rps": [x["rps"] for x in l],
                "wrk_median": wm, "load_median": lm, "ratio": lm / wm,
                "wrk_cpu_us": statistics.median(x["cpu_us_per_request"] for x in w),
                "load_cpu_us": statistics.median(x["cpu_us_per_request"] for x in l)}
        result["throughput"] = tput

        stall = subprocess.Popen(["taskset", "-c", "0", "/usr/bin/python3", STALL], stdout=subprocess.PIPE, text=True)
        procs.append(stall)
        surl = "http://127.0.0.1:%d/" % int(stall.stdout.readline())
        secs = max(a.duration, 10)
        result["stall"] = {"duration_s": secs,
                           "wrk_c1": run_wrk(1, secs, surl),
                           "load_c1_r1000": run_load(["-c", "1", "-r", "1000"], secs, surl)}
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    stamp = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(a.out, exist_ok=True)
    base = os.path.join(a.out, "loadgen-validate-" + stamp)
    with open(base + ".json", "w") as f:
        json.dump(result, f, indent=1)
    md = ["# ringside-load against wrk, %s" % stamp, "",
          "rev %s, kernel %s, %d CPUs; origin on CPU 0, client on CPU 1; %d rounds of %d s, alternating." % (
              result["machine"]["rev"], result["machine"]["kernel"], result["machine"]["cpus"], a.rounds, a.duration),
          "", "## Throughput, closed loop (medians)", "",
          "| origin, connections | wrk req/s | ringside-load req/s | ratio | client CPU µs/req wrk | ringside-load "
          "| rounds wrk | rounds ringside-load |",
          "|---|---:|---:|---:|---:|---:|---|---|"]
    for k, t in result["throughput"].items():
        md.append("| %s | %.0f | %.0f | %.3f | %.2f | %.2f | %s | %s |" % (
            k, t["wrk_median"], t["load_median"], t["ratio"], t["wrk_cpu_us"], t["load_cpu_us"],
            ", ".join("%.0f" % x for x in t["wrk_rps"]), ", ".join("%.0f" % x for x in t["load_rps"])))
    s = result["stall"]
    wl, ll = s["wrk_c1"]["latency_us"], s["load_c1_r1000"]["latency_us"]
    md += ["", "## An origin stalling 100 ms once a second (%d s, one connection)" % s["duration_s"], "",
           "| client | p50 µs | p90 µs | p99 µs | max µs |", "|---|---:|---:|---:|---:|",
           "| wrk (closed loop, from each write) | %.0f | %.0f | %.0f | %.0f |" % (
               wl["p50"], wl["p90"], wl["p99"], wl["max"]),
           "| ringside-load -r 1000, corrected (from the due time) | %.0f | %.0f | %.0f | %.0f |" % (
               ll["corrected"]["p50"], ll["corrected"]["p90"], ll["corrected"]["p99"], ll["corrected"]["max"]),
           "| ringside-load -r 1000, uncorrected (from the write) | %.0f | %.0f | %.0f | %.0f |" % (
               ll["uncorrected"]["p50"], ll["uncorrected"]["p90"], ll["uncorrected"]["p99"],
               ll["uncorrected"]["max"]), ""]
    with open(base + ".md", "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    print("written: %s.{json,md}" % base)


if __name__ == "__main__":
    main()
