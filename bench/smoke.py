#!/usr/bin/python3
"""bench-smoke, a meson test (suite 'bench'): `bench/compare.py --quick` must
write a report in which every subject, in both protocols (the handshake runs:
HTTP/1.1 only), has numbers, every response was 2xx and no request failed.
Timing is never asserted: a noisy 2-core VM only makes the numbers worse, not
missing. ringside's HTTP/2 rows are measured like the others: a ringside that
answers the h2c preface as HTTP/1.1 (built before issue 6) fails it.

Skips (exit 77) when nginx or HAProxy is not installed (tools/deps.sh bench).
RINGSIDE_BIN and RINGSIDE_LOAD_BIN name the binaries (meson sets both)."""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
from compare import SUBJECTS  # noqa: E402


def check_point(where, p, problems):
    if p["completed"] <= 0:
        problems.append(f"{where}: no responses")
    if p["errors"]["total"]:
        problems.append(f"{where}: errors {p['errors']}")
    if p["status"]["2xx"] != p["completed"]:
        problems.append(f"{where}: {p['completed'] - p['status']['2xx']} responses not 2xx")


def check(result, subjects):
    problems, notes = [], []
    rows = {(r["subject"], r["proto"]): r for r in result["rows"]}
    for proto in ("h1", "h2"):
        for name in subjects:
            where = f"{name} {proto}"
            if SUBJECTS[name].handshakes and proto != "h1":
                continue  # one connection per request: HTTP/1.1 only
            row = rows.get((name, proto))
            if row is None:
                problems.append(f"{where}: no row in the report")
                continue
            if row["status"] != "ok":
                problems.append(f"{where}: {row['status']}: {row.get('reason')}")
                continue
            if not row["points"] and not SUBJECTS[name].handshakes:
                problems.append(f"{where}: no latency points")
            for p in row["points"]:
                pw = f"{where} at {p['rate']} req/s, c{p['conns']}"
                check_point(pw, p, problems)
                if not p["latency_us"]["p50"] > 0:
                    problems.append(f"{pw}: no latency")
                if row["kind"] != "direct" and not p.get("added_us"):
                    problems.append(f"{pw}: no added latency over direct")
                notes += [f"{pw}: {f}" for f in p["flags"] if f.startswith("backlog")]
            sat = row.get("saturation")
            if not sat:
                problems.append(f"{where}: no saturation run")
                continue
            check_point(f"{where} saturation", sat, problems)
            if not sat["rps"] > 0:
                problems.append(f"{where}: no requests/s at saturation")
            if row["kind"] != "direct":
                for key, val in (("CPU µs per request", sat.get("cpu_us_per_request")),
                                 ("RSS idle", row.get("rss_idle_kib")), ("RSS under load", row.get("rss_load_kib"))):
                    if not (val and val > 0):
                        problems.append(f"{where}: no {key}")
    return problems, notes


def main():
    missing = [t for t in ("nginx", "haproxy", "taskset") if not shutil.which(t)]
    if missing:
        print(f"SKIP: {', '.join(missing)} not installed (tools/deps.sh bench installs the bench's peers)")
        return 77
    with tempfile.TemporaryDirectory(prefix="ringside-bench-smoke.") as out:
        cmd = [sys.executable, os.path.join(BENCH, "compare.py"), "--quick", "--results-dir", out]
        print("running:", " ".join(cmd), flush=True)
        try:
            rc = subprocess.run(cmd, timeout=300).returncode
        except subprocess.TimeoutExpired:
            print("FAIL: compare.py --quick did not finish in 300 s")
            return 1
        if rc != 0:
            print(f"FAIL: compare.py --quick exited {rc}")
            return 1
        found = glob.glob(os.path.join(out, "compare-*.json"))
        if len(found) != 1 or not os.path.exists(found[0][:-5] + ".md"):
            print(f"FAIL: want one compare-*.json and its .md, found {os.listdir(out)}")
            return 1
        with open(found[0]) as f:
            result = json.load(f)
        subjects = [s.name for s in SUBJECTS.values() if s.default]
        problems, notes = check(result, subjects)
        if shutil.which("gnuplot") and not glob.glob(os.path.join(out, "compare-*-spectrum-h1.png")):
            problems.append(f"gnuplot is installed but no plot was written; notes: {result['notes']}")
    for n in notes:
        print(f"note: {n}")
    for p in problems:
        print(f"FAIL: {p}")
    rows = sum(1 if SUBJECTS[n].handshakes else 2 for n in subjects)
    print(f"bench-smoke: {rows} rows checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
