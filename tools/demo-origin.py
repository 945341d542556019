#!/usr/bin/python3
"""The demo's origin: answers every request with what it received, so the
headers the sidecar adds (x-request-id, x-forwarded-for, ...) can be seen."""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes

    def do_GET(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        lines = [f"hello from the origin: {self.command} {self.path}",
                 "headers the origin received:"]
        lines += [f"  {k}: {v}" for k, v in self.headers.items()]
        if body:
            lines.append(f"body: {len(body)} bytes")
        out = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_POST = do_GET

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 18080
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
