"""A seeded mutation fuzzer over HTTP/1.1 requests on raw sockets (DESIGN.md
"Robustness contract": bad input gets a clear error and never takes the proxy
down).

Valid requests (GET/POST/HEAD..., Content-Length and chunked bodies, absolute
form, pipelines) are mutated: bit flips, byte insertions and deletions,
duplicated headers, conflicting framing, chunk sizes that lie, truncations,
CR/LF games, header sections and targets near the 60 KiB limit, header counts
near 100. Each case is sent on its own connection (2 s socket timeout), mostly
followed by a half-close, and what came back is checked: every response must
parse as HTTP/1.1 with a 2xx, 4xx or 5xx status (100 Continue only when the
case asked for it), with framing a client can follow. Every 100 cases and at
the end the proxy must be alive and answer a valid request with 200; the
fixture then fails the test on a crash or a sanitizer report.

Deterministic: case i is generated from random.Random("<seed>:<i>") alone, so
a failure names the one case to replay (RINGSIDE_FUZZ_CASE=i). Cases run eight
at a time, so their order at the proxy is not fixed, but each one's bytes are.
Bounded: at most RINGSIDE_FUZZ_CASES cases (2000) within RINGSIDE_FUZZ_SECONDS
(40) of sending; cases past the budget are not run (the count is printed).

Environment (all optional):
  RINGSIDE_FUZZ_SEED     seed (default 20261126)
  RINGSIDE_FUZZ_CASES    how many cases (default 2000)
  RINGSIDE_FUZZ_SECONDS  time budget for the cases (default 40)
  RINGSIDE_FUZZ_CASE     run only this case (replay a failure)
"""

import collections
import concurrent.futures
import os
import random
import re
import socket
import time

import pytest

import rawhttp
from conftest import SANITIZED, SLOW

SEED = int(os.environ.get("RINGSIDE_FUZZ_SEED", "20261126"))
MAX_CASES = int(os.environ.get("RINGSIDE_FUZZ_CASES", "2000"))
BUDGET_S = float(os.environ.get("RINGSIDE_FUZZ_SECONDS", "40"))
ONLY_CASE = os.environ.get("RINGSIDE_FUZZ_CASE")
SOCK_TIMEOUT = 2.0  # per socket: connect, each send, and the whole read
IDLE_S = 0.25  # without a half-close: how long a quiet connection is waited on
BATCH = 100  # cases between two health checks
WORKERS = 8

LIMIT = 60 * 1024  # max_header_bytes: Envoy's max_request_headers_kb 60
MAX_HEADERS = 100  # max_headers: Envoy's max_headers_count

METHODS = [b"GET", b"GET", b"GET", b"POST", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH"]
# Origin paths whose answers are 2xx or 404 whatever the request (never 3xx),
# and which read query values the origin never parses as numbers.
PATHS = [b"/echo", b"/echo", b"/echo?a=b&c=%41", b"/upload", b"/chunked", b"/head-test", b"/echo/x/../y"]
HOSTS = [b"origin.test"] * 6 + [b"origin.test:80", b"ORIGIN.test", b"refused.test", b"unknown.test"]
TOKEN = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Bytes that parsers treat specially.
SPECIAL = [b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\x00", b" ", b"\t", b":", b";", b",", b'"', b"\x7f", b"\x80", b"\xff", b"\x0b", b"\x0c", b"0", b"-", b"/", b"?", b"#", b"%", b"@"]
TE_VALUES = [b"chunked", b"Chunked", b"CHUNKED", b"chunked, chunked", b"gzip, chunked", b"chunked, gzip", b"identity", b"identity, chunked", b" chunked", b"chunked ", b"\tchunked", b"xchunked", b"chunk", b"chunked;q=1", b"", b"\x0bchunked"]
CL_VALUES = [b"0", b"1", b"5", b"-1", b"+5", b"5 ", b" 5", b"05", b"0x5", b"1e3", b"5, 5", b"5,6", b"", b"18446744073709551616", b"99999999999999999999999", b"\t5"]


class Req:
    """One request as parts, so structural mutations know where things are."""

    def __init__(self, method, target, version, headers, body):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of [name, value] (bytes; value None: see serialize)
        self.body = body

    def header_bytes(self):
        return len(self.target) + sum(len(n) + len(v or b"") for n, v in self.headers)

    def serialize(self):
        out = [self.method + b" " + self.target + b" " + self.version]
        # a value of None: the name is the whole line (a line without a colon)
        out += [n + b": " + v if v is not None else n for n, v in self.headers]
        return b"\r\n".join(out) + b"\r\n\r\n" + self.body


def chunk_encode(rng, data):
    """data in chunks of random sizes, with the spellings RFC 9112 §7.1 allows
    (upper-case hex, leading zeros, extensions) and sometimes trailers."""
    out = bytearray()
    pos = 0
    while pos < len(data):
        n = min(rng.choice([1, 2, 3, 7, 16, 100, 1000, 4096, 16384]), len(data) - pos)
        size = b"%x" % n
        r = rng.random()
        if r < 0.1:
            size = size.upper()
        elif r < 0.2:
            size = b"000" + size
        ext = rng.choice([b";a=b", b";x", b';q="v;\\""', b";" + b"e" * 100]) if rng.random() < 0.15 else b""
        out += size + ext + b"\r\n" + data[pos : pos + n] + b"\r\n"
        pos += n
    out += b"0\r\n"
    if rng.random() < 0.2:
        out += rng.choice([b"X-Trailer: t\r\n", b"Content-Length: 5\r\n", b"X-T: a\r\nX-U: b\r\n"])
    out += b"\r\n"
    return bytes(out)


def base_request(rng, case):
    method = rng.choice(METHODS)
    path = rng.choice(PATHS)
    path += (b"&" if b"?" in path else b"?") + b"fz=%d" % case
    host = rng.choice(HOSTS)
    headers = []
    if rng.random() < 0.1:
        target = b"http://" + host + path  # absolute form (RFC 9112 §3.2.2)
        if rng.random() < 0.5:
            headers.append([b"Host", host])
    else:
        target = path
        headers.append([b"Host", host])
    for name, value in [(b"User-Agent", b"ringside-fuzz/1"), (b"Accept", b"*/*"), (b"X-Fuzz", b"case-%d" % case), (b"Cookie", b"a=b; c=d"), (b"Accept-Encoding", b"gzip, deflate")]:
        if rng.random() < 0.4:
            headers.append([name, value])
    if rng.random() < 0.15:
        headers.append([b"Connection", rng.choice([b"close", b"keep-alive", b"close, X-Fuzz", b"Upgrade"])])
    body = b""
    kind = rng.random()
    if method in (b"POST", b"PUT", b"PATCH") or kind < 0.1:
        data = rng.randbytes(rng.choice([0, 1, 5, 100, 1000, 10000, 70000]))
        if rng.random() < 0.4:
            headers.append([b"Transfer-Encoding", b"chunked"])
            body = chunk_encode(rng, data)
        else:
            headers.append([b"Content-Length", b"%d" % len(data)])
            body = data
        if rng.random() < 0.15:
            headers.append([b"Expect", b"100-continue"])
    rng.shuffle(headers)
    version = b"HTTP/1.1" if rng.random() < 0.95 else rng.choice([b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0", b"HTTP/1.10", b"http/1.1"])
    return Req(method, target, version, headers, body)


# ------------------------------------------------------------------ structural mutations
def m_dup_header(rng, req):
    if not req.headers:
        return "dup-header(none)"
    i = rng.randrange(len(req.headers))
    name, value = req.headers[i]
    if value is not None and rng.random() < 0.5:
        value = rng.choice([value, value + b"x", b"", b"other"])
    if rng.random() < 0.3:
        name = name.lower() if rng.random() < 0.5 else name.upper()
    req.headers.insert(rng.randrange(len(req.headers) + 1), [name, value])
    return "dup-header(%s)" % name.decode("latin-1")


def m_framing(rng, req):
    """Conflicting or odd Content-Length / Transfer-Encoding (RFC 9112 §6.1, §6.3)."""
    what = rng.choice(["te", "cl", "both", "both"])
    if what in ("te", "both"):
        req.headers.insert(rng.randrange(len(req.headers) + 1), [b"Transfer-Encoding", rng.choice(TE_VALUES)])
    if what in ("cl", "both"):
        req.headers.insert(rng.randrange(len(req.headers) + 1), [b"Content-Length", rng.choice(CL_VALUES)])
    if not req.body and rng.random() < 0.5:
        req.body = rng.choice([b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"hello", b"GET /echo?smuggled=1 HTTP/1.1\r\nHost: origin.test\r\n\r\n"])
    return "framing(%s)" % what


def m_chunk_lie(rng, req):
    """A chunk size that is not the data's: too big, too small, overflowing, signed."""
    m = re.search(rb"(?:^|\r\n)([0-9a-fA-F]+)(;[^\r\n]*)?\r\n", req.body)
    if not m or b"chunked" not in b" ".join((v or b"").lower() for _, v in req.headers):
        req.headers.append([b"Transfer-Encoding", b"chunked"])
        req.body = chunk_encode(rng, rng.randbytes(rng.choice([1, 10, 300])))
        m = re.search(rb"(?:^|\r\n)([0-9a-fA-F]+)(;[^\r\n]*)?\r\n", req.body)
    size = int(m.group(1), 16)
    new = rng.choice([b"%x" % (size + 1), b"%x" % max(0, size - 1), b"%x" % (size * 16 + 3), b"ffffffffffffffff", b"10000000000000000", b"-1", b"0x5", b"%x " % size, b" %x" % size, b"%x\t" % size, b"+%x" % size, b"g", b""])
    req.body = req.body[: m.start(1)] + new + req.body[m.end(1) :]
    return "chunk-lie(%s)" % new.decode("latin-1")


def m_huge_header(rng, req):
    """One value that brings the header section to the limit, give or take."""
    delta = rng.randint(-300, 300)
    name = rng.choice([b"X-Huge", b"Cookie", b"User-Agent", b"X-" + b"n" * 1000])
    n = max(1, LIMIT - req.header_bytes() - len(name) + delta)
    fill = rng.choice([b"a", b"0123456789", b"%41", b" a", b"\x80"])
    req.headers.insert(rng.randrange(len(req.headers) + 1), [name, (fill * (n // len(fill) + 1))[:n]])
    return "huge-header(%+d)" % delta


def m_many_headers(rng, req):
    count = rng.randint(MAX_HEADERS - 8, MAX_HEADERS + 8) - len(req.headers)
    for i in range(max(0, count)):
        req.headers.insert(rng.randrange(len(req.headers) + 1), [b"X-H%d" % i, b"v%d" % i])
    return "many-headers(%d)" % (len(req.headers))


def m_huge_target(rng, req):
    delta = rng.randint(-300, 300)
    n = max(1, LIMIT - req.header_bytes() + delta)
    req.target = (req.target + b"&pad=" + b"p" * n)[: len(req.target) + n]
    return "huge-target(%+d)" % delta


def m_header_syntax(rng, req):
    """Header lines RFC 9112 §5 forbids or constrains."""
    if not req.headers:
        req.headers.append([b"X-Empty", b""])
    i = rng.randrange(len(req.headers))
    name, value = req.headers[i][0], req.headers[i][1] or b""
    kind = rng.choice(["space-before-colon", "obs-fold", "empty-name", "bad-name", "cr-in-value", "nul-in-value", "no-colon", "utf8-value", "ctl-in-name"])
    if kind == "space-before-colon":
        name = name + rng.choice([b" ", b"\t"])
    elif kind == "obs-fold":
        value = value + b"\r\n" + rng.choice([b" ", b"\t"]) + b"folded"
    elif kind == "empty-name":
        name = b""
    elif kind == "bad-name":
        name = name + rng.choice([b"(", b"@", b"\x80", b"{", b"/", b"="])
    elif kind == "cr-in-value":
        value = value + b"\ra"
    elif kind == "nul-in-value":
        value = value[:1] + b"\x00" + value[1:]
    elif kind == "no-colon":
        req.headers[i] = [name + b" " + value, None]
        return "header-syntax(no-colon)"
    elif kind == "utf8-value":
        value = value + "é€".encode()
    elif kind == "ctl-in-name":
        name = name[:1] + b"\x01" + name[1:]
    req.headers[i] = [name, value]
    return "header-syntax(%s)" % kind


STRUCTURAL = [
    (m_dup_header, 3),
    (m_framing, 3),
    (m_chunk_lie, 2),
    (m_huge_header, 1),
    (m_many_headers, 1),
    (m_huge_target, 0.5),
    (m_header_syntax, 3),
]


# ------------------------------------------------------------------ byte mutations
def b_bitflip(rng, b):
    b = bytearray(b)
    n = rng.choice([1, 1, 2, 4, 8])
    for _ in range(n):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b), "bitflip(%d)" % n


def b_insert(rng, b):
    i = rng.randrange(len(b) + 1)
    what = rng.choice(SPECIAL) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 8))
    return b[:i] + what + b[i:], "insert(%d,%r)" % (i, what)


def b_delete(rng, b):
    i = rng.randrange(len(b))
    n = rng.choice([1, 1, 2, 4, 16, 64])
    return b[:i] + b[i + n :], "delete(%d,%d)" % (i, n)


def b_truncate(rng, b):
    # Mostly inside the head, where a cut leaves the parser waiting.
    head_end = b.find(b"\r\n\r\n")
    hi = head_end + 4 if head_end >= 0 and rng.random() < 0.7 else len(b)
    i = rng.randrange(max(1, hi))
    return b[:i], "truncate(%d)" % i


def b_crlf(rng, b):
    """Line-ending games: bare LF or CR, doubled lines, leading empty lines."""
    kind = rng.choice(["all-lf", "one-lf", "one-cr", "lfcr", "early-end", "leading-crlf", "crcrlf", "trailing-crlf"])
    positions = [m.start() for m in re.finditer(rb"\r\n", b)]
    if kind == "all-lf":
        return b.replace(b"\r\n", b"\n"), "crlf(all-lf)"
    if kind == "leading-crlf":
        return rng.choice([b"\r\n", b"\r\n\r\n", b"\n", b"\r"]) + b, "crlf(leading)"
    if kind == "trailing-crlf":
        return b + rng.choice([b"\r\n", b"\r\n\r\n", b"\n\n"]), "crlf(trailing)"
    if not positions:
        return b + b"\r", "crlf(cr-at-end)"
    p = rng.choice(positions)
    repl = {"one-lf": b"\n", "one-cr": b"\r", "lfcr": b"\n\r", "early-end": b"\r\n\r\n", "crcrlf": b"\r\r\n"}[kind]
    return b[:p] + repl + b[p + 2 :], "crlf(%s@%d)" % (kind, p)


def b_splice(rng, b):
    """A piece of the request repeated elsewhere in it."""
    i, j = sorted(rng.randrange(len(b) + 1) for _ in range(2))
    k = rng.randrange(len(b) + 1)
    return b[:k] + b[i:j][:256] + b[k:], "splice(%d:%d@%d)" % (i, j, k)


BYTEWISE = [(b_bitflip, 3), (b_insert, 3), (b_delete, 2), (b_truncate, 2), (b_crlf, 3), (b_splice, 1)]


def weighted(rng, table):
    return rng.choices([f for f, _ in table], weights=[w for _, w in table])[0]


def mutated_request(rng, case, allow_bytewise=True):
    req = base_request(rng, case)
    ops = []
    roll = rng.random()
    n_struct = 0 if roll < 0.35 else rng.choice([1, 1, 2])
    for _ in range(n_struct):
        ops.append(weighted(rng, STRUCTURAL)(rng, req))
    data = req.serialize()
    n_bytes = 0 if (not allow_bytewise or (n_struct and rng.random() < 0.5)) else rng.choice([0, 1, 1, 1, 2, 3])
    for _ in range(n_bytes):
        if data:
            data, what = weighted(rng, BYTEWISE)(rng, data)
            ops.append(what)
    if not ops and rng.random() < 0.9:  # a few clean requests keep the valid paths warm
        data, what = weighted(rng, BYTEWISE)(rng, data)
        ops.append(what)
    return data, ops


class Case:
    def __init__(self, index):
        self.index = index
        rng = random.Random("%d:%d" % (SEED, index))
        if rng.random() < 0.15:
            k = rng.randint(2, 5)
            parts = [mutated_request(rng, index, allow_bytewise=rng.random() < 0.5) for _ in range(k)]
            self.payload = b"".join(p for p, _ in parts)
            self.ops = ["pipeline(%d)" % k] + ["%d:%s" % (i, "+".join(o) or "clean") for i, (_, o) in enumerate(parts)]
        else:
            self.payload, self.ops = mutated_request(rng, index)
        # How it is sent: in one write or several, then mostly a half-close
        # (so an incomplete request ends at once instead of after the 2 s).
        self.pieces = 1 if rng.random() < 0.8 else rng.randint(2, 6)
        self.half_close = rng.random() < 0.85
        self.split_at = sorted(rng.randrange(len(self.payload) + 1) for _ in range(self.pieces - 1))

    def describe(self):
        return "case %d (seed %d): %s, %d piece(s), %s" % (self.index, SEED, " ".join(self.ops), self.pieces, "half-close" if self.half_close else "no half-close")


# ------------------------------------------------------------------ exchange
class Result:
    def __init__(self, case):
        self.case = case
        self.data = b""
        self.end = None  # "eof", "reset", "timeout", "idle", "connect-failed"
        self.send_error = None
        self.statuses = []
        self.problem = None


def run_case(case, port, deadline_wall):
    res = Result(case)
    if time.monotonic() > deadline_wall:
        return None
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=SOCK_TIMEOUT)
    except OSError as e:
        res.end = "connect-failed"
        res.problem = "connect failed: %r" % e
        return res
    buf = bytearray()
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            bounds = [0] + case.split_at + [len(case.payload)]
            for a, b in zip(bounds, bounds[1:]):
                s.sendall(case.payload[a:b])
                if case.pieces > 1:
                    time.sleep(0.002)
            if case.half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError, socket.timeout) as e:
            # The proxy may answer and close before reading everything.
            res.send_error = type(e).__name__
        end = time.monotonic() + SOCK_TIMEOUT
        while True:
            left = end - time.monotonic()
            if left <= 0:
                res.end = "timeout"
                break
            s.settimeout(left if case.half_close else min(left, IDLE_S))
            try:
                d = s.recv(262144)
            except socket.timeout:
                res.end = "timeout" if case.half_close else "idle"
                break
            except ConnectionResetError:
                res.end = "reset"
                break
            if not d:
                res.end = "eof"
                break
            buf += d
    finally:
        s.close()
    res.data = bytes(buf)
    return res


# ------------------------------------------------------------------ the response oracle
STATUS_LINE = re.compile(rb"HTTP/1\.1 ([0-9]{3}) [\t\x20-\x7e\x80-\xff]*")
FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
FIELD_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class Bad(Exception):
    pass


def check_responses(res):
    """Parses everything the proxy sent as a sequence of HTTP/1.1 responses.
    A cut-off last response is allowed only when the connection was reset or
    the client stopped waiting; a clean close must come after complete ones."""
    data = res.data
    payload_l = res.case.payload.lower()
    may_continue = b"100-continue" in payload_l
    may_head = b"head " in payload_l
    cut_ok = res.end in ("reset", "timeout", "idle")
    pos = 0
    while pos < len(data):
        he = data.find(b"\r\n\r\n", pos)
        if he < 0:
            rest = data[pos:]
            line_end = rest.find(b"\r\n")
            if cut_ok and b"HTTP/1.1 ".startswith(rest[:9]) and (line_end < 0 or STATUS_LINE.fullmatch(rest[:line_end])):
                return
            raise Bad("incomplete or malformed response head at byte %d (connection: %s): %r" % (pos, res.end, rest[:300]))
        lines = data[pos:he].split(b"\r\n")
        m = STATUS_LINE.fullmatch(lines[0])
        if not m:
            raise Bad("bad status line at byte %d: %r" % (pos, lines[0][:200]))
        status = int(m.group(1))
        fields = []
        for ln in lines[1:]:
            name, sep, value = ln.partition(b":")
            if not sep or not FIELD_NAME.fullmatch(name) or FIELD_VALUE_BAD.search(value):
                raise Bad("bad response header line %r in %r" % (ln[:200], lines[0]))
            fields.append((name.lower(), value.strip(b" \t")))
        res.statuses.append(status)
        pos = he + 4
        if status == 100 and may_continue:
            continue
        if not (200 <= status < 300 or 400 <= status < 600):
            raise Bad("status %d is not 2xx, 4xx or 5xx: %r" % (status, lines[0]))
        te = [v for n, v in fields if n == b"transfer-encoding"]
        cl = [v for n, v in fields if n == b"content-length"]
        if te and cl:
            raise Bad("response has both Transfer-Encoding and Content-Length: %r" % data[:he])
        if len(set(cl)) > 1 or (cl and not cl[0].isdigit()):
            raise Bad("response Content-Length %r" % cl)
        if status in (204, 304):
            if te or (cl and cl[0] != b"0"):
                pass  # RFC 9110 §8.6 lets a 304 carry one; bodiless either way
            continue
        if te:
            if b",".join(te).split(b",")[-1].strip().lower() != b"chunked":
                raise Bad("response Transfer-Encoding %r" % te)
            pos = skip_chunked(data, pos, cut_ok, res)
            if pos is None:
                return
            continue
        if cl:
            n = int(cl[0])
            after = pos + n
            # A response to HEAD (which a mutation may or may not have kept)
            # has a Content-Length and no body: accept either reading that
            # leaves the stream at a response boundary.
            if may_head and (pos == len(data) or data.startswith(b"HTTP/1.1 ", pos)) and not (after == len(data) or data.startswith(b"HTTP/", after)):
                continue
            if after > len(data):
                if cut_ok:
                    return
                raise Bad("response body cut short: Content-Length %d, %d bytes before a clean close" % (n, len(data) - pos))
            pos = after
            continue
        # Neither: the body runs to the close (RFC 9112 §6.3 rule 8).
        return


def skip_chunked(data, pos, cut_ok, res):
    while True:
        le = data.find(b"\r\n", pos)
        if le < 0:
            if cut_ok:
                return None
            raise Bad("chunked response cut in a size line before a clean close")
        size_s = data[pos:le].split(b";")[0].strip()
        if not re.fullmatch(rb"[0-9a-fA-F]{1,16}", size_s):
            raise Bad("bad chunk size line in a response: %r" % data[pos : le + 2])
        size = int(size_s, 16)
        pos = le + 2
        if size == 0:
            while True:  # trailers, then the empty line
                le = data.find(b"\r\n", pos)
                if le < 0:
                    if cut_ok:
                        return None
                    raise Bad("chunked response cut in its trailers before a clean close")
                line = data[pos:le]
                pos = le + 2
                if not line:
                    return pos
        if pos + size + 2 > len(data):
            if cut_ok:
                return None
            raise Bad("chunked response cut in a chunk before a clean close")
        if data[pos + size : pos + size + 2] != b"\r\n":
            raise Bad("chunk data not followed by CRLF in a response")
        pos += size + 2


# ------------------------------------------------------------------ the test
def assert_healthy(proxy, when):
    assert proxy.alive(), "ringside exited %s (code %s)" % (when, proxy.proc.returncode)
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo?fuzz-health=%s" % when.replace(" ", "-")), timeout=5 * SLOW)
    assert resp.status == 200, "a valid request %s got %r" % (when, resp)


def report(res, tmp_path):
    path = tmp_path / ("fuzz-case-%d.bin" % res.case.index)
    path.write_bytes(res.case.payload)
    return "%s\n  problem: %s\n  connection end: %s, send error: %s\n  payload (%d bytes, also in %s): %r\n  received (%d bytes): %r\n  replay: RINGSIDE_FUZZ_SEED=%d RINGSIDE_FUZZ_CASE=%d" % (
        res.case.describe(),
        res.problem,
        res.end,
        res.send_error,
        len(res.case.payload),
        path,
        res.case.payload[:1500],
        len(res.data),
        res.data[:1500],
        SEED,
        res.case.index,
    )


def test_http1_mutation_fuzz(proxy, origin, tmp_path):
    start = time.monotonic()
    deadline = start + BUDGET_S
    indexes = [int(ONLY_CASE)] if ONLY_CASE is not None else list(range(MAX_CASES))
    ran = 0
    statuses = collections.Counter()
    ends = collections.Counter()
    hangs = []
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        for b in range(0, len(indexes), BATCH):
            if time.monotonic() > deadline:
                break
            cases = [Case(i) for i in indexes[b : b + BATCH]]
            results = [r for r in pool.map(lambda c: run_case(c, proxy.outbound, deadline), cases) if r is not None]
            bad = []
            for res in results:
                if res.problem is None:
                    try:
                        check_responses(res)
                    except Bad as e:
                        res.problem = str(e)
                if res.problem is not None:
                    bad.append(res)
                statuses.update(res.statuses)
                ends[res.end] += 1
                if res.end == "timeout":
                    hangs.append(res.case.index)
            ran += len(results)
            if bad:
                pytest.fail("%d of the cases %d-%d got answers a client cannot parse:\n\n%s" % (len(bad), cases[0].index, cases[-1].index, "\n\n".join(report(r, tmp_path) for r in bad[:5])), pytrace=False)
            assert_healthy(proxy, "after case %d" % cases[-1].index)
    elapsed = time.monotonic() - start
    print(
        "\nfuzz: seed %d, %d of %d cases in %.1fs (%s build); statuses %s; connection ends %s; no close within %.0fs after a half-close: %s"
        % (SEED, ran, len(indexes), elapsed, "ASan" if SANITIZED else "plain", dict(sorted(statuses.items())), dict(ends), SOCK_TIMEOUT, hangs[:20] or "none")
    )
    assert ran > 0, "no case ran within the %.0fs budget" % BUDGET_S
    assert_healthy(proxy, "at the end")
    # What the proxy forwards must be HTTP the origin can read: anything else
    # is a request the proxy framed differently from the origin (smuggling).
    assert not origin.errors, "the origin could not parse what the proxy forwarded:\n" + "\n".join(origin.errors[:20])
