"""A gRPC peer for ringside's end-to-end tests: a server on 127.0.0.1 with a
unary, a server-streaming, a client-streaming and a bidi-streaming method, a
client for it, and a raw HTTP/2 client that shows what a proxy puts on the wire.

No protoc: the service is registered with grpc.method_handlers_generic_handler
and messages are raw bytes (identity serializers), so a test reads exactly the
bytes that were sent. The wire format is gRPC's PROTOCOL-HTTP2.md: a request
is HEADERS (:method POST, :path /service/method, content-type
application/grpc, te: trailers, grpc-timeout, custom metadata), DATA made of
length-prefixed messages, and a response is HEADERS, DATA, then trailers
carrying grpc-status and grpc-message (or one HEADERS block, Trailers-Only).

Service ringside.test.Peer, methods (full paths in UNARY, SERVER_STREAM,
CLIENT_STREAM, BIDI):
  Unary         answers the request's bytes, or x-response-bytes bytes of pattern(n)
  ServerStream  answers x-count messages (default 3), b"msg-<i>" or x-message-bytes
                bytes of pattern each, x-interval-ms apart (default 0)
  ClientStream  reads every message, answers JSON {"count", "bytes", "sha256"}
  Bidi          answers each message as it arrives with b"echo:" + message

Request metadata every method reads:
  x-echo-*          returned unchanged in the response's initial metadata
  x-trail-*         returned unchanged in the trailing metadata
  x-fail            "CODE:N": the first N attempts (per x-attempt-key) end at once
                    with status CODE (a grpc.StatusCode name) and message
                    "attempt <k> failed", as Trailers-Only: no message, no
                    initial metadata, which is what a proxy may retry on
  x-attempt-key     the counter x-fail counts on (default: the method's path)
  x-sleep-ms        waits this long before answering, ending early if the call ends
  x-hold-ms         (ClientStream, Bidi) after the request stream's end, waits this long
                    before answering, ending early if the call ends
  x-status, x-message   after the messages, ends the call with this status and message
  x-message-bin     the message as UTF-8 (metadata values are ASCII, -bin ones any bytes)

Every call is recorded as a Call (method, metadata, attempt number, the
deadline the server saw, whether it was cancelled) in Server.calls.
"""

import hashlib
import json
import random
import socket
import threading
import time
from concurrent import futures

import grpc

SERVICE = "ringside.test.Peer"
UNARY = "/%s/Unary" % SERVICE
SERVER_STREAM = "/%s/ServerStream" % SERVICE
CLIENT_STREAM = "/%s/ClientStream" % SERVICE
BIDI = "/%s/Bidi" % SERVICE

# Messages of several MiB go both ways; gRPC's default receive limit is 4 MiB.
MAX_MESSAGE = 64 * 1024 * 1024
_MSG_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
]


def pattern(n, seed=0):
    """n bytes that do not compress and are the same on both sides."""
    return random.Random(seed).randbytes(n)


def status_code(name):
    """grpc.StatusCode from its name ("NOT_FOUND") or number ("5")."""
    name = name.strip()
    for c in grpc.StatusCode:
        if c.name == name.upper() or str(c.value[0]) == name:
            return c
    raise ValueError("no gRPC status named %r" % name)


class Call:
    """One call as the server saw it."""

    def __init__(self, method, metadata, peer, attempt, time_remaining):
        self.method = method
        self.metadata = metadata  # [(key, value)] as received; values of -bin keys are bytes
        self.peer = peer
        self.attempt = attempt  # 1 for the first call with this attempt key
        self.time_remaining = time_remaining  # seconds left of the client's deadline, None without one
        self.started = time.monotonic()
        self.ended_at = None  # monotonic time the RPC terminated (any reason)
        self.finished = False  # the handler produced its whole answer
        self.ended = threading.Event()
        self.cancelled = threading.Event()  # the RPC ended before the handler finished

    def md(self, key):
        """The first value of request metadata `key`, or None."""
        for k, v in self.metadata:
            if k == key:
                return v
        return None

    def md_all(self, key):
        return [v for k, v in self.metadata if k == key]

    def _on_end(self):
        self.ended_at = time.monotonic()
        if not self.finished:
            self.cancelled.set()
        self.ended.set()


class _Abort(Exception):
    pass


class Server:
    """The gRPC server (grpcio, h2c prior knowledge) on 127.0.0.1:port."""

    def __init__(self, workers=32):
        self.calls = []
        self.attempts = {}  # attempt key -> calls seen
        self._lock = threading.Lock()
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers),
            options=_MSG_OPTIONS + [("grpc.so_reuseport", 0)],
            maximum_concurrent_rpcs=None,
        )
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(self._unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(self._server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(self._client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(self._bidi),
        }
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        if not self.port:
            raise RuntimeError("grpc: could not bind 127.0.0.1:0")

    def start(self):
        self._server.start()
        return self

    def stop(self):
        self._server.stop(grace=0).wait(5)

    def attempts_for(self, key):
        with self._lock:
            return self.attempts.get(key, 0)

    def calls_to(self, method):
        return [c for c in list(self.calls) if c.method == method]

    # ------------------------------------------------------------ common
    def _begin(self, method, context):
        md = list(context.invocation_metadata())
        key = dict(md).get("x-attempt-key", method)
        with self._lock:
            n = self.attempts.get(key, 0) + 1
            self.attempts[key] = n
        call = Call(method, md, context.peer(), n, context.time_remaining())
        with self._lock:
            self.calls.append(call)
        context.add_callback(call._on_end)
        fail = call.md("x-fail")
        if fail:
            code, _, times = fail.partition(":")
            if n <= int(times or "1"):
                call.finished = True
                context.abort(status_code(code), "attempt %d failed" % n)
        sleep_ms = call.md("x-sleep-ms")
        if sleep_ms:
            deadline = time.monotonic() + int(sleep_ms) / 1000.0
            while time.monotonic() < deadline and context.is_active():
                time.sleep(0.005)
        initial = [(k, v) for k, v in md if k.startswith("x-echo-")]
        if initial:
            context.send_initial_metadata(initial)
        trailing = [(k, v) for k, v in md if k.startswith("x-trail-")]
        if trailing:
            context.set_trailing_metadata(trailing)
        return call

    @staticmethod
    def _hold(call, context):
        """After the request stream's end: wait x-hold-ms while the call lasts."""
        hold = call.md("x-hold-ms")
        if hold:
            end = time.monotonic() + int(hold) / 1000.0
            while time.monotonic() < end and context.is_active():
                time.sleep(0.005)

    @staticmethod
    def _end(call, context):
        """Called after the last message: the status x-status asks for. A
        call no longer active got here because it was cancelled (grpcio may
        end the request iterator before it reports the cancellation)."""
        want = call.md("x-status")
        call.finished = context.is_active()
        if want:
            raw = call.md("x-message-bin")
            context.abort(status_code(want), raw.decode() if raw is not None else call.md("x-message") or "")

    # ------------------------------------------------------------ methods
    def _unary(self, request, context):
        call = self._begin(UNARY, context)
        n = call.md("x-response-bytes")
        answer = pattern(int(n)) if n else request
        self._end(call, context)
        return answer

    def _server_stream(self, request, context):
        call = self._begin(SERVER_STREAM, context)
        count = int(call.md("x-count") or 3)
        size = call.md("x-message-bytes")
        interval = int(call.md("x-interval-ms") or 0) / 1000.0
        for i in range(count):
            if i and interval:
                end = time.monotonic() + interval
                while time.monotonic() < end and context.is_active():
                    time.sleep(0.005)
            if not context.is_active():
                return
            yield pattern(int(size), seed=i) if size else b"msg-%d" % i
        self._end(call, context)

    def _client_stream(self, request_iterator, context):
        call = self._begin(CLIENT_STREAM, context)
        h = hashlib.sha256()
        count = total = 0
        for m in request_iterator:
            count += 1
            total += len(m)
            h.update(m)
        self._hold(call, context)
        self._end(call, context)
        return json.dumps({"count": count, "bytes": total, "sha256": h.hexdigest()}).encode()

    def _bidi(self, request_iterator, context):
        call = self._begin(BIDI, context)
        for m in request_iterator:
            yield b"echo:" + m
        self._hold(call, context)
        self._end(call, context)


# ---------------------------------------------------------------- client


class Result:
    """What a gRPC client saw of one call."""

    def __init__(self, code, details, initial, trailing, responses, elapsed):
        self.code = code  # grpc.StatusCode
        self.details = details
        self.initial = list(initial or [])  # [(key, value)]
        self.trailing = list(trailing or [])
        self.responses = responses  # [bytes]
        self.elapsed = elapsed  # seconds

    def initial_md(self, key):
        return [v for k, v in self.initial if k == key]

    def trailing_md(self, key):
        return [v for k, v in self.trailing if k == key]

    def __repr__(self):
        return "Result(code=%s, details=%r, initial=%r, trailing=%r, %d responses, %.3fs)" % (
            self.code, self.details, self.initial, self.trailing, len(self.responses), self.elapsed)


class Client:
    """A grpcio channel to 127.0.0.1:port that names `authority` in :authority.

    Its own retries, proxy discovery and subchannel sharing are off, so each
    call is one HTTP/2 stream on this channel's own connection."""

    def __init__(self, port, authority, host="127.0.0.1", options=()):
        opts = _MSG_OPTIONS + [
            ("grpc.default_authority", authority),
            ("grpc.enable_retries", 0),
            ("grpc.enable_http_proxy", 0),
            ("grpc.use_local_subchannel_pool", 1),
        ] + list(options)
        self.channel = grpc.insecure_channel("%s:%d" % (host, port), options=opts)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _finish(self, t0, fn):
        try:
            responses, call = fn()
            return Result(call.code(), call.details(), call.initial_metadata(), call.trailing_metadata(), responses,
                          time.monotonic() - t0)
        except grpc.RpcError as e:
            return Result(e.code(), e.details(), e.initial_metadata(), e.trailing_metadata(), [], time.monotonic() - t0)

    def unary(self, request=b"", metadata=(), timeout=10.0):
        t0 = time.monotonic()
        stub = self.channel.unary_unary(UNARY)

        def run():
            resp, call = stub.with_call(request, metadata=list(metadata), timeout=timeout)
            return [resp], call

        return self._finish(t0, run)

    def server_stream(self, request=b"", metadata=(), timeout=10.0):
        t0 = time.monotonic()
        stub = self.channel.unary_stream(SERVER_STREAM)
        out = []

        def run():
            call = stub(request, metadata=list(metadata), timeout=timeout)
            for m in call:
                out.append(m)
            return out, call

        r = self._finish(t0, run)
        r.responses = out  # the messages that came before an error, too
        return r

    def server_stream_call(self, request=b"", metadata=(), timeout=30.0):
        """The call object itself (an iterator with cancel()), for tests that cancel."""
        return self.channel.unary_stream(SERVER_STREAM)(request, metadata=list(metadata), timeout=timeout)

    def client_stream(self, requests, metadata=(), timeout=10.0):
        t0 = time.monotonic()
        stub = self.channel.stream_unary(CLIENT_STREAM)

        def run():
            resp, call = stub.with_call(iter(requests), metadata=list(metadata), timeout=timeout)
            return [resp], call

        return self._finish(t0, run)

    def bidi(self, requests, metadata=(), timeout=10.0):
        """Ping-pong: each request is sent only after the answer to the one
        before has arrived, so the test shows the stream is full duplex (a
        proxy that waits for the request's end would hang until timeout)."""
        t0 = time.monotonic()
        stub = self.channel.stream_stream(BIDI)
        requests = list(requests)
        out = []
        got = threading.Semaphore(0)

        def gen():
            for i, m in enumerate(requests):
                if i and not got.acquire(timeout=timeout):
                    return
                yield m

        def run():
            call = stub(gen(), metadata=list(metadata), timeout=timeout)
            for m in call:
                out.append(m)
                got.release()
            return out, call

        r = self._finish(t0, run)
        r.responses = out
        return r


# ---------------------------------------------------------------- raw HTTP/2


def grpc_frame(message, compressed=False):
    """A length-prefixed message (PROTOCOL-HTTP2.md: Compressed-Flag, Message-Length, Message)."""
    return bytes([1 if compressed else 0]) + len(message).to_bytes(4, "big") + message


def grpc_unframe(data):
    """The messages in a DATA payload; raises ValueError on a cut message."""
    out = []
    i = 0
    while i < len(data):
        if len(data) - i < 5:
            raise ValueError("a cut message prefix")
        n = int.from_bytes(data[i + 1:i + 5], "big")
        if len(data) - i - 5 < n:
            raise ValueError("a cut message")
        out.append(data[i + 5:i + 5 + n])
        i += 5 + n
    return out


class RawResponse:
    def __init__(self):
        self.headers = None  # [(name, value)] of the first HEADERS, as str
        self.trailers = None  # [(name, value)] of the trailing HEADERS, None if none
        self.data = b""
        self.reset = None  # RST_STREAM error code, if the stream was reset
        self.goaway = None
        self.closed = False  # the connection closed before the stream ended
        self.elapsed = None
        self.sent = 0  # request body bytes sent

    def header(self, name):
        for k, v in self.headers or []:
            if k == name:
                return v
        return None

    def grpc_status(self):
        """grpc-status from the trailers, or from the headers of a Trailers-Only response."""
        for block in (self.trailers, self.headers if self.trailers is None else None):
            for k, v in block or []:
                if k == "grpc-status":
                    return int(v)
        return None

    def grpc_message(self):
        for block in (self.trailers, self.headers if self.trailers is None else None):
            for k, v in block or []:
                if k == "grpc-message":
                    return v
        return None

    def __repr__(self):
        return "RawResponse(headers=%r, trailers=%r, %d data bytes, reset=%r, goaway=%r, closed=%r, %.3fs)" % (
            self.headers, self.trailers, len(self.data), self.reset, self.goaway, self.closed, self.elapsed or 0)


def raw_call(port, authority, path, messages=(b"",), metadata=(), timeout=10.0, host="127.0.0.1", tls=None):
    """One gRPC call made by hand with Python's h2 (prior knowledge, or TLS
    with ALPN h2 when tls is an ssl.SSLContext). Unlike grpcio it enforces no
    deadline of its own, so what it reads is what the proxy did."""
    import h2.config
    import h2.connection
    import h2.events

    r = RawResponse()
    t0 = time.monotonic()
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if tls is not None:
            tls.set_alpn_protocols(["h2"])
            sock = tls.wrap_socket(sock, server_hostname=None)
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        hdrs = [(":method", "POST"), (":scheme", "https" if tls else "http"), (":path", path),
                (":authority", authority), ("content-type", "application/grpc"), ("te", "trailers")]
        hdrs += list(metadata)
        conn.send_headers(sid, hdrs)
        body = b"".join(grpc_frame(m) for m in messages)
        sent = 0
        if not body:
            conn.end_stream(sid)
        sock.sendall(conn.data_to_send())
        deadline = t0 + timeout
        done = False
        while not done:
            # Send what the peer's windows allow (RFC 9113 §6.9), then read.
            while sent < len(body):
                n = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, len(body) - sent)
                if n <= 0:
                    break
                sent += n
                conn.send_data(sid, body[sent - n:sent], end_stream=sent == len(body))
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no end of stream within %.1fs (%d of %d body bytes sent): %r" %
                                   (timeout, sent, len(body), r))
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                r.closed = True
                break
            for ev in conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    r.headers = list(ev.headers)
                elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                    r.trailers = list(ev.headers)
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    r.data += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    done = True
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    r.reset = ev.error_code
                    done = True
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    r.goaway = ev.error_code
                    done = True
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
        r.sent = sent
        r.elapsed = time.monotonic() - t0
        return r
    finally:
        sock.close()


class StallingServer:
    """An HTTP/2 server (h2c prior knowledge, Python's h2) that reads each
    request and never answers it: an upstream that ignores grpc-timeout, so
    a deadline that ends the call can only be the proxy's. It records each
    request's headers and the RST_STREAMs it receives, with their times."""

    def __init__(self):
        import h2.config

        self._config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.requests = []  # (monotonic time, [(name, value)])
        self.resets = []  # (monotonic time, stream id, error code)
        self.errors = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._conns = []

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self._stop.set()
        self._sock.close()
        for c in list(self._conns):
            try:
                c.close()
            except OSError:
                pass

    def _accept(self):
        while not self._stop.is_set():
            try:
                c, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        import h2.connection
        import h2.events

        conn = h2.connection.H2Connection(config=self._config)
        try:
            conn.initiate_connection()
            c.sendall(conn.data_to_send())
            while not self._stop.is_set():
                data = c.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    now = time.monotonic()
                    with self._lock:
                        if isinstance(ev, h2.events.RequestReceived):
                            self.requests.append((now, list(ev.headers)))
                        elif isinstance(ev, h2.events.StreamReset):
                            self.resets.append((now, ev.stream_id, ev.error_code))
                    if isinstance(ev, h2.events.DataReceived):
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                out = conn.data_to_send()
                if out:
                    c.sendall(out)
        except OSError:
            pass
        except Exception as e:  # a protocol error of the proxy's, or ours
            self.errors.append(repr(e))
        finally:
            c.close()
