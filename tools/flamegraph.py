#!/usr/bin/python3
"""Flame graphs from `perf script` output, with Python's standard library only.

    perf script -i perf.data | tools/flamegraph.py fold > stacks.folded
    tools/flamegraph.py svg --title TITLE stacks.folded > flame.svg

`fold` reads `perf script`'s default text (a header line per sample, then one
frame a line, leaf first, a blank line after each sample) and writes the
"folded" format of Brendan Gregg's stackcollapse-perf.pl: one line per distinct
stack, root first, frames joined by ';', a space, the number of samples.
Offsets are dropped so that samples in the same function merge; kernel frames
get the suffix `_[k]`; a frame perf could not name is named after its DSO
(`[liburing.so.2.3]`) rather than `[unknown]`.

`svg` draws the folded stacks as a flame graph: one rectangle per frame, its
width proportional to the samples under it, callers below callees, siblings in
alphabetical order, each with a `<title>` tooltip (name, samples, share).
Colours: red for user space, orange for the kernel, grey for frames without a
symbol. `--user-only` leaves out the samples taken in the kernel, so that the
proxy's own code (llhttp, routing, header work) fills the width.

Why a script of our own: Debian 12 packages no flame-graph renderer, and the
npm packages that read `perf script` output are unmaintained; `flamegraph` 1.3.0
writes SVG that is not well-formed XML, `stackvis` 0.5.0 pulls in 150 packages
and keeps offsets in frame names (perf/README.md has the details).
"""

import argparse
import os
import re
import sys
import zlib
from xml.sax.saxutils import escape

# A frame line: address, symbol (may hold spaces, C++), DSO in parentheses.
FRAME_RE = re.compile(r"^\s+([0-9a-fA-F]+)\s+(.*?)\s+\((.*)\)\s*$")
# The start of a sample: "comm  pid[/tid] [cpu] time: ..." (comm may hold spaces).
HEADER_RE = re.compile(r"^(\S.*?)\s+\d+(?:/\d+)?\s+(?:\[\d+\]\s+)?\d+\.\d+:")
OFFSET_RE = re.compile(r"\+0x[0-9a-fA-F]+$")
KERNEL_DSO_RE = re.compile(r"^\[kernel\.kallsyms\]$|vmlinux$|\.ko(\.\w+)?$")
KERNEL_SUFFIX = "_[k]"


def frame_name(sym, dso):
    """The folded name of one frame: symbol without offset, DSO when unknown."""
    name = OFFSET_RE.sub("", sym.strip())
    if name in ("", "[unknown]") and dso not in ("", "[unknown]"):
        name = "[%s]" % os.path.basename(dso.strip("[]"))
    elif name == "":
        name = "[unknown]"
    # ';' separates frames and the count follows the last space: keep both apart.
    name = name.replace(";", ":")
    if KERNEL_DSO_RE.search(dso):
        name += KERNEL_SUFFIX
    return name


def fold(lines):
    """Counts of each stack (a tuple of frame names, root first) in `perf script` text."""
    counts = {}
    comm = None
    frames = []

    def flush():
        if comm is not None:
            stack = (comm,) + tuple(reversed(frames))
            counts[stack] = counts.get(stack, 0) + 1

    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            flush()
            comm, frames = None, []
            continue
        if line.startswith("#"):
            continue
        m = FRAME_RE.match(line)
        if m and comm is not None:
            frames.append(frame_name(m.group(2), m.group(3)))
            continue
        m = HEADER_RE.match(line)
        if m:
            flush()
            comm, frames = m.group(1).replace(";", ":"), []
    flush()
    return counts


def user_only(counts):
    """The stacks whose sample was taken in user space: ringside's own share, at full width."""
    return {s: n for s, n in counts.items() if not s[-1].endswith(KERNEL_SUFFIX)}


def format_folded(counts):
    return "".join("%s %d\n" % (";".join(s), n) for s, n in sorted(counts.items()))


def parse_folded(lines):
    """Counts of each stack in folded text ("a;b;c 12" lines)."""
    counts = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            raise ValueError("not a folded stack line: %r" % line)
        key = tuple(stack.split(";"))
        counts[key] = counts.get(key, 0) + int(n)
    return counts


class Node:
    __slots__ = ("name", "count", "children")

    def __init__(self, name):
        self.name = name
        self.count = 0
        self.children = {}


def build_tree(counts):
    root = Node("all")
    for stack, n in counts.items():
        node = root
        node.count += n
        for name in stack:
            node = node.children.setdefault(name, Node(name))
            node.count += n
    return root


def layout(root):
    """(depth, first sample, samples, name) for every frame, parents before children."""
    out = []

    def walk(node, depth, x):
        out.append((depth, x, node.count, node.name))
        for name in sorted(node.children):
            child = node.children[name]
            walk(child, depth + 1, x)
            x += child.count

    walk(root, 0, 0)
    return out


# Geometry, in pixels.
WIDTH = 1200
PAD = 10
FRAME_H = 16
FONT_SIZE = 11
CHAR_W = FONT_SIZE * 0.6  # a monospace glyph's advance is 0.6 em
TOP = 56  # title, subtitle and legend
MIN_W = 0.1  # frames narrower than this are left out (their width stays in the parent)


def colour(name):
    """A stable fill for a frame: the hue band says where it runs, the name picks the shade."""
    v = (zlib.crc32(name.encode()) & 0xFFFF) / 0xFFFF
    w = (zlib.crc32(name.encode()[::-1]) & 0xFFFF) / 0xFFFF
    if name == "all" or name.startswith("["):
        g = int(180 + 40 * v)
        return "rgb(%d,%d,%d)" % (g, g, g)
    if name.endswith(KERNEL_SUFFIX):
        return "rgb(%d,%d,%d)" % (235 + 20 * v, 140 + 50 * w, 40 * v)
    return "rgb(%d,%d,%d)" % (205 + 50 * v, 70 + 70 * w, 70 + 70 * w)


def label(name, width):
    """The name shortened to fit a frame of that width, or '' when nothing fits."""
    fit = int((width - 6) / CHAR_W)
    if fit >= len(name):
        return name
    return name[: fit - 2] + ".." if fit >= 3 else ""


def render_svg(counts, title="Flame graph", width=WIDTH):
    root = build_tree(counts)
    total = root.count
    frames = layout(root) if total else []
    depth = max((f[0] for f in frames), default=0) + 1
    height = TOP + depth * FRAME_H + PAD
    scale = (width - 2 * PAD) / total if total else 0.0
    # a long title gets a smaller font rather than run off the picture
    title_size = min(16.0, (width - 2 * PAD) / (max(len(title), 1) * 0.6))
    out = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n',
        '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" '
        'viewBox="0 0 %d %d">\n' % (width, height, width, height),
        "<style>text { font-family: 'DejaVu Sans Mono', monospace; font-size: %dpx; "
        "fill: #000; } .s { fill: #555; }</style>\n" % FONT_SIZE,
        '<rect x="0" y="0" width="%d" height="%d" fill="#f8f8f4"/>\n' % (width, height),
        '<text class="h" x="%.1f" y="22" text-anchor="middle" style="font-size: %.1fpx">%s</text>\n'
        % (width / 2, title_size, escape(title)),
        '<text class="s" x="%d" y="42">%d samples. Width: share of samples; a frame sits on its '
        "caller. Hover a frame for its count. Colours: user space red, kernel orange, "
        "no symbol grey.</text>\n" % (PAD, total),
    ]
    for d, x0, n, name in frames:
        w = n * scale
        if w < MIN_W:
            continue
        x = PAD + x0 * scale
        y = height - PAD - (d + 1) * FRAME_H
        shown = name[: -len(KERNEL_SUFFIX)] if name.endswith(KERNEL_SUFFIX) else name
        where = " (kernel)" if shown != name else ""
        tip = "%s%s: %d samples, %.2f%%" % (shown, where, n, 100.0 * n / total)
        out.append(
            '<g><title>%s</title><rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s" '
            'rx="2"/>' % (escape(tip), x, y, w, FRAME_H - 1, colour(name))
        )
        text = label(shown, w)
        if text:
            out.append('<text x="%.2f" y="%d">%s</text>' % (x + 3, y + FRAME_H - 4, escape(text)))
        out.append("</g>\n")
    out.append("</svg>\n")
    return "".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fold", help="perf script text -> folded stacks")
    f.add_argument("input", nargs="?", help="perf script output (default: stdin)")
    s = sub.add_parser("svg", help="folded stacks -> SVG flame graph")
    s.add_argument("input", nargs="?", help="folded stacks (default: stdin)")
    s.add_argument("--title", default="Flame graph")
    s.add_argument("--width", type=int, default=WIDTH)
    s.add_argument("--user-only", action="store_true", help="leave out samples taken in the kernel")
    args = ap.parse_args(argv)
    src = open(args.input, encoding="utf-8", errors="replace") if args.input else sys.stdin
    with src:
        if args.cmd == "fold":
            sys.stdout.write(format_folded(fold(src)))
            return 0
        try:
            counts = parse_folded(src)
            if args.user_only:
                counts = user_only(counts)
        except ValueError as e:
            print("flamegraph.py: %s" % e, file=sys.stderr)
            return 1
        sys.stdout.write(render_svg(counts, args.title, args.width))
    return 0


if __name__ == "__main__":
    sys.exit(main())
