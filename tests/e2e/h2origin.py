"""An HTTP/2 origin (h2c with prior knowledge, or TLS with ALPN h2) for the
tests of ringside's upstream HTTP/2, on Python's h2, in threads of the
pytest process. Every request is recorded (headers as received, body).

Behaviour by path:
  /echo               200, JSON: method, path, authority, scheme, headers (list of
                      [name, value] as received), body_len, body_sha256
  /trailers           200 with a body, then trailers grpc-status: 0, x-trailer: yes
  /only-trailers      a trailers-only response (HEADERS with END_STREAM, grpc-status 14)
  /download?bytes=N   N bytes of a pattern, in 16 KiB DATA frames, as the window allows
  /refuse             RST_STREAM REFUSED_STREAM (the request was not processed)
  /slow?ms=N          200 after N ms
  anything else       404
"""

import hashlib
import json
import socket
import ssl
import threading
import time
import urllib.parse

import h2.config
import h2.connection
import h2.events
import h2.errors
import h2.exceptions


def pattern(n):
    block = bytes(range(256)) * 64
    out = bytearray()
    while len(out) < n:
        out += block
    return bytes(out[:n])


class H2Origin:
    def __init__(self, tls=None):
        """tls: (certfile, keyfile, cafile) to serve TLS with ALPN h2 and ask
        for a client certificate, else clear text (prior knowledge)."""
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.connections = 0
        self.refused = 0
        self.errors = []  # protocol errors the origin saw
        self.lock = threading.Lock()
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(tls[0], tls[1])
            if tls[2]:
                self.ctx.load_verify_locations(tls[2])
                self.ctx.verify_mode = ssl.CERT_REQUIRED
            self.ctx.set_alpn_protocols(["h2"])
        self.alpn = []
        self.live = []  # sockets of open connections
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        """Stops listening and closes every connection."""
        self.closing = True
        for s in [self.sock] + self.live:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            if self.ctx:
                c = self.ctx.wrap_socket(c, server_side=True)
                self.alpn.append(c.selected_alpn_protocol())
            with self.lock:
                self.connections += 1
                self.live.append(c)
            self._session(c)
        except (OSError, ssl.SSLError):
            pass
        except h2.exceptions.ProtocolError as e:
            self.errors.append(repr(e))
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _session(self, c):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        c.sendall(conn.data_to_send())
        streams = {}
        pending = {}  # stream id -> remaining bytes to send
        lock = threading.Lock()

        wlock = threading.Lock()

        def send():
            # One writer at a time, in the order the bytes were produced:
            # frames of two threads must not interleave out of order.
            with wlock:
                with lock:
                    data = conn.data_to_send()
                if data:
                    c.sendall(data)

        def pump(sid):
            with lock:
                left = pending.get(sid)
                if left is None:
                    return
                while left:
                    room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, len(left))
                    if room <= 0:
                        break
                    conn.send_data(sid, left[:room])
                    left = left[room:]
                if left:
                    pending[sid] = left
                else:
                    del pending[sid]
                    conn.end_stream(sid)
            send()

        def respond(sid, req):
            try:
                answer(sid, req)
            except (h2.exceptions.StreamClosedError, OSError):
                pass  # the proxy reset the stream (a deadline, a cancel) or left

        def answer(sid, req):
            path = req["path"]
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            base = urllib.parse.urlsplit(path).path
            if base == "/slow":
                time.sleep(int(q.get("ms", ["100"])[0]) / 1000)
            with lock:
                if base == "/echo":
                    body = json.dumps(req, sort_keys=True).encode()
                    conn.send_headers(sid, [(":status", "200"), ("content-type", "application/json"), ("content-length", str(len(body)))])
                    pending[sid] = body
                elif base == "/trailers":
                    conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
                    conn.send_data(sid, b"payload")
                    conn.send_headers(sid, [("grpc-status", "0"), ("x-trailer", "yes")], end_stream=True)
                elif base == "/only-trailers":
                    conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "14"), ("grpc-message", "try later")], end_stream=True)
                elif base == "/download":
                    n = int(q.get("bytes", ["0"])[0])
                    conn.send_headers(sid, [(":status", "200"), ("content-length", str(n))])
                    pending[sid] = pattern(n)
                elif base == "/refuse":
                    self.refused += 1
                    conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
                elif base == "/slow":
                    conn.send_headers(sid, [(":status", "200"), ("content-length", "2")])
                    pending[sid] = b"ok"
                else:
                    conn.send_headers(sid, [(":status", "404"), ("content-length", "0")], end_stream=True)
            send()
            pump(sid)

        while True:
            data = c.recv(65536)
            if not data:
                return
            with lock:
                events = conn.receive_data(data)
            for e in events:
                if isinstance(e, h2.events.RequestReceived):
                    h = e.headers
                    pseudo = {k: v for k, v in h if k.startswith(":")}
                    streams[e.stream_id] = {
                        "method": pseudo.get(":method"),
                        "path": pseudo.get(":path"),
                        "authority": pseudo.get(":authority"),
                        "scheme": pseudo.get(":scheme"),
                        "headers": [[k, v] for k, v in h if not k.startswith(":")],
                        "body": b"",
                    }
                elif isinstance(e, h2.events.DataReceived):
                    if e.stream_id in streams:
                        streams[e.stream_id]["body"] += e.data
                    with lock:
                        conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                elif isinstance(e, h2.events.StreamEnded):
                    req = streams.pop(e.stream_id, None)
                    if req is None:
                        continue
                    body = req.pop("body")
                    req["body_len"] = len(body)
                    req["body_sha256"] = hashlib.sha256(body).hexdigest()
                    with self.lock:
                        self.requests.append(req)
                    threading.Thread(target=respond, args=(e.stream_id, req), daemon=True).start()
                elif isinstance(e, h2.events.WindowUpdated):
                    for sid in list(pending):
                        pump(sid)
                elif isinstance(e, h2.events.StreamReset):
                    with lock:
                        pending.pop(e.stream_id, None)
            send()
