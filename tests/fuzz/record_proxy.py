#!/usr/bin/python3
"""A recording Kafka proxy for seeding tests/fuzz/corpus/request.

usage: record_proxy.py LISTEN_PORT UPSTREAM_HOST:PORT OUT_DIR [API_KEY ...]

Accepts client connections on 127.0.0.1:LISTEN_PORT, forwards every byte to
UPSTREAM and back, and writes each client request frame body (the bytes after
the int32 size: header + request) whose api key is listed (all when none) to
OUT_DIR/req-<key>-v<version>-<n>, skipping bodies already recorded. Start the
broker with advertised.listeners pointing at the proxy so clients keep
talking through it (Metadata and FindCoordinator answers name it). Runs until
killed. Python stdlib only.
"""
import hashlib
import os
import socket
import struct
import sys
import threading

lock = threading.Lock()
seen = set()
counts = {}


def record(out, keys, body):
    if len(body) < 4:
        return
    key, ver = struct.unpack_from(">hh", body)
    if keys and key not in keys:
        return
    digest = hashlib.sha1(body[8:]).digest()  # ignore the correlation id
    with lock:
        if (key, ver, digest) in seen:
            return
        seen.add((key, ver, digest))
        n = counts.get((key, ver), 0)
        while os.path.exists(os.path.join(out, "req-%d-v%d-%d" % (key, ver, n))):
            n += 1
        counts[(key, ver)] = n + 1
        with open(os.path.join(out, "req-%d-v%d-%d" % (key, ver, n)), "wb") as f:
            f.write(body)


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b


def client_to_upstream(cs, us, out, keys):
    try:
        while True:
            hdr = recv_exact(cs, 4)
            if hdr is None:
                break
            body = recv_exact(cs, struct.unpack(">i", hdr)[0])
            if body is None:
                break
            record(out, keys, body)
            us.sendall(hdr + body)
    except OSError:
        pass
    for s in (cs, us):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def upstream_to_client(us, cs):
    try:
        while True:
            b = us.recv(65536)
            if not b:
                break
            cs.sendall(b)
    except OSError:
        pass
    try:
        cs.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    port, (host, uport), out = int(sys.argv[1]), sys.argv[2].rsplit(":", 1), sys.argv[3]
    keys = {int(k) for k in sys.argv[4:]}
    os.makedirs(out, exist_ok=True)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    while True:
        cs, _ = ls.accept()
        us = socket.create_connection((host, int(uport)))
        threading.Thread(target=client_to_upstream, args=(cs, us, out, keys), daemon=True).start()
        threading.Thread(target=upstream_to_client, args=(us, cs), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
