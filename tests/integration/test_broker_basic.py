#!/usr/bin/python3
"""Integration test: the real stratad on loopback, driven with raw sockets.

usage: test_broker_basic.py STRATAD [--kcat]

Starts STRATAD on a free loopback port with its own temp data directory,
checks ApiVersions v0/v3/too-new, Metadata v0/v1/v4/v6, pipelining order,
read back-pressure, bad frames (garbage, 2 GiB size, truncated, unknown API,
unsupported version, malformed body) and the idle timeout, then SIGTERMs it
by pid and expects exit status 0. With --kcat it instead checks that
`kcat -L` lists the broker and a topic (exit 77 when kcat is missing).

Python stdlib only. Exit 0 = pass, 1 = fail, 77 = skipped.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

IDLE_MS = 2000


def fail(msg):
    print("FAIL: " + msg, flush=True)
    raise SystemExit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- wire helpers --------------------------------------------------------------

def frame(body):
    return struct.pack(">i", len(body)) + body


def request(key, ver, corr, body=b"", client_id=b"it", flexible=False):
    hdr = struct.pack(">hhih", key, ver, corr, len(client_id)) + client_id
    if flexible:
        hdr += b"\x00"  # empty header tag buffer
    return frame(hdr + body)


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_response(sock):
    (n,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, n)


class Rd:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, n):
        if self.p + n > len(self.b):
            fail("response truncated: wanted %d at %d of %d" % (n, self.p, len(self.b)))
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def i8(self): return struct.unpack(">b", self.take(1))[0]
    def i16(self): return struct.unpack(">h", self.take(2))[0]
    def i32(self): return struct.unpack(">i", self.take(4))[0]

    def uvarint(self):
        v = shift = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7f) << shift
            shift += 7
            if not b & 0x80:
                return v

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def done(self):
        if self.p != len(self.b):
            fail("%d trailing bytes in response" % (len(self.b) - self.p))


def expect_closed(sock, what, timeout=5.0):
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        data = b""
    except socket.timeout:
        fail("%s: broker kept the connection open" % what)
    if data:
        fail("%s: expected the connection closed, got %r" % (what, data[:40]))
    sock.close()
    print("ok: %s -> connection closed" % what, flush=True)


# ---- broker --------------------------------------------------------------------

class Broker:
    def __init__(self, exe, tmp, extra=()):
        self.port = free_port()
        self.log_path = os.path.join(tmp, "stratad.log")
        self.log = open(self.log_path, "wb")
        args = [exe,
                "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
                "--override", "log.dirs=%s" % os.path.join(tmp, "data"),
                "--override", "connections.max.idle.ms=%d" % IDLE_MS]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.dump()
                fail("stratad exited early with %d" % self.proc.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.dump()
        fail("stratad did not start listening")

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def dump(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            sys.stdout.write(f.read().decode(errors="replace"))

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.dump()
            fail("stratad did not stop within 15 s of SIGTERM")
        self.log.close()
        return rc


# ---- checks --------------------------------------------------------------------

EXPECTED_APIS = {0: (3, 7), 1: (4, 11), 2: (1, 3), 3: (0, 6), 18: (0, 3), 19: (0, 4),
                 20: (0, 3), 21: (0, 1), 22: (0, 1), 23: (2, 3), 32: (0, 2), 33: (0, 1),
                 37: (0, 1)}


def check_api_versions(b):
    s = b.connect()
    # v0
    s.sendall(request(18, 0, 11))
    r = Rd(read_response(s))
    if r.i32() != 11:
        fail("ApiVersions v0: correlation id")
    if r.i16() != 0:
        fail("ApiVersions v0: error code")
    apis = {}
    for _ in range(r.i32()):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        apis[k] = (lo, hi)
    r.done()
    if apis != EXPECTED_APIS:
        fail("ApiVersions v0 advertised %r" % apis)
    print("ok: ApiVersions v0 ->", apis, flush=True)

    # v3 exactly as librdkafka 2.0.2 sends it; response header stays v0
    body = b"\x0blibrdkafka\x062.0.2\x00"
    s.sendall(request(18, 3, 12, body, client_id=b"rdkafka", flexible=True))
    r = Rd(read_response(s))
    if r.i32() != 12 or r.i16() != 0:
        fail("ApiVersions v3: header/error")
    n = r.uvarint() - 1
    apis = {}
    for _ in range(n):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        if r.uvarint() != 0:
            fail("ApiVersions v3: element tags")
        apis[k] = (lo, hi)
    if r.i32() != 0:
        fail("ApiVersions v3: throttle")
    if r.uvarint() != 0:
        fail("ApiVersions v3: tags")
    r.done()
    if apis != EXPECTED_APIS:
        fail("ApiVersions v3 advertised %r" % apis)
    print("ok: ApiVersions v3 (flexible) ->", apis, flush=True)

    # v3 with a software name Kafka rejects -> INVALID_REQUEST, empty list
    s.sendall(request(18, 3, 13, b"\x02!\x02x\x00", flexible=True))
    r = Rd(read_response(s))
    if r.i32() != 13 or r.i16() != 42:
        fail("ApiVersions v3 bad name: expected error 42")
    print("ok: ApiVersions v3 with invalid software name -> 42", flush=True)

    # too new: v0-format reply with 35 and our ApiVersions range; conn stays
    s.sendall(request(18, 7, 14, b"\x00\x00\x00", flexible=True))
    r = Rd(read_response(s))
    if r.i32() != 14 or r.i16() != 35 or r.i32() != 1:
        fail("ApiVersions v7: expected v0-format error 35 with one entry")
    if (r.i16(), r.i16(), r.i16()) != (18, 0, 3):
        fail("ApiVersions v7: entry")
    r.done()
    s.sendall(request(18, 0, 15))
    r = Rd(read_response(s))
    if r.i32() != 15 or r.i16() != 0:
        fail("ApiVersions v0 after unsupported version")
    print("ok: ApiVersions v7 -> v0-format UNSUPPORTED_VERSION, connection kept", flush=True)
    s.close()


def parse_metadata(v, body):
    r = Rd(body)
    out = {}
    if v >= 3:
        r.i32()
    brokers = []
    for _ in range(r.i32()):
        node, host, port = r.i32(), r.string(), r.i32()
        if v >= 1:
            r.string()
        brokers.append((node, host, port))
    out["brokers"] = brokers
    if v >= 2:
        out["cluster"] = r.string()
    if v >= 1:
        out["controller"] = r.i32()
    topics = {}
    for _ in range(r.i32()):
        err, name = r.i16(), r.string()
        if v >= 1:
            r.i8()
        parts = []
        for _ in range(r.i32()):
            perr, idx, leader = r.i16(), r.i32(), r.i32()
            reps = [r.i32() for _ in range(r.i32())]
            isr = [r.i32() for _ in range(r.i32())]
            if v >= 5:
                [r.i32() for _ in range(r.i32())]
            parts.append((perr, idx, leader, reps, isr))
        topics[name] = (err, parts)
    out["topics"] = topics
    r.done()
    return out


def metadata(s, v, corr, topics, allow_auto=True):
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics)) + b"".join(kstr(t) for t in topics)
    if v >= 4:
        body += b"\x01" if allow_auto else b"\x00"
    s.sendall(request(3, v, corr, body))
    resp = read_response(s)
    (c,) = struct.unpack(">i", resp[:4])
    if c != corr:
        fail("Metadata v%d: correlation id %d != %d" % (v, c, corr))
    return parse_metadata(v, resp[4:])


def check_metadata(b):
    s = b.connect()
    m = metadata(s, 0, 21, [])  # v0: empty = all topics
    if m["brokers"] != [(0, "127.0.0.1", b.port)]:
        fail("Metadata v0 brokers %r" % m["brokers"])
    print("ok: Metadata v0 ->", m, flush=True)

    m = metadata(s, 1, 22, ["it-topic"])
    if m["topics"] != {"it-topic": (0, [(0, 0, 0, [0], [0])])} or m["controller"] != 0:
        fail("Metadata v1 auto-create: %r" % m)
    print("ok: Metadata v1 auto-creates it-topic ->", m["topics"], flush=True)

    m = metadata(s, 4, 23, ["nope"], allow_auto=False)
    if m["topics"] != {"nope": (3, [])}:
        fail("Metadata v4 allow_auto=false: %r" % m["topics"])
    m = metadata(s, 2, 24, ["bad/name"])
    if m["topics"] != {"bad/name": (17, [])}:
        fail("Metadata invalid name: %r" % m["topics"])
    m = metadata(s, 1, 25, [])
    if m["topics"] != {}:
        fail("Metadata v1 empty list must mean no topics: %r" % m["topics"])
    m6 = metadata(s, 6, 26, None)
    if set(m6["topics"]) != {"it-topic"} or not m6["cluster"] or len(m6["cluster"]) != 22:
        fail("Metadata v6 all topics: %r" % m6)
    print("ok: Metadata v4 no-auto -> 3, bad name -> 17, v1 [] -> none, v6 null -> all; "
          "cluster id %s" % m6["cluster"], flush=True)
    s.close()
    return m6["cluster"]


def check_pipelining(b):
    s = b.connect()
    reqs = b""
    n = 600
    for i in range(n):
        if i % 2:
            reqs += request(18, i % 3, 1000 + i)
        else:
            reqs += request(3, i % 7, 1000 + i, struct.pack(">i", 0) + (b"\x01" if i % 7 >= 4 else b""))
    s.sendall(reqs)
    for i in range(n):
        (c,) = struct.unpack(">i", read_response(s)[:4])
        if c != 1000 + i:
            fail("pipelining: response %d has correlation id %d" % (i, c))
    s.close()
    print("ok: %d pipelined requests answered in order" % n, flush=True)


def check_backpressure(b):
    # ~40 topics with long names make a "all topics" Metadata response ~10 KiB;
    # 1200 of them pipelined (~12 MiB) exceed the per-connection output bound,
    # so the broker must pause reading and resume as the client drains.
    s = b.connect()
    names = ["bp-%03d-" % i + "x" * 200 for i in range(40)]
    metadata(s, 1, 30, names)
    one = request(3, 1, 0, struct.pack(">i", -1))
    n = 1200
    s.sendall(b"".join(request(3, 1, 5000 + i, struct.pack(">i", -1)) for i in range(n)))
    time.sleep(0.5)
    total = 0
    for i in range(n):
        resp = read_response(s)
        (c,) = struct.unpack(">i", resp[:4])
        if c != 5000 + i:
            fail("back-pressure: response %d has correlation id %d" % (i, c))
        total += len(resp)
    s.close()
    print("ok: %d pipelined Metadata (%d MiB of responses) in order under back-pressure"
          % (n, total >> 20), flush=True)
    del one


def check_bad_input(b):
    s = b.connect()
    s.sendall(b"GARBAGE! this is not kafka\r\n")
    expect_closed(s, "garbage bytes")

    s = b.connect()
    s.sendall(struct.pack(">I", 0x80000000) + b"\x00" * 16)
    expect_closed(s, "2 GiB (negative) size prefix")

    s = b.connect()
    s.sendall(struct.pack(">i", 104857601))
    expect_closed(s, "size prefix above socket.request.max.bytes")

    s = b.connect()
    s.sendall(struct.pack(">i", 100) + b"\x00\x12\x00\x00\x00\x00")
    s.shutdown(socket.SHUT_WR)
    expect_closed(s, "truncated frame then EOF")

    s = b.connect()
    s.sendall(frame(b"\x00\x12\x00"))
    expect_closed(s, "frame shorter than a request header")

    s = b.connect()
    s.sendall(request(4, 0, 1, b"\x00" * 20))
    expect_closed(s, "unknown api key 4 (LeaderAndIsr)")

    s = b.connect()
    s.sendall(request(3, 7, 1, struct.pack(">i", 0) + b"\x01"))
    expect_closed(s, "Metadata v7 (unsupported version)")

    s = b.connect()
    s.sendall(request(3, 1, 1, struct.pack(">i", 5) + kstr("a")))
    expect_closed(s, "Metadata with a topic count past the end")

    s = b.connect()
    s.sendall(request(18, 0, 1) + request(3, 1, 2, struct.pack(">h", 9)))
    s.settimeout(5)
    r = Rd(read_response(s))  # the good request before the bad one is answered... or not
    if r.i32() != 1:
        fail("first response of a mixed pipeline")
    expect_closed(s, "malformed request after a good one")

    s = b.connect()
    s.sendall(request(18, 0, 77))
    r = Rd(read_response(s))
    if r.i32() != 77 or r.i16() != 0:
        fail("new connection after bad input")
    s.close()
    print("ok: broker still serves new connections after bad input", flush=True)


def check_idle_timeout(b):
    s = b.connect()
    t0 = time.time()
    expect_closed(s, "idle connection (connections.max.idle.ms=%d)" % IDLE_MS, timeout=IDLE_MS / 1000 + 5)
    took = time.time() - t0
    if took < IDLE_MS / 1000 * 0.8:
        fail("idle close came after %.2f s, before the %d ms limit" % (took, IDLE_MS))


def run_kcat(b):
    kcat = shutil.which("kcat")
    if not kcat:
        print("SKIP: kcat not installed (Debian package kcat; scripts/deps.sh installs it)")
        return 77
    s = b.connect()
    metadata(s, 1, 1, ["kcat-topic"])
    s.close()
    p = subprocess.run([kcat, "-b", "127.0.0.1:%d" % b.port, "-L", "-m", "10"],
                       capture_output=True, text=True, timeout=60)
    print(p.stdout + p.stderr, flush=True)
    if p.returncode != 0:
        fail("kcat -L exited %d" % p.returncode)
    if "broker 0 at 127.0.0.1:%d" % b.port not in p.stdout:
        fail("kcat -L does not list the broker")
    if 'topic "kcat-topic" with 1 partitions' not in p.stdout:
        fail("kcat -L does not list kcat-topic")
    print("ok: kcat -L lists broker 0 and kcat-topic", flush=True)
    return 0


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    exe = os.path.abspath(sys.argv[1])
    if not os.access(exe, os.X_OK):
        fail("%s is not executable (build first)" % exe)
    kcat_mode = "--kcat" in sys.argv[2:]
    if kcat_mode and not shutil.which("kcat"):
        print("SKIP: kcat not installed (Debian package kcat; scripts/deps.sh installs it)")
        return 77
    tmp = tempfile.mkdtemp(prefix="strata-it-")
    b = None
    ok = False
    try:
        b = Broker(exe, tmp)
        if kcat_mode:
            rc = run_kcat(b)
            if rc:
                return rc
        else:
            check_api_versions(b)
            cluster = check_metadata(b)
            check_pipelining(b)
            check_backpressure(b)
            check_bad_input(b)
            check_idle_timeout(b)
        rc = b.stop()
        if rc != 0:
            b.dump()
            fail("stratad exited with %d after SIGTERM (want 0)" % rc)
        print("ok: SIGTERM -> exit 0", flush=True)
        if not kcat_mode:
            # restart on the same data dir: the cluster id must be stable
            b = Broker(exe, tmp)
            s = b.connect()
            m = metadata(s, 2, 1, [])
            s.close()
            if m["cluster"] != cluster:
                fail("cluster id changed across restart: %s -> %s" % (cluster, m["cluster"]))
            rc = b.stop()
            if rc != 0:
                fail("second stop exited %d" % rc)
            print("ok: cluster id stable across restart", flush=True)
        ok = True
        return 0
    finally:
        if b is not None and b.proc.poll() is None:
            b.proc.kill()
        if not ok and b is not None:
            print("---- stratad log ----")
            b.dump()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
