#!/usr/bin/env python3
"""The paths end-to-end latency depends on, checked by what they deliver (no timing asserts).

    test_latency_paths.py STRATAD CL_PRODUCE MODE

MODE  fetch-wake   a Fetch parked with fetch.max.wait.ms 30000 is answered when
                   data arrives, not at its deadline: the waiting socket gives
                   up after 20 s, so a broker that only answers at max wait
                   fails. Checked with the durable default (the high watermark
                   moves after fdatasync) and with log.flush.interval.messages
                   = max (it moves when written). Also fetch.min.bytes: a Fetch
                   waiting for 3000 bytes is not answered by a 100-byte record
                   (its answer holds the small and the following large record).
      acks0        libstrata with acks=0, max.in.flight 1, one record per batch:
                   300 records queued before the connection is up go out one
                   request at a time. An acks=0 request completes when written,
                   and the I/O loop must send the next batch at once (it used
                   to sleep until its 1 s timeout after each one: ~300 s, far
                   past cl_produce's 60 s flush). Every record is reported and
                   stored.
"""
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

MAX_LONG = "9223372036854775807"


def fetch_send(conn, topic, offset, max_wait, min_bytes):
    body = struct.pack(">iiiib", -1, max_wait, min_bytes, 64 << 20, 0)
    body += struct.pack(">i", 1) + it.kstr(topic) + struct.pack(">iiqi", 1, 0, offset, 1 << 20)
    return conn.send(1, 4, body)


def fetch_parse(b):
    """Fetch v4 response body (after the correlation id) -> (error, hw, records bytes)."""
    p = 4  # throttle
    p += 4  # topics (1)
    ln = struct.unpack_from(">h", b, p)[0]
    p += 2 + ln + 4
    _, err, hw, _lso = struct.unpack_from(">ihqq", b, p)
    p += 22
    na = struct.unpack_from(">i", b, p)[0]
    p += 4 + max(na, 0) * 16
    rl = struct.unpack_from(">i", b, p)[0]
    p += 4
    return err, hw, (b[p:p + rl] if rl > 0 else b"")


def fetch_recv(conn, corr, what):
    try:
        rc, b = conn.recv()
    except socket.timeout:
        it.fail("%s: no Fetch answer within 20 s although data arrived (max wait 30 s): "
                "the parked fetch was not woken" % what)
    it.expect("%s: correlation id" % what, rc, corr)
    return fetch_parse(b)


def fetch_wake(exe, tmp, label, overrides):
    d = os.path.join(tmp, label)
    os.makedirs(d)
    b = it.Broker(exe, d, overrides)
    topic = "wake"
    it.create_topic(b, topic)
    waiter, prod = it.Conn(b.port, timeout=20), it.Conn(b.port, timeout=20)
    # min bytes 1: the first record answers it
    corr = fetch_send(waiter, topic, 0, 30000, 1)
    err, _, _ = it.produce(prod, topic, 0, it.batch([b"first"]))
    it.expect("%s: produce" % label, err, 0)
    err, hw, recs = fetch_recv(waiter, corr, "%s: min bytes 1" % label)
    it.expect("%s: fetch error" % label, err, 0)
    it.expect("%s: high watermark" % label, hw, 1)
    it.expect("%s: records" % label, [(o, v) for o, _, v in it.parse_batches(recs)],
              [(0, b"first")])
    # min bytes 3000: a 100-byte record leaves it parked, a 4000-byte one answers it
    corr = fetch_send(waiter, topic, 1, 30000, 3000)
    small, large = b"s" * 100, b"L" * 4000
    err, base, _ = it.produce(prod, topic, 0, it.batch([small]))
    it.expect("%s: produce small" % label, (err, base), (0, 1))
    err, base, _ = it.produce(prod, topic, 0, it.batch([large]))
    it.expect("%s: produce large" % label, (err, base), (0, 2))
    err, hw, recs = fetch_recv(waiter, corr, "%s: min bytes 3000" % label)
    it.expect("%s: fetch error" % label, err, 0)
    it.expect("%s: high watermark" % label, hw, 3)
    got = [(o, v) for o, _, v in it.parse_batches(recs)]
    it.expect("%s: min bytes 3000 answered with both records (not after the small one)" % label,
              got, [(1, small), (2, large)])
    waiter.close()
    prod.close()
    b.stop_ok()
    it.ok("%s: parked fetches answered when data arrived (min bytes 1 and 3000)" % label)


def acks0(exe, cl_produce, tmp):
    b = it.Broker(exe, tmp)
    topic = "acks0"
    it.create_topic(b, topic)
    n = 300
    cmd = [cl_produce, "-b", b.addr, "-t", topic, "-n", str(n), "-X", "acks=0",
           "-X", "max.in.flight.requests.per.connection=1", "-X", "batch.num.messages=1",
           "-X", "linger.ms=0"]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    except subprocess.TimeoutExpired:
        it.fail("cl_produce acks=0 did not finish in 120 s")
    if r.returncode != 0:
        it.fail("cl_produce acks=0 exited %d: %s" % (r.returncode,
                                                    r.stderr.decode(errors="replace")[-2000:]))
    reports = [ln.split() for ln in r.stdout.decode().splitlines() if ln.startswith("DR ")]
    it.expect("acks=0: delivery reports", sorted(int(x[1]) for x in reports), list(range(n)))
    it.expect("acks=0: report errors", [x for x in reports if x[4] != "0"], [])
    # the broker sends no answer: wait until it has stored them all
    c = it.Conn(b.port)
    deadline = time.time() + 30
    while True:
        err, _, end = it.list_offsets(c, topic, 0, -1)
        if (err == 0 and end >= n) or time.time() > deadline:
            break
        time.sleep(0.05)
    it.expect("acks=0: log end offset", (err, end), (0, n))
    vals = [v for _, _, v in it.read_all(c, topic, 0)]
    want = []
    for i in range(n):
        if i == 5:
            want.append(None)
        elif i == 6:
            want.append(b"")
        else:
            want.append(("value-%d-" % i).encode() + b"x" * (i % 50))
    it.expect("acks=0: stored values in order", vals, want)
    c.close()
    b.stop_ok()
    it.ok("acks=0: %d records, one request each, all delivered and stored" % n)


def main():
    usage = __doc__.split("\n\n")[1].strip()
    exe = it.stratad_arg(usage)
    if len(sys.argv) < 4:
        print(usage)
        return 2
    cl_produce, mode = os.path.abspath(sys.argv[2]), sys.argv[3]
    if mode == "fetch-wake":
        def body(tmp):
            fetch_wake(exe, tmp, "durable", [])
            fetch_wake(exe, tmp, "os-flush", [("log.flush.interval.messages", MAX_LONG)])
        return it.run("strata-latency-", body)
    if mode == "acks0":
        if not os.access(cl_produce, os.X_OK):
            it.fail("%s is not executable (build first)" % cl_produce)
        return it.run("strata-latency-", lambda tmp: acks0(exe, cl_produce, tmp))
    print(usage)
    return 2


if __name__ == "__main__":
    sys.exit(main())
