"""tools/flamegraph.py: folding captured `perf script` output and the SVG drawn from it."""

import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "flamegraph.py"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "perf-script.txt"
SVG_NS = "{http://www.w3.org/2000/svg}"

spec = importlib.util.spec_from_file_location("flamegraph", SCRIPT)
fg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fg)

SHARD = "ringside;clone3;start_thread;shard_main;rs_worker_main;rs_loop_run"
# What `fold` must make of the fixture: offsets gone (the two samples in rs_loop_run
# itself merge), kernel frames marked, liburing's unnamed frame named after it, the
# frame-pointer sample's broken walk kept as [unknown] frames under the thread.
EXPECTED_FOLDED = (
    "ringside;[unknown];[unknown];[liburing.so.2.3];entry_SYSCALL_64_after_hwframe_[k];"
    "do_syscall_64_[k];__do_sys_io_uring_enter_[k];io_submit_sqes_[k];io_sendmsg_setup_[k] 1\n"
    f"{SHARD} 2\n"
    f"{SHARD};io_uring_submit_and_wait_timeout;[liburing.so.2.3];"
    "entry_SYSCALL_64_after_hwframe_[k];do_syscall_64_[k];__do_sys_io_uring_enter_[k];"
    "io_submit_sqes_[k];io_issue_sqe_[k];__io_issue_sqe_[k];io_sendmsg_[k];"
    "__sys_sendmsg_sock_[k];____sys_sendmsg_[k];tcp_sendmsg_[k];tcp_sendmsg_locked_[k];"
    "__tcp_push_pending_frames_[k];tcp_write_xmit_[k];tcp_schedule_loss_probe.part.0_[k];"
    "sk_reset_timer_[k];__mod_timer_[k] 1\n"
    f"{SHARD};on_recv;drive;llhttp__internal_execute;llhttp__internal__run;"
    "on_headers_complete;rs_proxy__stream_request_head;rs_msg_find 1\n"
    f"{SHARD};rs_now_ns;__GI___clock_gettime 1\n"
)


def run(*args, stdin=None):
    r = subprocess.run(
        [sys.executable, str(SCRIPT), *args], input=stdin, capture_output=True, text=True, check=True
    )
    return r.stdout


def frames(svg_text):
    """(name shown in the tooltip, samples, x, y, width) of every frame in the SVG."""
    out = []
    for g in ET.fromstring(svg_text).iter(SVG_NS + "g"):
        title = g.find(SVG_NS + "title").text
        rect = g.find(SVG_NS + "rect")
        name, _, rest = title.rpartition(": ")
        out.append(
            (
                name,
                int(rest.split()[0]),
                float(rect.get("x")),
                float(rect.get("y")),
                float(rect.get("width")),
            )
        )
    return out


def test_fold_captured_perf_script():
    assert run("fold", str(FIXTURE)) == EXPECTED_FOLDED


def test_fold_reads_stdin_and_skips_samples_without_header():
    text = "\tffff stray+0x1 (x)\n\n" + FIXTURE.read_text()
    assert run("fold", stdin=text) == EXPECTED_FOLDED


def test_fold_sample_without_callchain_counts_as_its_thread():
    assert fg.fold(["ringside 1 2.000: 1 cpu-clock:\n", "\n"]) == {("ringside",): 1}


def test_svg_is_wellformed_with_frames_and_widths():
    svg = run("svg", "--title", "ringside <test> & co", stdin=EXPECTED_FOLDED)
    root = ET.fromstring(svg)
    assert root.tag == SVG_NS + "svg"
    assert "ringside <test> & co" in "".join(root.itertext())
    got = frames(svg)
    by_name = {}
    for f in got:
        by_name.setdefault(f[0], []).append(f)
    total = 6
    full = fg.WIDTH - 2 * fg.PAD
    (all_,) = by_name["all"]
    assert all_[1:3] == (total, fg.PAD) and all_[4] == pytest.approx(full)
    # every frame: width proportional to its samples
    for name, n, _x, _y, w in got:
        assert w == pytest.approx(full * n / total, abs=0.01), name
    # the names a reader looks for, kernel ones shown without their marker
    for name, counts in {
        "ringside": [6],
        "rs_loop_run": [5],
        "on_recv": [1],
        "llhttp__internal__run": [1],
        "io_uring_submit_and_wait_timeout": [1],
        "__do_sys_io_uring_enter (kernel)": [1, 1],
        "[liburing.so.2.3]": [1, 1],
    }.items():
        assert sorted(f[1] for f in by_name[name]) == counts, name
    # a callee sits right on top of its caller, inside its caller's span
    (loop,) = by_name["rs_loop_run"]
    (recv,) = by_name["on_recv"]
    assert recv[3] == loop[3] - fg.FRAME_H
    assert loop[2] <= recv[2] and recv[2] + recv[4] <= loop[2] + loop[4] + 1e-6


def test_svg_labels_fit_their_frames_and_names_are_escaped():
    folded = "a;std::vector<int>::operator&;%s 1\na;b 999\n" % ("x" * 300)
    root = ET.fromstring(run("svg", stdin=folded))
    texts = {}
    for g in root.iter(SVG_NS + "g"):
        name = g.find(SVG_NS + "title").text.rpartition(": ")[0]
        t = g.find(SVG_NS + "text")
        texts[name] = None if t is None else t.text
        if t is not None:
            width = float(g.find(SVG_NS + "rect").get("width"))
            assert len(t.text) * fg.CHAR_W <= width
    assert texts["a"] == "a" and texts["b"] == "b"
    # one sample in a thousand is 1.2 px: a tooltip, no label
    assert texts["std::vector<int>::operator&"] is None


def test_svg_long_name_is_shortened():
    root = ET.fromstring(run("svg", stdin="%s 1\n" % ("y" * 300)))
    labels = [t.text for t in root.iter(SVG_NS + "text") if t.text and t.text.startswith("y")]
    assert len(labels) == 1 and labels[0].endswith("..") and len(labels[0]) < 300


def test_svg_rejects_lines_that_are_not_folded():
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "svg"], input="no count here\n", capture_output=True, text=True
    )
    assert r.returncode != 0 and "not a folded stack line" in r.stderr


def test_svg_user_only_leaves_out_kernel_samples():
    got = frames(run("svg", "--user-only", stdin=EXPECTED_FOLDED))
    names = {f[0] for f in got}
    assert not any(n.endswith("(kernel)") for n in names)
    assert "[liburing.so.2.3]" not in names  # only ever seen under a kernel leaf here
    # the four samples in user space share the full width
    (root,) = [f for f in got if f[0] == "all"]
    (parse,) = [f for f in got if f[0] == "llhttp__internal__run"]
    assert root[1] == 4 and parse[4] == pytest.approx((fg.WIDTH - 2 * fg.PAD) / 4, abs=0.01)
