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
