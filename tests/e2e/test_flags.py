"""Flags the proxy refuses: exit 2 with a message naming the flag, before
anything starts."""

import subprocess

import pytest

from conftest import RINGSIDE_BIN


@pytest.mark.parametrize("flag,value,says", [
    ("--tls-min-version", "1.1", "--tls-min-version: '1.1' is not 1.2 or 1.3"),
    ("--h2-stream-window", "100", "--h2-stream-window and --h2-connection-window at least 65535"),
    ("--h2-connection-window", "65534", "--h2-stream-window and --h2-connection-window at least 65535"),
    ("--h2-max-concurrent-streams", "0", "--h2-max-concurrent-streams must be at least 1"),
    ("--h2-stream-window", "2147483648", "--h2-stream-window"),
])
def test_bad_values_are_refused(tmp_path, flag, value, says):
    if not RINGSIDE_BIN:
        pytest.skip("RINGSIDE_BIN is not set")
    cfg = tmp_path / "empty.yaml"
    cfg.write_text("")
    p = subprocess.run([RINGSIDE_BIN, "proxy", "--config", str(cfg), flag, value, "--outbound-port", "0",
                        "--inbound-port", "0", "--admin-port", "0", "--stats-port", "0", "--health-port", "0"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert says in p.stderr, p.stderr
