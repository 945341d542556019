"""Start-up probe: with io_uring blocked, as container runtimes block it with
seccomp, the proxy exits at once with a message that names io_uring, the
kernel version and what to do, and serves nothing."""
import errno
import os
import platform
import subprocess

import pytest


@pytest.mark.parametrize("err", [errno.EPERM, errno.ENOSYS])
def test_blocked_io_uring_is_a_clear_error(tmp_path, err):
    helper = os.environ.get("RINGSIDE_NO_IO_URING")
    if not helper:
        pytest.skip("RINGSIDE_NO_IO_URING not set: run through meson test")
    cfg = tmp_path / "empty.yaml"
    cfg.write_text("")
    p = subprocess.run(
        [helper, str(err), os.environ["RINGSIDE_BIN"], "proxy", "--config", str(cfg),
         "--outbound-port", "0", "--admin-port", "0", "--stats-port", "0", "--health-port", "0"],
        capture_output=True, text=True, timeout=10)
    assert p.returncode == 1, p.stderr
    msg = p.stderr
    assert "io_uring" in msg and "seccomp" in msg, msg
    assert platform.release() in msg, msg  # names the kernel version
    assert os.strerror(err) in msg, msg
