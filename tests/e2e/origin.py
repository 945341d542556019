"""A raw-socket HTTP/1.1 origin server for ringside's end-to-end tests.

It runs in threads inside the pytest process and deliberately does not use a
library server: the tests must see the exact bytes the proxy sends. Every
accepted connection and every byte received on it is recorded.

Behaviour by path (query strings are allowed everywhere):

  /echo            200, JSON: method, target, path, version, headers as a list of
                   [name, value] pairs (as received), body_len, body_sha256
  /upload          consumes the body incrementally; JSON: bytes, sha256
  /chunked         chunked response whose decoded body is CHUNKED_BODY
  /close?v=1.0     status line HTTP/1.0 (or ?v=1.1), no Content-Length, no
                   Transfer-Encoding: the body (CLOSE_BODY) ends when the origin closes
  /slow?ms=N       answers 200 after N milliseconds
  /status/N        answers with status N
  /download?bytes=N[&chunked=1]   streams N bytes of pattern_bytes() incrementally
  /reset[?rst=1]   closes without a response (RST with ?rst=1)
  /garbage         sends a malformed status line and waits for the peer to close
  /head-test       200 with Content-Length 11 ("hello world"); HEAD gets no body
  /204, /304       no body
  /echo?close=1    like /echo, then closes the keep-alive connection without notice
  /truncated[?chunked=1]  response body cut short by a close
  /hop             response carrying hop-by-hop headers (see HOP_RESPONSE_HEADERS)
  anything else    404
"""

import hashlib
import json
import socket
import threading
import time
import urllib.parse

# Recorded raw bytes per connection are capped (the 100 MiB tests would
# otherwise keep 100 MiB in memory); the byte counters are always exact.
RECORD_CAP = 4 * 1024 * 1024
# Request bodies kept in memory (hash and length are always complete).
BODY_KEEP_CAP = 1024 * 1024
MAX_HEAD = 1024 * 1024

CHUNKED_BODY = b"".join(b"chunk line %05d: the quick brown fox\n" % i for i in range(2000))
# sizes of the chunks the origin sends for /chunked (the rest goes in a last chunk)
CHUNK_SIZES = (1, 7, 100, 4096, 16384, 3, 30000)
CLOSE_BODY = b"".join(b"until-close line %05d\n" % i for i in range(3000))
HEAD_TEST_BODY = b"hello world"

HOP_RESPONSE_HEADERS = [
    ("Connection", "keep-alive, X-Bar"),
    ("Keep-Alive", "timeout=5, max=100"),
    ("Proxy-Connection", "keep-alive"),
    ("TE", "trailers"),
    ("Upgrade", "foo/1"),
    ("X-Bar", "must-be-stripped"),
    ("X-Keep", "kept"),
]

_BLOCK = bytes(range(256)) * 256  # 64 KiB


def pattern_bytes(n):
    """Yields the deterministic /download pattern, n bytes in 64 KiB pieces."""
    while n > 0:
        k = min(n, len(_BLOCK))
        yield _BLOCK[:k]
        n -= k


def pattern_sha256(n):
    h = hashlib.sha256()
    for b in pattern_bytes(n):
        h.update(b)
    return h.hexdigest()


class ClientGone(Exception):
    pass


class BadRequest(Exception):
    pass


class OriginConn:
    def __init__(self, cid, sock, peer):
        self.id = cid
        self.sock = sock
        self.peer = peer
        self.accepted_at = time.monotonic()
        self.data = bytearray()  # first RECORD_CAP bytes received
        self.total = 0  # all bytes received
        self.closed = threading.Event()


class OriginRequest:
    def __init__(self, conn_id, method, target, version, headers, raw_head):
        self.conn_id = conn_id
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value) as received
        self.raw_head = raw_head
        t = target
        if "://" in t:  # absolute-form: keep path and query only
            t = "/" + t.split("://", 1)[1].partition("/")[2]
        u = urllib.parse.urlsplit(t)
        self.path = u.path
        self.query = dict(urllib.parse.parse_qsl(u.query))
        self.body = bytearray()
        self.body_len = 0
        self.body_sha256 = None
        self.body_complete = False
        self.received_at = time.monotonic()

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]


class _Reader:
    def __init__(self, origin, conn):
        self.origin = origin
        self.conn = conn
        self.buf = bytearray()

    def _fill(self):
        try:
            d = self.conn.sock.recv(262144)
        except (ConnectionResetError, BrokenPipeError, socket.timeout, OSError):
            d = b""
        if not d:
            raise ClientGone()
        self.origin._record(self.conn, d)
        self.buf += d

    def read_head(self):
        """Returns the request head (without the final CRLFCRLF) or None at a clean EOF."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[:i])
                del self.buf[: i + 4]
                return head
            if len(self.buf) > MAX_HEAD:
                raise BadRequest("head too large")
            try:
                self._fill()
            except ClientGone:
                if self.buf:
                    raise
                return None

    def read_line(self, limit=65536):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return line
            if len(self.buf) > limit:
                raise BadRequest("line too long")
            self._fill()

    def read_some(self, maxn):
        if not self.buf:
            self._fill()
        d = bytes(self.buf[:maxn])
        del self.buf[: len(d)]
        return d


class Origin:
    def __init__(self, host="127.0.0.1"):
        self.lock = threading.Condition()
        self.conns = []
        self.requests = []
        self.errors = []  # requests the origin could not parse (what the proxy sent)
        self.internal_errors = []  # exceptions in the origin itself
        self.force_status = None  # when set, every request gets this status (a failing endpoint)
        self.force_delay = 0  # seconds every request waits before its answer (a slow endpoint)
        self.flaky = {}  # /flaky key -> requests seen
        self.open_now = 0  # connections open now, and the most at once
        self.max_open = 0
        self._stopping = threading.Event()
        self._threads = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, 0))
        self.lsock.listen(512)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="origin-accept", daemon=True)

    # ---------------------------------------------------------------- control
    def start(self):
        self._acceptor.start()
        return self

    def stop(self):
        self._stopping.set()
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._acceptor.join(5)
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self._threads):
            t.join(5)
        for c in conns:
            try:
                c.sock.close()
            except OSError:
                pass

    # ---------------------------------------------------------------- queries
    def accepted(self):
        with self.lock:
            return len(self.conns)

    def total_bytes(self):
        with self.lock:
            return sum(c.total for c in self.conns)

    def mark(self):
        """A point in time to compare against with bytes_since()/requests_since()."""
        with self.lock:
            return ({c.id: c.total for c in self.conns}, len(self.requests), len(self.conns))

    def bytes_since(self, mark):
        """Raw bytes received (on any connection) since mark, concatenated per connection."""
        totals, _, _ = mark
        out = bytearray()
        with self.lock:
            for c in self.conns:
                start = totals.get(c.id, 0)
                out += c.data[start:]
        return bytes(out)

    def byte_count_since(self, mark):
        totals, _, _ = mark
        with self.lock:
            return sum(c.total - totals.get(c.id, 0) for c in self.conns)

    def conns_since(self, mark):
        _, _, nconns = mark
        with self.lock:
            return list(self.conns[nconns:])

    def requests_since(self, mark):
        _, nreq, _ = mark
        with self.lock:
            return list(self.requests[nreq:])

    def wait_for(self, predicate, timeout=10.0):
        """Waits until predicate() (called under the lock) is true; returns its value or None."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                v = predicate()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.lock.wait(min(left, 0.1))

    def wait_for_request(self, path, timeout=10.0, since=None):
        """Waits for a request whose path is `path` (head received) and returns it."""
        start = since[1] if since else 0

        def find():
            for r in self.requests[start:]:
                if r.path == path:
                    return r
            return None

        return self.wait_for(find, timeout)

    # ---------------------------------------------------------------- server
    def _record(self, conn, d):
        with self.lock:
            if len(conn.data) < RECORD_CAP:
                conn.data += d[: RECORD_CAP - len(conn.data)]
            conn.total += len(d)
            self.lock.notify_all()

    def _accept_loop(self):
        cid = 0
        while not self._stopping.is_set():
            try:
                s, peer = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            s.settimeout(30)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cid += 1
            conn = OriginConn(cid, s, peer)
            with self.lock:
                self.conns.append(conn)
                self.open_now += 1
                self.max_open = max(self.max_open, self.open_now)
                self.lock.notify_all()
            t = threading.Thread(target=self._serve, args=(conn,), name="origin-conn-%d" % cid, daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn):
        r = _Reader(self, conn)
        try:
            while not self._stopping.is_set():
                head = r.read_head()
                if head is None:
                    break
                req = self._parse_head(conn, head)
                with self.lock:
                    self.requests.append(req)
                    self.lock.notify_all()
                keep = self._dispatch(conn, r, req)
                if not keep:
                    break
        except (ClientGone, BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        except BadRequest as e:
            with self.lock:
                self.errors.append("conn %d: %s" % (conn.id, e))
            try:
                conn.sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
        except OSError:
            pass
        except Exception as e:  # a bug in the origin itself: keep it visible
            import traceback

            with self.lock:
                self.errors.append("conn %d: %r" % (conn.id, e))
                self.internal_errors.append(traceback.format_exc())
        finally:
            try:
                conn.sock.close()
            except OSError:
                pass
            conn.closed.set()
            with self.lock:
                self.open_now -= 1
                self.lock.notify_all()

    @staticmethod
    def _parse_head(conn, head):
        lines = head.split(b"\r\n")
        try:
            method, target, version = lines[0].decode("latin-1").split(" ")
        except ValueError:
            raise BadRequest("bad request line %r" % lines[0])
        headers = []
        for ln in lines[1:]:
            if b":" not in ln:
                raise BadRequest("bad header line %r" % ln)
            n, _, v = ln.partition(b":")
            headers.append((n.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
        return OriginRequest(conn.id, method, target, version, headers, head)

    # body handling -------------------------------------------------------
    def _consume_body(self, r, req, keep=True):
        h = hashlib.sha256()
        te = req.header_all("transfer-encoding")
        cl = req.header_all("content-length")

        def sink(d):
            h.update(d)
            req.body_len += len(d)
            if keep and len(req.body) < BODY_KEEP_CAP:
                req.body += d[: BODY_KEEP_CAP - len(req.body)]

        if te:
            if te[-1].split(",")[-1].strip().lower() != "chunked":
                raise BadRequest("transfer-encoding %r" % te)
            while True:
                line = r.read_line()
                size_s = line.split(b";")[0].strip()
                try:
                    size = int(size_s, 16)
                except ValueError:
                    raise BadRequest("bad chunk size %r" % line)
                if size == 0:
                    for _ in range(1000):  # trailers
                        if r.read_line() == b"":
                            break
                    else:
                        raise BadRequest("too many trailer lines")
                    break
                left = size
                while left:
                    d = r.read_some(min(left, 262144))
                    sink(d)
                    left -= len(d)
                if r.read_line() != b"":
                    raise BadRequest("chunk not followed by CRLF")
        elif cl:
            if len(set(cl)) != 1 or not cl[0].isdigit():
                raise BadRequest("content-length %r" % cl)
            left = int(cl[0])
            while left:
                d = r.read_some(min(left, 262144))
                sink(d)
                left -= len(d)
        req.body_sha256 = h.hexdigest()
        req.body_complete = True
        with self.lock:
            self.lock.notify_all()

    # responses -----------------------------------------------------------
    @staticmethod
    def _send(conn, data):
        conn.sock.sendall(data)

    def _respond(self, conn, status, body=b"", headers=(), reason=None, head_only=False):
        reason = reason or {200: "OK", 204: "No Content", 304: "Not Modified", 404: "Not Found"}.get(status, "Status")
        out = ["HTTP/1.1 %d %s" % (status, reason)]
        for n, v in headers:
            out.append("%s: %s" % (n, v))
        if status not in (204, 304) and not (100 <= status < 200):
            out.append("Content-Length: %d" % len(body))
        data = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
        if not head_only and status not in (204, 304):
            data += body
        self._send(conn, data)

    def _dispatch(self, conn, r, req):
        """Serves one request; returns False when the connection must end."""
        path = req.path
        q = req.query
        head_only = req.method == "HEAD"
        client_close = (req.header("connection") or "").lower() == "close" or req.version == "HTTP/1.0"

        if self.force_delay:
            time.sleep(self.force_delay)
        if self.force_status is not None:
            self._consume_body(r, req, keep=False)
            self._respond(conn, self.force_status, b"forced %d\n" % self.force_status, [("Content-Type", "text/plain")])
            return not client_close
        if path == "/flaky":
            # The first `fail` requests with this key get `code`, the rest 200.
            self._consume_body(r, req)
            key = q.get("key", "")
            with self.lock:
                n = self.flaky.get(key, 0)
                self.flaky[key] = n + 1
            code = int(q.get("code", "503")) if n < int(q.get("fail", "1")) else 200
            self._respond(conn, code, b"try %d\n" % (n + 1), [("Content-Type", "text/plain")])
            return not client_close
        if path == "/upload":
            self._consume_body(r, req, keep=False)
            body = json.dumps({"bytes": req.body_len, "sha256": req.body_sha256}).encode()
            self._respond(conn, 200, body, [("Content-Type", "application/json")])
            return not client_close

        self._consume_body(r, req)

        if path == "/echo":
            body = json.dumps(
                {
                    "method": req.method,
                    "target": req.target,
                    "path": req.path,
                    "version": req.version,
                    "headers": [[n, v] for n, v in req.headers],
                    "body_len": req.body_len,
                    "body_sha256": req.body_sha256,
                    "conn_id": conn.id,
                }
            ).encode()
            self._respond(conn, 200, body, [("Content-Type", "application/json")], head_only=head_only)
            if q.get("close") == "1":  # close the keep-alive connection without notice
                return False
        elif path == "/truncated":
            if q.get("chunked") == "1":
                self._send(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + b"t" * 500)
            else:
                self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"t" * 1000)
            return False
        elif path == "/chunked":
            out = [b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"]
            pos = 0
            for s in CHUNK_SIZES:
                out.append(b"%x\r\n%s\r\n" % (s, CHUNKED_BODY[pos : pos + s]))
                pos += s
            out.append(b"%x\r\n%s\r\n0\r\n\r\n" % (len(CHUNKED_BODY) - pos, CHUNKED_BODY[pos:]))
            # send the pieces separately so the proxy sees chunks across reads
            for piece in out:
                self._send(conn, piece)
        elif path == "/close":
            v = q.get("v", "1.0")
            self._send(conn, ("HTTP/%s 200 OK\r\nContent-Type: text/plain\r\n\r\n" % v).encode())
            for i in range(0, len(CLOSE_BODY), 8192):
                self._send(conn, CLOSE_BODY[i : i + 8192])
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return False
        elif path == "/slow":
            deadline = time.monotonic() + int(q.get("ms", "1000")) / 1000.0
            while time.monotonic() < deadline and not self._stopping.is_set():
                time.sleep(min(0.01, max(0, deadline - time.monotonic())))
            self._respond(conn, 200, b"slow done\n", [("Content-Type", "text/plain")])
        elif path.startswith("/status/"):
            code = int(path.split("/")[2])
            self._respond(conn, code, b"status %d\n" % code, [("Content-Type", "text/plain")], head_only=head_only)
        elif path == "/download":
            n = int(q.get("bytes", "0"))
            if q.get("chunked") == "1":
                self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
                for b in pattern_bytes(n):
                    self._send(conn, b"%x\r\n" % len(b) + b + b"\r\n")
                self._send(conn, b"0\r\n\r\n")
            else:
                self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % n)
                for b in pattern_bytes(n):
                    self._send(conn, b)
        elif path == "/reset":
            if q.get("rst") == "1":
                import struct

                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        elif path == "/garbage":
            self._send(conn, b"HTTP/1.1 2x0 N\x01T HTTP\r\nthis is: not\r\n a response\r\n\r\n")
            # keep the connection until the proxy gives up on it
            conn.sock.settimeout(10)
            deadline = time.monotonic() + 10
            try:
                while time.monotonic() < deadline and conn.sock.recv(65536):
                    pass
            except OSError:
                pass
            return False
        elif path == "/head-test":
            self._respond(conn, 200, HEAD_TEST_BODY, [("Content-Type", "text/plain")], head_only=head_only)
        elif path == "/204":
            self._respond(conn, 204)
        elif path == "/304":
            self._respond(conn, 304, headers=[("ETag", '"abc"')])
        elif path == "/hop":
            out = b"HTTP/1.1 200 OK\r\n"
            for n, v in HOP_RESPONSE_HEADERS:
                out += ("%s: %s\r\n" % (n, v)).encode()
            out += b"Transfer-Encoding: chunked\r\n\r\n5\r\nhop-b\r\n3\r\nody\r\n0\r\n\r\n"
            self._send(conn, out)
        else:
            self._respond(conn, 404, b"origin: unknown path %s\n" % path.encode())
        return not client_close


class RefusedPort:
    """A port on which connections are refused: a socket bound but not listening
    (the kernel answers SYN with RST, and no other process can take the port)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


class Blackhole:
    """A port where connects hang: a listening socket with backlog 0 that never
    accepts, whose accept queue has been filled. Linux drops further SYNs while
    the accept queue is full, so a connect stays in SYN-SENT until it times out."""

    def __init__(self, max_fillers=64):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        self.ok = False
        import errno
        import select

        for _ in range(max_fillers):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            err = c.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(c)
            if err not in (0, errno.EINPROGRESS):
                break
            if err == 0:
                continue
            _, w, _ = select.select([], [c], [], 0.3)
            if not w:  # handshake did not complete: the queue is full
                self.ok = self.probe()
                break

    def probe(self, wait=0.5):
        """True when a fresh connect does not complete within `wait` seconds."""
        import select

        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect_ex(("127.0.0.1", self.port))
            _, w, _ = select.select([], [c], [], wait)
            return not w
        finally:
            c.close()

    def close(self):
        for c in self.fillers:
            c.close()
        self.sock.close()
