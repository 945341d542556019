"""`ringside validate PATH...`: what an operator sees before applying YAML."""
import os
import subprocess

import pytest

BIN = os.environ.get("RINGSIDE_BIN")
MISSION = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "mission-config")


def validate(*paths):
    if not BIN:
        pytest.skip("RINGSIDE_BIN is not set")
    return subprocess.run([BIN, "validate", *paths], capture_output=True, text=True, timeout=20)


def test_mission_examples_validate_clean():
    if not os.path.isdir(MISSION):
        pytest.skip("no shared/mission-config beside the repository")
    p = validate(MISSION)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout == "", p.stdout


def test_errors_name_file_line_column_and_resource(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: networking.istio.io/v1\n"
        "kind: VirtualService\n"
        "metadata: {name: split, namespace: shop}\n"
        "spec:\n"
        "  hosts: [api]\n"
        "  http:\n"
        "  - route:\n"
        "    - destination: {host: api, subset: v1}\n"
        "      weight: 90\n"
        "    - destination: {host: api, subset: v2}\n"
        "      weight: 20\n")
    p = validate(str(bad))
    assert p.returncode == 1, p.stdout
    first = p.stdout.splitlines()[0]
    assert first.startswith("%s:" % bad), first
    assert "VirtualService/shop/split: error:" in first, first
    assert "100" in first, first  # the weights must sum to 100


def test_warnings_only_exit_zero(tmp_path):
    w = tmp_path / "w.yaml"
    w.write_text(
        "apiVersion: networking.istio.io/v1\n"
        "kind: ServiceEntry\n"
        "metadata: {name: ext}\n"
        "spec:\n"
        "  hosts: [ext.example.com]\n"
        "  ports: [{number: 443, name: tls, protocol: TLS}]\n"
        "  resolution: DNS\n"
        "  colour: blue\n")
    p = validate(str(w))
    assert p.returncode == 0, p.stdout
    assert "warning:" in p.stdout and "colour" in p.stdout, p.stdout


def test_missing_path_is_an_error(tmp_path):
    p = validate(str(tmp_path / "nope.yaml"))
    assert p.returncode == 1
    assert "nope.yaml" in p.stdout + p.stderr


def test_each_mission_file_validates_alone():
    if not os.path.isdir(MISSION):
        pytest.skip("no shared/mission-config beside the repository")
    for name in sorted(os.listdir(MISSION)):
        if name.endswith(".yaml"):
            p = validate(os.path.join(MISSION, name))
            assert (p.returncode, p.stdout) == (0, ""), name + ": " + p.stdout + p.stderr


def test_subset_no_destination_rule_defines(tmp_path):
    vs = tmp_path / "vs.yaml"
    vs.write_text(
        "apiVersion: networking.istio.io/v1\n"
        "kind: VirtualService\n"
        "metadata: {name: reviews}\n"
        "spec:\n"
        "  hosts: [reviews]\n"
        "  http:\n"
        "  - route:\n"
        "    - destination: {host: reviews, subset: v3}\n")
    dr = tmp_path / "dr.yaml"
    dr.write_text(
        "apiVersion: networking.istio.io/v1\n"
        "kind: DestinationRule\n"
        "metadata: {name: reviews}\n"
        "spec:\n"
        "  host: reviews\n"
        "  subsets: [{name: v1, labels: {version: v1}}]\n")
    # Alone, the VirtualService's DestinationRule may live elsewhere.
    p = validate(str(vs))
    assert (p.returncode, p.stdout) == (0, ""), p.stdout
    p = validate(str(vs), str(dr))
    assert p.returncode == 1, p.stdout
    assert p.stdout == (
        "%s:8:44: VirtualService/default/reviews: error: "
        "spec.http[0].route[0].destination.subset: subset 'v3' is not defined by any "
        "DestinationRule for host reviews.default.svc.cluster.local\n" % vs), p.stdout


def test_authorization_value_never_matches(tmp_path):
    ap = tmp_path / "ap.yaml"
    ap.write_text(
        "apiVersion: security.istio.io/v1\n"
        "kind: AuthorizationPolicy\n"
        "metadata: {name: ap, namespace: shop}\n"
        "spec:\n"
        "  rules:\n"
        "  - from:\n"
        "    - source: {namespaces: [x], notNamespaces: [x]}\n")
    p = validate(str(ap))
    assert p.returncode == 0, p.stdout
    assert p.stdout == (
        "%s:7:29: AuthorizationPolicy/shop/ap: warning: "
        "spec.rules[0].from[0].source.namespaces[0]: can never match: "
        "'x' is both in namespaces and notNamespaces\n" % ap), p.stdout


def test_version_names_the_wolfssl_linked():
    if not BIN:
        pytest.skip("RINGSIDE_BIN is not set")
    p = subprocess.run([BIN, "version"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert lines[0].startswith("ringside ")
    assert lines[1].startswith("wolfSSL: ") and ("AES-NI" in lines[1] or "Debian's libwolfssl" in lines[1])
