#!/usr/bin/python3
"""bench/compare_report.py: the report of a bench/compare.py run.

compare.py calls it to derive the added latencies and ratios, and to write
compare-<UTC>.json, the Markdown table and the gnuplot plots. Run on its own,
it writes the Markdown and the plots again from a result JSON:

    /usr/bin/python3 bench/compare_report.py bench/results/compare-<UTC>.json
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys

MARKS = ("p50", "p90", "p99", "p99.9")
PROTO_NAME = {"h1": "HTTP/1.1", "h2": "HTTP/2 (h2c client side)"}
# ringside against each peer, one hop and pairs; a ratio is a/b
COMPARISONS = [("ringside", "nginx"), ("ringside", "haproxy"),
               ("ringside-busypoll", "nginx"), ("ringside-busypoll", "haproxy"),
               ("ringside-pair", "nginx-pair"), ("ringside-pair", "haproxy-pair"),
               ("ringside-busypoll-pair", "nginx-pair"), ("ringside-busypoll-pair", "haproxy-pair"),
               ("ringside-mtls-pair", "nginx-mtls-pair"), ("ringside-mtls-pair", "haproxy-mtls-pair"),
               ("ringside-busypoll-mtls-pair", "nginx-mtls-pair"),
               ("ringside-busypoll-mtls-pair", "haproxy-mtls-pair"),
               ("ringside-busypoll-mtls-pair", "haproxy-busypoll-mtls-pair"),
               ("ringside-handshakes", "nginx-handshakes"), ("ringside-handshakes", "haproxy-handshakes")]
PEERS = ("nginx", "haproxy")
# one colour per proxy; a pair is the same colour dashed
STYLE = {"direct": ("#000000", 1), "ringside": ("#d62728", 1), "ringside-busypoll": ("#ff7f0e", 1),
         "nginx": ("#2ca02c", 1), "haproxy": ("#1f77b4", 1), "ringside-pair": ("#d62728", 2),
         "ringside-busypoll-pair": ("#ff7f0e", 2), "nginx-pair": ("#2ca02c", 2),
         "haproxy-pair": ("#1f77b4", 2), "ringside-mtls-pair": ("#d62728", 3),
         "ringside-busypoll-mtls-pair": ("#ff7f0e", 3), "nginx-mtls-pair": ("#2ca02c", 3),
         "haproxy-mtls-pair": ("#1f77b4", 3), "haproxy-busypoll-mtls-pair": ("#17becf", 3)}


# ---------------------------------------------------------------- derived numbers

def ok_rows(result, proto=None):
    return [r for r in result["rows"] if r["status"] == "ok" and proto in (None, r["proto"])]


def find_row(result, subject, proto):
    for r in result["rows"]:
        if r["subject"] == subject and r["proto"] == proto:
            return r
    return None


def find_point(row, rate, conns):
    for p in row.get("points", []) if row else []:
        if p["rate"] == rate and p["conns"] == conns:
            return p
    return None


def ratio(a, b, digits=2):
    if a is None or b is None or b <= 0 or a < 0:
        return None
    return round(a / b, digits)


def geomean(vals):
    vals = [v for v in vals if v]
    return round(math.exp(sum(math.log(v) for v in vals) / len(vals)), 2) if vals else None


def headline(result, proto):
    """The point the summary and the spectrum plot show: --spectrum-at when it
    was measured, else the middle one of direct's points."""
    load = result["load"]
    want = (load["spectrum_at"]["rate"],
            load["spectrum_at"]["conns"] if proto == "h1" else load["h2_conns"][0])
    direct = find_row(result, "direct", proto)
    pts = [(p["rate"], p["conns"]) for p in (direct or {}).get("points", [])]
    if not pts or want in pts:
        return want
    return pts[len(pts) // 2]


def derive(result):
    """Adds what is computed from the measurements: each point's latency over
    direct's at the same point, the headline points, and the ratios."""
    result["headline"] = {}
    for proto in sorted({r["proto"] for r in result["rows"]}):
        rate, conns = headline(result, proto)
        result["headline"][proto] = {"rate": rate, "conns": conns}
        direct = find_row(result, "direct", proto)
        for row in ok_rows(result, proto):
            if row["kind"] == "direct":
                continue
            for p in row["points"]:
                d = find_point(direct, p["rate"], p["conns"]) if direct and direct["status"] == "ok" else None
                p["added_us"] = ({k: round(p["latency_us"][k] - d["latency_us"][k], 1) for k in MARKS}
                                 if d else None)
    result["ratios"] = []
    for proto, hl in result["headline"].items():
        for a, b in COMPARISONS:
            ra, rb = find_row(result, a, proto), find_row(result, b, proto)
            if not (ra and rb and ra["status"] == rb["status"] == "ok"):
                continue
            entry = {"proto": proto, "a": a, "b": b, "at": hl}
            pa, pb = find_point(ra, hl["rate"], hl["conns"]), find_point(rb, hl["rate"], hl["conns"])
            for k in ("p50", "p99"):
                entry[f"added_{k}"] = (ratio(pa["added_us"][k], pb["added_us"][k])
                                       if pa and pb and pa.get("added_us") and pb.get("added_us") else None)
                pairs = [(x, find_point(rb, x["rate"], x["conns"])) for x in ra["points"]]
                entry[f"added_{k}_geomean_all_points"] = geomean(
                    ratio(x["added_us"][k], y["added_us"][k], 4) for x, y in pairs
                    if y and x.get("added_us") and y.get("added_us"))
            sa, sb = ra.get("saturation", {}), rb.get("saturation", {})
            entry["rps"] = ratio(sa.get("rps"), sb.get("rps"))
            entry["cpu_us_per_request"] = ratio(sa.get("cpu_us_per_request"), sb.get("cpu_us_per_request"))
            entry["rss_idle"] = ratio(ra.get("rss_idle_kib"), rb.get("rss_idle_kib"))
            entry["rss_load"] = ratio(ra.get("rss_load_kib"), rb.get("rss_load_kib"))
            result["ratios"].append(entry)
    for row in ok_rows(result):
        sat = row.get("saturation") or {}
        if row.get("handshakes") and sat.get("cpu_us_per_request"):
            sat["handshakes_per_core_s"] = round(1e6 / sat["cpu_us_per_request"])
    result["targets"] = targets(result)
    return result


def targets(result):
    """Issue 7's targets, read off this run: ringside's mTLS pair adds at most
    half the better peer's latency at p50 and no more at p99 (the headline
    point, HTTP/1.1), and its full handshakes per second per core are at
    least the better peer's. Each entry: what, ringside's value, the better
    peer's and which, their ratio, the bound, and whether it was met."""
    out = []

    def check(what, ours, peers, better, bound):
        peers = [(v, n) for v, n in peers if v is not None]
        if ours is None or not peers:
            return
        best, who = (min if better == "lower" else max)(peers)
        r = ratio(ours, best)
        # a ratio is None when the peer's number is not above 0 (an added
        # latency below direct's, noise): nothing can be said then
        met = None if r is None else (r <= bound if better == "lower" else r >= bound)
        out.append({"target": what, "ringside": ours, "peer": who, "peer_value": best, "ratio": r,
                    "bound": f"{'<=' if better == 'lower' else '>='} {bound:g}", "met": met})

    hl = result.get("headline", {}).get("h1")
    if hl:
        def added(subject, k):
            p = find_point(find_row(result, subject, "h1"), hl["rate"], hl["conns"])
            return (p.get("added_us") or {}).get(k) if p else None
        # by default, and with --busy-poll when that row was measured; the
        # peers in their default configuration
        for subject, how in (("ringside-mtls-pair", ""), ("ringside-busypoll-mtls-pair", ", ringside with --busy-poll")):
            for k, bound in (("p50", 0.5), ("p99", 1.0)):
                check(f"mTLS pair added {k} at {hl['rate']} req/s, c{hl['conns']}{how} (µs)",
                      added(subject, k), [(added(f"{n}-mtls-pair", k), n) for n in PEERS], "lower", bound)

    def per_core(subject):
        row = find_row(result, subject, "h1")
        return ((row or {}).get("saturation") or {}).get("handshakes_per_core_s") if row and row["status"] == "ok" else None
    check("full handshakes per second per core (1e6 / server CPU µs per handshake)",
          per_core("ringside-handshakes"), [(per_core(f"{n}-handshakes"), n) for n in PEERS], "higher", 1.0)
    return out


# ---------------------------------------------------------------- text and Markdown

def num(v, fmt="{:.0f}"):
    return "-" if v is None else fmt.format(v)


def mib(kib):
    return None if kib is None else kib / 1024


def summary_rows(result, proto):
    """(cells, flags) per subject of one protocol, for the summary tables."""
    hl = result["headline"][proto]
    out = []
    for row in result["rows"]:
        if row["proto"] != proto or row.get("handshakes"):
            continue
        if row["status"] != "ok":
            out.append(([row["subject"], str(row["hops"]), f"{row['status']}: {row['reason']}"], None))
            continue
        p = find_point(row, hl["rate"], hl["conns"])
        lat = p["latency_us"] if p else {}
        add = (p or {}).get("added_us") or {}
        sat = row.get("saturation", {})
        cells = [
            row["subject"], str(row["hops"]),
            f"{num(lat.get('p50'))} / {num(lat.get('p99'))}",
            " / ".join(num(add.get(k)) for k in MARKS) if row["kind"] != "direct" else "-",
            num(sat.get("rps")),
            num(sat.get("cpu_us_per_request"), "{:.2f}"),
            (f"{num(mib(row.get('rss_idle_kib')), '{:.1f}')} / {num(mib(row.get('rss_load_kib')), '{:.1f}')}"
             if row["kind"] != "direct" else "-"),
            f"{num(sat.get('load_cpu_busy_pct'))} / {num(sat.get('proxy_cpu_busy_pct'))}",
        ]
        out.append((cells, ", ".join(row["flags"]) or "-"))
    return out


def summary_header(result, proto):
    hl, pin = result["headline"][proto], result["pinning"]
    sat = (f"c{result['load']['sat_conns_h1']}" if proto == "h1"
           else f"c{hl['conns']}x{result['load']['h2_streams']}")
    return ["subject", "hops", f"p50 / p99 µs at {hl['rate']} req/s, c{hl['conns']}",
            "added p50 / p90 / p99 / p99.9 µs", f"req/s at saturation ({sat})", "proxy CPU µs/req",
            "RSS idle / load MiB", f"CPU{pin['origin_cpu']} / CPU{pin['proxy_cpu']} busy % (saturation)",
            "flags"]


def ratio_lines(result, proto):
    out = []
    for e in result["ratios"]:
        if e["proto"] != proto:
            continue
        out.append([f"{e['a']} / {e['b']}", num(e["added_p50"], "{:.2f}"), num(e["added_p99"], "{:.2f}"),
                    num(e["added_p50_geomean_all_points"], "{:.2f}"),
                    num(e["added_p99_geomean_all_points"], "{:.2f}"),
                    num(e["rps"], "{:.2f}"), num(e["cpu_us_per_request"], "{:.2f}"),
                    num(e["rss_idle"], "{:.2f}"), num(e["rss_load"], "{:.2f}")])
    return out


def handshake_rows(result):
    """One row per handshake subject: the server alone, a new mutual-TLS
    connection per request, closed loop."""
    out = []
    for row in result["rows"]:
        if not row.get("handshakes"):
            continue
        if row["status"] != "ok":
            out.append([row["subject"], f"{row['status']}: {row['reason']}"])
            continue
        sat = row.get("saturation", {})
        out.append([row["subject"], num(sat.get("conns")), num(sat.get("rps")),
                    num(sat.get("cpu_us_per_request"), "{:.1f}"), num(sat.get("handshakes_per_core_s")),
                    f"{num(sat.get('load_cpu_busy_pct'))} / {num(sat.get('proxy_cpu_busy_pct'))}",
                    f"{num(sat.get('latency_us', {}).get('p50'))} / {num(sat.get('latency_us', {}).get('p99'))}",
                    f"{num(mib(row.get('rss_idle_kib')), '{:.1f}')} / {num(mib(row.get('rss_load_kib')), '{:.1f}')}",
                    ", ".join(row["flags"]) or "-"])
    return out


def handshake_header(result):
    pin = result["pinning"]
    return ["server", "conns", "handshakes/s", "server CPU µs/handshake", "handshakes/s per core",
            f"CPU{pin['origin_cpu']} / CPU{pin['proxy_cpu']} busy %", "p50 / p99 µs", "RSS idle / load MiB",
            "flags"]


def target_rows(result):
    return [[t["target"], num(t["ringside"]), f"{num(t['peer_value'])} ({t['peer']})", num(t["ratio"], "{:.2f}"),
             t["bound"], {True: "met", False: "not met", None: "n/a"}[t["met"]]]
            for t in result.get("targets", [])]


TARGET_HEADER = ["issue 7 target", "ringside", "better peer", "ratio", "wanted", "result"]


RATIO_HEADER = ["ratio", "added p50 (headline)", "added p99 (headline)", "added p50 (geomean, all points)",
                "added p99 (geomean, all points)", "req/s", "CPU µs/req", "RSS idle", "RSS load"]


def md_table(header, rows, right_from=1):
    """Columns from right_from on are numbers (right-aligned), but for a last
    'flags' column."""
    left = lambda i: i < right_from or header[i] == "flags"  # noqa: E731
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if left(i) else "---:" for i in range(len(header))) + "|"]
    for r in rows:
        cells = list(r) + [""] * (len(header) - len(r))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def markdown(result, plots):
    m, v, load, pin = result["machine"], result["versions"], result["load"], result["pinning"]
    out = [f"# ringside side by side with nginx and HAProxy: {result['date']}", "",
           f"- machine: `{m['hostname']}`, kernel `{m['kernel']}`, nproc {m['nproc']}, CPU `{m['cpu_model']}`",
           f"- versions: nginx {v['nginx']}, HAProxy {v['haproxy']}, {v['ringside']} (rev `{v['ringside_git']}`), "
           f"load generator {v['loadgen']}",
           f"- pinning: proxies (every process of a pair) on CPU {pin['proxy_cpu']}; the origin (nginx, 1 worker) "
           f"and ringside-load on CPU {pin['origin_cpu']}",
           f"- background busy before the run (1 s): CPU {pin['origin_cpu']} "
           f"{result['background_busy_pct']['load_cpu']}%, CPU {pin['proxy_cpu']} "
           f"{result['background_busy_pct']['proxy_cpu']}%",
           f"- load: open loop at {', '.join(map(str, load['rates']))} req/s over "
           f"{', '.join(map(str, load['h1_conns']))} HTTP/1.1 connections and "
           f"{', '.join(map(str, load['h2_conns']))} HTTP/2 connections x {load['h2_streams']} streams, "
           f"{load['warmup_s']:g} s warm-up + {load['duration_s']:g} s measured each; saturation closed loop, "
           f"{load['sat_duration_s']:g} s; latency counted from each request's due time (corrected); "
           f"`Host: {load['host_header']}`, an 18-byte body",
           f"- command: `{result['command']}` ({result['elapsed_s']:.0f} s)", ""]
    hs = handshake_rows(result)
    if hs:
        out += ["## Full TLS handshakes", "",
                "Each server alone as the mTLS pair's B (mutual TLS in, the origin behind it), and "
                f"ringside-load as its client over {load.get('handshake_conns', '-')} connections, closed loop, "
                "with `--per-conn 1` (a new connection, so a full TLS 1.3 handshake with a client "
                "certificate, per request; the load generator never resumes, though every server gives "
                "tickets) and `-k` (the client skips verifying the server, which costs only the client). "
                "Server CPU µs per handshake is the server's utime+stime over the run divided by the "
                "requests; handshakes/s per core is 1e6 over it. When CPU "
                f"{pin['origin_cpu']} (the load generator) is near 100% and CPU {pin['proxy_cpu']} is not, "
                "the handshakes/s column is the client's limit, not the server's.", ""]
        out += md_table(handshake_header(result), hs) + [""]
    if result.get("targets"):
        out += ["## Issue 7's targets", ""] + md_table(TARGET_HEADER, target_rows(result)) + [""]
    for proto in result["headline"]:
        hl = result["headline"][proto]
        out += [f"## {PROTO_NAME[proto]}", "",
                f"Headline point: {hl['rate']} req/s over {hl['conns']} connection(s). Added = the subject's "
                "percentile minus direct's at the same point (a pair adds two hops).", ""]
        rows = [cells + [flags] if flags is not None else cells for cells, flags in summary_rows(result, proto)]
        out += md_table(summary_header(result, proto), rows, right_from=1) + [""]
        rl = ratio_lines(result, proto)
        if rl:
            out += ["Ratios (below 1 is better for ringside, except req/s):", ""]
            out += md_table(RATIO_HEADER, rl) + [""]
        for name in plots:
            if name.endswith(f"-{proto}.png"):
                out += [f"![{name}]({name})", ""]
    out += ["## Every point", "",
            "Corrected latency (µs) at each rate and connection count; added is over direct at the same "
            "point. `lag p99` is the load generator's own delay in sending (part of the corrected "
            "latency). `proxy CPU %` is the proxies' CPU time over the run (warm-up included) as a "
            "share of one core.", ""]
    header = ["subject", "proto", "req/s", "conns", "achieved", "p50", "p90", "p99", "p99.9",
              "added p50", "added p90", "added p99", "added p99.9", "lag p99", "proxy CPU %", "flags"]
    rows = []
    for row in ok_rows(result):
        for p in row["points"]:
            add = p.get("added_us") or {}
            rows.append([row["subject"], row["proto"], str(p["rate"]), str(p["conns"]), num(p["achieved_rps"])]
                        + [num(p["latency_us"][k]) for k in MARKS] + [num(add.get(k)) for k in MARKS]
                        + [num(p["send_lag_us"]["p99"]), num(p.get("proxy_cpu_pct")),
                           "; ".join(p["flags"]) or "-"])
    out += md_table(header, rows, right_from=2) + [""]
    left = {(p["rate"], p["conns"], p["reason"]) for r in result["rows"] for p in r.get("points_left_out", [])}
    if left:
        out += ["Points not measured: " + "; ".join(f"{r} req/s over {c} connection(s): {why}"
                                                     for r, c, why in sorted(left)), ""]
    out += ["## Processes", "", "As started for HTTP/1.1 (`<run>` is the run's temporary directory; nginx and "
            "HAProxy render bench/nginx-proxy.conf and bench/haproxy.cfg there, with bench/nginx-mtls-*.conf and "
            "bench/haproxy-mtls-*.txt for the mTLS hops; `<pki>` is the run's certificates). The HTTP/2 rows "
            "start the same, the client's hop listening with `http2` (nginx) or `proto h2` (HAProxy).", ""]
    for row in result["rows"]:
        for p in row.get("processes", []) if row["proto"] == "h1" else []:
            cmd = re.sub(r"/tmp/ringside-compare\.[^/ ]+", "<run>", p["command"])
            out.append(f"- {p['name']}: `{cmd}` (CPU {p['cpu']})")
    if result["notes"]:
        out += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(out) + "\n"


def summary_text(result):
    """The summary tables as plain text for the terminal."""
    out = [f"ringside side by side, {result['date']}, rev {result['versions']['ringside_git']}"]
    for proto in result["headline"]:
        out += ["", PROTO_NAME[proto]]
        header = summary_header(result, proto)
        rows = [cells + [flags] if flags is not None else cells for cells, flags in summary_rows(result, proto)]
        widths = [max(len(header[i]), *(len(r[i]) for r in rows if len(r) > 3)) for i in range(len(header))]
        out.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for r in rows:
            out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        for r in ratio_lines(result, proto):
            out.append(f"  {r[0]}: added p50 {r[1]}, added p99 {r[2]}, req/s {r[5]}, CPU/req {r[6]}, "
                       f"RSS load {r[8]}")
    hs = handshake_rows(result)
    if hs:
        out += ["", "Full TLS handshakes (server alone, --per-conn 1)"]
        out += ["  " + "  ".join(r) for r in [handshake_header(result)] + hs]
    for t in target_rows(result):
        out.append(f"issue 7: {t[0]}: ringside {t[1]}, {t[2]}, ratio {t[3]} (wanted {t[4]}): {t[5]}")
    for n in result["notes"]:
        out.append(f"note: {n}")
    return "\n".join(out)


# ---------------------------------------------------------------- plots

def gp_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def datablock(name, lines):
    return [f"${name} << EOD"] + lines + ["EOD"]


def plot_line(block, subject, using="1:2"):
    colour, dash = STYLE.get(subject, ("#7f7f7f", 1))
    return (f"${block} using {using} with linespoints lw 2 pt 7 ps 0.6 lc rgb {gp_str(colour)} "
            f"dt {dash} title {gp_str(subject)}")


def plot_title(result, proto, what):
    """The title, and under it the subjects the plot lacks and why."""
    lines = [f"{what}, {PROTO_NAME[proto]} ({result['date']}, rev {result['versions']['ringside_git']})"]
    gone = {}
    for r in result["rows"]:
        if r["proto"] == proto and r["status"] != "ok":
            gone.setdefault(f"{r['status']}: {r['reason'].split(';')[0]}", []).append(r["subject"])
    lines += [f"{', '.join(names)}: {why}" for why, names in gone.items()]
    return gp_str("\n".join(lines)) + " noenhanced"


def spectrum_script(result, proto, png, terminal):
    hl = result["headline"][proto]
    script, plots = [], []
    for i, row in enumerate(ok_rows(result, proto)):
        p = find_point(row, hl["rate"], hl["conns"])
        if not p:
            continue
        # x = 1 / (1 - percentile): 50% -> 2, 99% -> 100; the max (100%) has no place there
        pts = [f"{1 / (1 - q / 100):.6g} {v}" for q, v in p["spectrum"] if q < 100 and v > 0]
        script += datablock(f"s{i}", pts)
        plots.append(plot_line(f"s{i}", row["subject"]))
    if not plots:
        return None
    title = plot_title(result, proto, f"Latency by percentile at {hl['rate']} req/s over {hl['conns']} "
                       "connection(s), open loop, corrected")
    return script + [
        f"set terminal {terminal} size 1100,650", f"set output {gp_str(png)}",
        f"set title {title}", "set logscale xy", "set grid xtics ytics mytics",
        'set xtics ("0%%" 1, "50%%" 2, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000)',
        "set xlabel 'percentile'", "set ylabel 'latency (µs)'", "set key left top noenhanced",
        "plot " + ", \\\n     ".join(plots)]


def added_script(result, proto, png, terminal):
    hl = result["headline"][proto]
    script, panels = [], {"p50": [], "p99": []}
    rates = set()
    for i, row in enumerate(ok_rows(result, proto)):
        if row["kind"] == "direct":
            continue
        pts = sorted((p["rate"], p["added_us"]) for p in row["points"]
                     if p["conns"] == hl["conns"] and p.get("added_us"))
        if not pts:
            continue
        rates.update(r for r, _ in pts)
        script += datablock(f"a{i}", [f"{r} {a['p50']} {a['p99']}" for r, a in pts])
        panels["p50"].append(plot_line(f"a{i}", row["subject"], "1:2"))
        panels["p99"].append(plot_line(f"a{i}", row["subject"], "1:3"))
    if not rates:
        return None
    lo, hi = min(rates), max(rates)
    pad = (hi - lo) * 0.08 or lo * 0.5
    script += [f"set terminal {terminal} size 1300,560", f"set output {gp_str(png)}",
               "set multiplot layout 1,2 title " + plot_title(
                   result, proto, f"Latency added over direct against request rate, {hl['conns']} "
                   "connection(s), open loop, corrected"),
               "set grid", "set xzeroaxis lt -1", f"set xrange [{lo - pad}:{hi + pad}]",
               "set xtics (" + ", ".join(f'"{r}" {r}' for r in sorted(rates)) + ")",
               "set xlabel 'requests per second'", "set key left top noenhanced"]
    for k in ("p50", "p99"):
        script += [f"set title 'added {k}'", "set ylabel 'µs'",
                   "plot " + ", \\\n     ".join(panels[k])]
    return script + ["unset multiplot"]


def gnuplot_terminal():
    for term in ("pngcairo font 'DejaVu Sans,10'", "png"):
        r = subprocess.run(["gnuplot", "-e", f"set terminal {term}"], capture_output=True, timeout=10)
        if r.returncode == 0 and not r.stderr:
            return term
    return None


def write_plots(result, outdir):
    """PNG plots beside the results; notes why when there are none."""
    if not shutil.which("gnuplot"):
        result["notes"].append("no plots: gnuplot is not installed (tools/deps.sh bench installs gnuplot-nox)")
        return []
    term = gnuplot_terminal()
    if not term:
        result["notes"].append("no plots: gnuplot has neither the pngcairo nor the png terminal")
        return []
    written = []
    for proto in result["headline"]:
        for kind, make in (("spectrum", spectrum_script), ("added", added_script)):
            png = os.path.join(outdir, f"compare-{result['stamp']}-{kind}-{proto}.png")
            script = make(result, proto, png, term)
            if not script:
                continue
            r = subprocess.run(["gnuplot"], input="\n".join(script) + "\n", capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0 or not os.path.exists(png):
                result["notes"].append(f"gnuplot failed on {os.path.basename(png)}: {r.stderr.strip()[:300]}")
            else:
                written.append(png)
    return written


def write(result, outdir, plots=True):
    """Writes the plots, then the Markdown and the JSON (whose notes say what
    the plots did). Returns the paths written."""
    base = os.path.join(outdir, f"compare-{result['stamp']}")
    pngs = write_plots(result, outdir) if plots else []
    with open(base + ".md", "w") as f:
        f.write(markdown(result, [os.path.basename(p) for p in pngs]))
    with open(base + ".json", "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    return [base + ".json", base + ".md"] + pngs


def main(argv):
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        result = json.load(f)
    result["notes"] = [n for n in result["notes"] if not n.startswith(("no plots", "gnuplot failed"))]
    derive(result)
    for p in write(result, os.path.dirname(os.path.abspath(argv[0]))):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
