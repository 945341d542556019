#!/usr/bin/python3
"""An HTTP/1.1 origin that stalls: every answer written in the window
[offset, offset + stall) of each period waits until the window ends.

  stall-origin.py [--port N] [--period 1.0] [--stall 0.1] [--offset 0.5]

Prints the port it listens on (127.0.0.1), then serves keep-alive requests
with `200 ok` until killed. Used to check that ringside-load's corrected
latency shows a stall that a closed-loop client's does not
(tools/loadgen/README.md)."""

import argparse
import socket
import sys
import threading
import time

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"


def serve(conn, t0, args):
    try:
        answer(conn, t0, args)
    except OSError:
        pass  # the client went away: nothing to report


def answer(conn, t0, args):
    buf = b""
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            while b"\r\n\r\n" not in buf:
                d = conn.recv(65536)
                if not d:
                    return
                buf += d
            _, buf = buf.split(b"\r\n\r\n", 1)  # requests without bodies only
            phase = (time.monotonic() - t0) % args.period
            if args.offset <= phase < args.offset + args.stall:
                time.sleep(args.offset + args.stall - phase)
            conn.sendall(RESPONSE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--period", type=float, default=1.0)
    ap.add_argument("--stall", type=float, default=0.1)
    ap.add_argument("--offset", type=float, default=0.5)
    args = ap.parse_args()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(128)
    print(ls.getsockname()[1], flush=True)
    t0 = time.monotonic()
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c, t0, args), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
