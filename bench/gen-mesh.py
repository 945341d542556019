#!/usr/bin/python3
"""Generates a mesh configuration for bench/config-scale.sh.

    bench/gen-mesh.py N OUTDIR [--seed S]

For each of N services: one ServiceEntry (STATIC, MESH_INTERNAL, 1-2 ports,
3 endpoints labelled version v1/v2/v3 at 10.x.y.z), one VirtualService
(2-4 HTTP routes: header, uri prefix and uri regex matches, weighted
destinations across subsets, timeouts, retries; the last route catches the
rest) and one DestinationRule (subsets v1..v3, a trafficPolicy with
connectionPool, outlierDetection and loadBalancer). Services are spread over
10 namespaces and named by their FQDN, so no short-name resolution is involved.

Files: groups of 100 services, one file per kind and group
(serviceentries-00.yaml, virtualservices-00.yaml, destinationrules-00.yaml,
...), except the last group, written as one multi-document file
(mixed-NN.yaml) with the three resources of each service together. The output
depends only on N, the seed and the Python version (random.Random's
choice, sample and shuffle may change between versions; the bench runs
Debian 12's /usr/bin/python3).

Prints one JSON line: counts of services, resources, files and bytes.
"""
import argparse
import json
import os
import random
import sys

GROUP = 100
NAMESPACES = 10


def host(i):
    return f"svc-{i:04d}.ns-{i % NAMESPACES:02d}.svc.cluster.local"


def service_entry(i, rnd):
    ns = f"ns-{i % NAMESPACES:02d}"
    two_ports = rnd.randrange(2) == 1
    ports = [(80, "http", "HTTP", 8080)]
    if two_ports:
        ports.append((9090, "grpc", "GRPC", 9090))
    out = [
        "apiVersion: networking.istio.io/v1beta1",
        "kind: ServiceEntry",
        "metadata:",
        f"  name: svc-{i:04d}",
        f"  namespace: {ns}",
        "spec:",
        "  hosts:",
        f"  - {host(i)}",
        "  location: MESH_INTERNAL",
        "  resolution: STATIC",
        "  ports:",
    ]
    for number, name, proto, _ in ports:
        out += [f"  - number: {number}", f"    name: {name}", f"    protocol: {proto}"]
    out.append("  endpoints:")
    for v in (1, 2, 3):
        # 10.x.y.z, distinct per endpoint: x, y from the service, z from the version.
        addr = f"10.{(i >> 8) & 0xFF}.{i & 0xFF}.{10 + v}"
        out += [f"  - address: {addr}", "    ports:"]
        for _, name, _, target in ports:
            out.append(f"      {name}: {target}")
        out += ["    labels:", f"      app: svc-{i:04d}", f"      version: v{v}"]
    return out, two_ports


def weights(rnd, n):
    """n weights summing to 100, each at least 5."""
    cuts = sorted(rnd.sample(range(1, 20), n - 1))
    parts = [b - a for a, b in zip([0] + cuts, cuts + [20])]
    return [5 * p for p in parts]


def route_block(i, rnd, two_ports, indent):
    pad = " " * indent
    subsets = ["v1", "v2", "v3"]
    n = rnd.choice((1, 2, 3))
    rnd.shuffle(subsets)
    chosen = subsets[:n]
    w = weights(rnd, n) if n > 1 else [100]
    out = [f"{pad}route:"]
    for s, wt in zip(chosen, w):
        out += [f"{pad}- destination:", f"{pad}    host: {host(i)}", f"{pad}    subset: {s}"]
        if two_ports:
            # A service with several ports needs the port named (Istio's rule).
            out += [f"{pad}    port:", f"{pad}      number: 80"]
        if n > 1:
            out.append(f"{pad}  weight: {wt}")
    out.append(f"{pad}timeout: {rnd.choice((1, 2, 5, 10, 15))}s")
    out += [
        f"{pad}retries:",
        f"{pad}  attempts: {rnd.choice((1, 2, 3))}",
        f"{pad}  perTryTimeout: {rnd.choice((250, 500, 1000))}ms",
        f"{pad}  retryOn: {rnd.choice(('5xx,connect-failure', 'gateway-error,reset', 'retriable-status-codes,503'))}",
    ]
    return out


def virtual_service(i, rnd, two_ports):
    ns = f"ns-{i % NAMESPACES:02d}"
    out = [
        "apiVersion: networking.istio.io/v1beta1",
        "kind: VirtualService",
        "metadata:",
        f"  name: svc-{i:04d}",
        f"  namespace: {ns}",
        "spec:",
        "  hosts:",
        f"  - {host(i)}",
        "  http:",
    ]
    nroutes = rnd.choice((2, 3, 4))
    kinds = ["header", "prefix", "regex"]
    rnd.shuffle(kinds)
    for r in range(nroutes - 1):
        kind = kinds[r % len(kinds)]
        out.append(f"  - name: r{r}-{kind}")
        out.append("    match:")
        if kind == "header":
            out += [
                "    - headers:",
                "        x-canary:",
                f"          exact: \"{rnd.choice(('true', 'yes', '1'))}\"",
                "        user-agent:",
                f"          prefix: {rnd.choice(('Mozilla', 'curl', 'grpc-go'))}",
            ]
        elif kind == "prefix":
            out += [
                "    - uri:",
                f"        prefix: /api/v{rnd.randrange(1, 4)}/svc{i}/",
                "      method:",
                f"        exact: {rnd.choice(('GET', 'POST'))}",
                "    - uri:",
                f"        prefix: /internal/svc{i}/",
            ]
        else:
            out += [
                "    - uri:",
                f"        regex: \"/items/[0-9]{{{rnd.randrange(1, 6)}}}(/detail)?\"",
            ]
        out += route_block(i, rnd, two_ports, 4)
    out.append("  - name: default")
    out += route_block(i, rnd, two_ports, 4)
    return out


def destination_rule(i, rnd):
    ns = f"ns-{i % NAMESPACES:02d}"
    lb = rnd.choice(("ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "hash"))
    out = [
        "apiVersion: networking.istio.io/v1beta1",
        "kind: DestinationRule",
        "metadata:",
        f"  name: svc-{i:04d}",
        f"  namespace: {ns}",
        "spec:",
        f"  host: {host(i)}",
        "  trafficPolicy:",
        "    loadBalancer:",
    ]
    if lb == "hash":
        out += ["      consistentHash:", "        httpHeaderName: x-user-id"]
    else:
        out.append(f"      simple: {lb}")
    out += [
        "    connectionPool:",
        "      tcp:",
        f"        maxConnections: {rnd.choice((64, 100, 256, 1024))}",
        f"        connectTimeout: {rnd.choice((100, 250, 500))}ms",
        "      http:",
        f"        http1MaxPendingRequests: {rnd.choice((32, 64, 1024))}",
        f"        maxRequestsPerConnection: {rnd.choice((0, 10, 100))}",
        f"        maxRetries: {rnd.choice((3, 10))}",
        "    outlierDetection:",
        f"      consecutive5xxErrors: {rnd.choice((3, 5, 7))}",
        f"      interval: {rnd.choice((5, 10, 30))}s",
        f"      baseEjectionTime: {rnd.choice((15, 30, 60))}s",
        f"      maxEjectionPercent: {rnd.choice((10, 50, 100))}",
        "  subsets:",
    ]
    for v in (1, 2, 3):
        out += [f"  - name: v{v}", "    labels:", f"      version: v{v}"]
        if v == 3:
            # One subset overrides the policy, as canaries often do.
            out += ["    trafficPolicy:", "      loadBalancer:", "        simple: ROUND_ROBIN"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, help="number of services")
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.n < 1:
        sys.exit("gen-mesh: N must be at least 1")
    rnd = random.Random(a.seed)
    os.makedirs(a.outdir, exist_ok=True)

    ngroups = (a.n + GROUP - 1) // GROUP
    files = {}
    for i in range(a.n):
        se, two_ports = service_entry(i, rnd)
        vs = virtual_service(i, rnd, two_ports)
        dr = destination_rule(i, rnd)
        g = i // GROUP
        if g == ngroups - 1:
            files.setdefault(f"mixed-{g:02d}.yaml", []).extend([se, vs, dr])
        else:
            files.setdefault(f"serviceentries-{g:02d}.yaml", []).append(se)
            files.setdefault(f"virtualservices-{g:02d}.yaml", []).append(vs)
            files.setdefault(f"destinationrules-{g:02d}.yaml", []).append(dr)

    total = 0
    for name, docs in sorted(files.items()):
        text = f"# generated by bench/gen-mesh.py {a.n} --seed {a.seed}\n"
        text += "".join("---\n" + "\n".join(d) + "\n" for d in docs)
        with open(os.path.join(a.outdir, name), "w") as f:
            f.write(text)
        total += len(text.encode())
    print(json.dumps({"services": a.n, "resources": 3 * a.n, "files": len(files),
                      "bytes": total, "seed": a.seed}))


if __name__ == "__main__":
    main()
