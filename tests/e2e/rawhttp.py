"""Raw-socket HTTP/1.1 client helpers: send exact bytes, read exact responses."""

import socket
import time


class Closed(Exception):
    """The peer closed (or reset) the connection before a complete response."""


class Response:
    def __init__(self, version, status, reason, headers, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.raw_head = raw_head
        self.body = b""
        self.framing = None  # "length", "chunked", "close", "none"
        self.interim = []  # 1xx responses seen before this one

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def has_header(self, name):
        return any(n.lower() == name.lower() for n, _ in self.headers)

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %d %r headers=%r body=%r>" % (self.status, self.reason, self.headers, self.body[:300])


def build_request(method="GET", path="/echo", host="origin.test", headers=(), body=b"", version="HTTP/1.1", content_length=True):
    out = ["%s %s %s" % (method, path, version)]
    if host is not None:
        out.append("Host: %s" % host)
    for n, v in headers:
        out.append("%s: %s" % (n, v))
    if body and content_length and not any(n.lower() in ("content-length", "transfer-encoding") for n, _ in headers):
        out.append("Content-Length: %d" % len(body))
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body


def chunked(body, sizes=(1, 5, 100, 1000)):
    """Chunked encoding of body with the given chunk sizes (the rest in one last chunk)."""
    out = bytearray()
    pos = 0
    for s in sizes:
        if pos >= len(body):
            break
        piece = body[pos : pos + s]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
        pos += len(piece)
    if pos < len(body):
        out += b"%x\r\n" % (len(body) - pos) + body[pos:] + b"\r\n"
    out += b"0\r\n\r\n"
    return bytes(out)


class Conn:
    """One client TCP connection with an input buffer."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, idle_timeout=None):
        """timeout bounds each send and each read_response as a whole; idle_timeout,
        when set, bounds each wait for progress instead (for long transfers)."""
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.sent = 0
        self.received = 0

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.settimeout(self.idle_timeout or self.timeout)
        self.sock.sendall(data)
        self.sent += len(data)

    def _fill(self, deadline):
        if self.eof:
            raise Closed("connection closed by peer")
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out waiting for data (%d bytes received on this connection)" % self.received)
        wait = min(left, self.idle_timeout) if self.idle_timeout else left
        self.sock.settimeout(wait)
        try:
            d = self.sock.recv(262144)
        except socket.timeout:
            raise socket.timeout("no data for %.1fs (%d bytes received on this connection)" % (wait, self.received))
        except ConnectionResetError:
            self.eof = True
            raise Closed("connection reset by peer")
        if not d:
            self.eof = True
            raise Closed("connection closed by peer")
        self.received += len(d)
        self.buf += d

    def _read_line(self, deadline, limit=1 << 20):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return line
            if len(self.buf) > limit:
                raise ValueError("line too long")
            self._fill(deadline)

    def _read_exact(self, n, deadline, sink):
        while n > 0:
            if not self.buf:
                self._fill(deadline)
            k = min(n, len(self.buf))
            sink(bytes(self.buf[:k]))
            del self.buf[:k]
            n -= k

    def read_head(self, deadline):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[:i])
                del self.buf[: i + 4]
                return head
            self._fill(deadline)

    def read_response(self, method="GET", timeout=None, body_sink=None, return_interim=False):
        """Reads one response, with the framing RFC 9112 gives it. 1xx responses are
        collected in .interim (or returned when return_interim). With body_sink,
        body bytes are passed to it instead of being stored."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        interim = []
        while True:
            head = self.read_head(deadline)
            lines = head.split(b"\r\n")
            parts = lines[0].decode("latin-1").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise ValueError("bad status line %r" % lines[0])
            headers = []
            for ln in lines[1:]:
                n, sep, v = ln.partition(b":")
                if not sep:
                    raise ValueError("bad response header line %r" % ln)
                headers.append((n.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
            resp = Response(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers, head)
            if 100 <= resp.status < 200 and resp.status != 101:
                resp.framing = "none"
                if return_interim:
                    return resp
                interim.append(resp)
                continue
            break
        resp.interim = interim
        chunks = []
        sink = body_sink or chunks.append
        te = resp.header_all("transfer-encoding")
        cl = resp.header_all("content-length")
        if method == "HEAD" or resp.status in (204, 304):
            resp.framing = "none"
        elif te:
            if te[-1].split(",")[-1].strip().lower() != "chunked":
                raise ValueError("response transfer-encoding %r" % te)
            resp.framing = "chunked"
            while True:
                line = self._read_line(deadline)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    for _ in range(1000):  # trailers
                        if self._read_line(deadline) == b"":
                            break
                    else:
                        raise ValueError("too many trailer lines")
                    break
                self._read_exact(size, deadline, sink)
                if self._read_line(deadline) != b"":
                    raise ValueError("chunk data not followed by CRLF")
        elif cl:
            if len(set(cl)) != 1:
                raise ValueError("conflicting content-length %r" % cl)
            resp.framing = "length"
            self._read_exact(int(cl[0]), deadline, sink)
        else:
            resp.framing = "close"
            while True:
                if self.buf:
                    sink(bytes(self.buf))
                    self.buf.clear()
                try:
                    self._fill(deadline)
                except Closed:
                    break
        if body_sink is None:
            resp.body = b"".join(chunks)
        return resp

    def wait_closed(self, timeout=3.0):
        """Returns "closed" when the peer closes or resets within timeout (buffered
        data is discarded), "data" if it sends more data first, "open" otherwise."""
        if self.buf:
            return "data"
        if self.eof:
            return "closed"
        deadline = time.monotonic() + timeout
        try:
            self._fill(deadline)
        except Closed:
            return "closed"
        except socket.timeout:
            return "open"
        return "data"


def request(port, raw, method="GET", timeout=5.0, **kw):
    """Sends raw bytes on a new connection and reads one response."""
    with Conn(port, timeout=timeout) as c:
        c.send(raw)
        return c.read_response(method=method, **kw)


def wait_port_refused(port, timeout=2.0):
    """Polls until connecting to port is refused. Returns True when it is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        finally:
            s.close()
        time.sleep(0.02)
    return False
