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
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402
from strata_it import (EXPECTED_APIS, Rd, expect_closed, fail, frame, kstr,  # noqa: E402
                       metadata, ok, read_response, request)

IDLE_MS = 2000


def start(exe, tmp):
    return it.Broker(exe, tmp, overrides={"connections.max.idle.ms": IDLE_MS})



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
    ok("ApiVersions v0 ->", apis)

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
    ok("ApiVersions v3 (flexible) ->", apis)

    # v3 with a software name Kafka rejects -> INVALID_REQUEST, empty list
    s.sendall(request(18, 3, 13, b"\x02!\x02x\x00", flexible=True))
    r = Rd(read_response(s))
    if r.i32() != 13 or r.i16() != 42:
        fail("ApiVersions v3 bad name: expected error 42")
    ok("ApiVersions v3 with invalid software name -> 42")

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
    ok("ApiVersions v7 -> v0-format UNSUPPORTED_VERSION, connection kept")
    s.close()


def check_metadata(b):
    s = b.connect()
    m = metadata(s, 0, 21, [])  # v0: empty = all topics
    if m["brokers"] != [(0, "127.0.0.1", b.port)]:
        fail("Metadata v0 brokers %r" % m["brokers"])
    ok("Metadata v0 ->", m)

    m = metadata(s, 1, 22, ["it-topic"])
    if m["topics"] != {"it-topic": (0, [(0, 0, 0, [0], [0])])} or m["controller"] != 0:
        fail("Metadata v1 auto-create: %r" % m)
    ok("Metadata v1 auto-creates it-topic ->", m["topics"])

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
    ok("Metadata v4 no-auto -> 3, bad name -> 17, v1 [] -> none, v6 null -> all; "
       "cluster id %s" % m6["cluster"])
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
    ok("%d pipelined requests answered in order" % n)


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
    ok("%d pipelined Metadata (%d MiB of responses) in order under back-pressure"
       % (n, total >> 20))
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
    ok("broker still serves new connections after bad input")


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
    ok("kcat -L lists broker 0 and kcat-topic")
    return 0


def main():
    exe = it.stratad_arg(__doc__)
    kcat_mode = "--kcat" in sys.argv[2:]
    if kcat_mode and not shutil.which("kcat"):
        print("SKIP: kcat not installed (Debian package kcat; scripts/deps.sh installs it)")
        return 77
    return it.run("strata-it-", lambda tmp: run(exe, tmp, kcat_mode))


def run(exe, tmp, kcat_mode):
    b = start(exe, tmp)
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
    b.stop_ok()
    ok("SIGTERM -> exit 0")
    if not kcat_mode:
        # restart on the same data dir: the cluster id must be stable
        b = start(exe, tmp)
        s = b.connect()
        m = metadata(s, 2, 1, [])
        s.close()
        if m["cluster"] != cluster:
            fail("cluster id changed across restart: %s -> %s" % (cluster, m["cluster"]))
        b.stop_ok("second stop")
        ok("cluster id stable across restart")
    return 0


if __name__ == "__main__":
    sys.exit(main())
