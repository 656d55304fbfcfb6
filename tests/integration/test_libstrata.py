#!/usr/bin/env python3
"""libstrata against the real stratad, read back by kcat (librdkafka) and raw Fetch.

    test_libstrata.py STRATAD CL_PRODUCE MODE

MODE  none   idempotent producer (the default), no compression
      gzip   idempotent producer, compression.type=gzip, small batches
      acks1  acks=1 (idempotence off by the Java rule), gzip
      restart  idempotent gzip producer paced over ~3 s while stratad is
             SIGKILLed and restarted on the same port: every record is
             delivered exactly once, in produce order per partition

Each run: a 4-partition topic; cl_produce (tests/integration/libstrata/cl_produce.c)
sends 300 records (keys, a null key every 7th, an empty key, a null and an
empty value, headers on odd records) and prints its delivery reports. Checks:
  - every record reported once, without error, at distinct offsets;
  - kcat -C reads back exactly the produced key, value and headers, byte for
    byte, at the reported partition and offset;
  - every keyed record sits on the partition Java's murmur2 partitioner picks
    (kafka-python's DefaultPartitioner when installed, plus kcat producing the
    same keys with -X partitioner=murmur2_random into a second topic);
  - the stored batches carry the codec asked for, and for the idempotent runs
    a producer id with base sequences contiguous per partition from 0;
  - an unknown configuration key makes cl_produce exit 2 naming the key.
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

N = 300
PARTS = 4


def expected(i):
    """(key, value, headers) of record i, as cl_produce makes it."""
    key = None if i % 7 == 0 else (b"" if i == 3 else b"key-%d" % i)
    value = None if i == 5 else (b"" if i == 6 else b"value-%d-" % i + b"x" * (i % 50))
    headers = [("h1", b"one-%d" % i), ("h2", b"")] if i % 2 else []
    return key, value, headers


def java_partition(key, n):
    try:
        from kafka.partitioner.default import murmur2
    except ImportError:
        return None
    return (murmur2(key) & 0x7fffffff) % n


def parse_reports(stdout, n):
    reports = {}
    for line in stdout.decode().splitlines():
        tag, i, part, off, err = line.split()
        if tag != "DR":
            continue
        i, part, off, err = int(i), int(part), int(off), int(err)
        if i in reports:
            it.fail("record %d reported twice" % i)
        if err:
            it.fail("record %d failed: %d" % (i, err))
        reports[i] = (part, off)
    it.expect("delivery reports", sorted(reports), list(range(n)))
    it.expect("distinct (partition, offset)", len(set(reports.values())), n)
    return reports


def check_kcat(b, topic, reports, n):
    """kcat reads back exactly records 0..n-1, byte for byte, where reported."""
    out = it.kcat(b, ["-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f",
                      "%p|%o|%K|%k|%S|%s|%h\n"])
    got = {}
    for line in out.split(b"\n"):
        if not line:
            continue
        p, o, kl, k, vl, v, h = line.split(b"|")
        got[(int(p), int(o))] = (int(kl), k, int(vl), v, h)
    it.expect("records read back by kcat", len(got), n)
    for i in range(n):
        key, value, headers = expected(i)
        rec = got.get(reports[i])
        if rec is None:
            it.fail("record %d not found at %r" % (i, reports[i]))
        kl, k, vl, v, h = rec
        want_kl = -1 if key is None else len(key)
        want_vl = -1 if value is None else len(value)
        if (kl, vl) != (want_kl, want_vl) or k != (key or b"") or v != (value or b""):
            it.fail("record %d: kcat read %r, want %r" % (i, rec[:4], (key, value)))
        want_h = b",".join(hk.encode() + b"=" + hv for hk, hv in headers)
        if h != want_h:
            it.fail("record %d headers: kcat %r, want %r" % (i, h, want_h))
    it.ok("kcat read back all %d records byte for byte (keys, values, headers)" % n)


def check_batches(b, topic, idempotent, codec):
    """Stored batches: codec; producer id and contiguous sequences when idempotent."""
    c = it.Conn(b.port)
    nbatches = 0
    for part in range(PARTS):
        seq = 0
        for base, bb in it.read_all_batches(c, topic, part):
            h = it.batch_header(bb)
            nbatches += 1
            if h["attributes"] & 7 != codec:
                it.fail("partition %d batch at %d: codec %d, want %d" %
                        (part, base, h["attributes"] & 7, codec))
            if idempotent:
                if h["producer_id"] < 0 or h["producer_epoch"] < 0:
                    it.fail("batch at %d: no producer id" % base)
                if h["base_sequence"] != seq:
                    it.fail("partition %d batch at %d: base sequence %d, want %d" %
                            (part, base, h["base_sequence"], seq))
                seq += h["count"]
            elif h["producer_id"] != -1:
                it.fail("acks=1 batch at %d has producer id %d" % (base, h["producer_id"]))
            for _ in it.batch_records(bb):
                pass  # CRC and structure checked by the decoder
    c.close()
    it.ok("%d stored batches: codec %d, %s" % (nbatches, codec,
          "producer id + contiguous sequences" if idempotent else "no producer id"))


def restart_body(stratad, driver, tmp):
    b = it.Broker(stratad, tmp)
    topic = "cl-restart"
    n = 600
    it.create_topic(b, topic, PARTS)
    cmd = [driver, "-b", b.addr, "-t", topic, "-n", str(n), "-s", "5000",
           "-X", "compression.type=gzip", "-X", "linger.ms=2", "-X", "retry.backoff.ms=50",
           "-X", "reconnect.backoff.ms=50"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    b.kill()
    it.ok("stratad SIGKILLed while cl_produce runs")
    time.sleep(0.5)
    b.start()
    it.ok("stratad restarted on the same port")
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        it.fail("cl_produce did not finish after the restart")
    if proc.returncode != 0:
        b.dump()
        it.fail("cl_produce exited %d: %s" % (proc.returncode, err.decode(errors="replace")))
    reports = parse_reports(out, n)
    check_kcat(b, topic, reports, n)
    for part in range(PARTS):
        order = [i for i, _ in sorted(((i, po) for i, po in reports.items() if po[0] == part),
                                      key=lambda x: x[1][1])]
        if order != sorted(order):
            it.fail("partition %d: records out of produce order: %r" % (part, order[:20]))
    it.ok("every partition holds its records once, in produce order")
    check_batches(b, topic, True, 1)
    b.stop_ok()
    return 0


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    stratad, driver, mode = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3]
    if shutil.which("kcat") is None:
        it.skip("kcat not installed")
    if mode == "restart":
        return it.run("strata-libstrata-", lambda tmp: restart_body(stratad, driver, tmp))
    xs = {"none": ["linger.ms=20"],
          "gzip": ["compression.type=gzip", "batch.size=4000", "linger.ms=5"],
          "acks1": ["acks=1", "compression.codec=gzip", "linger.ms=0"]}[mode]
    idempotent = mode != "acks1"
    codec = 0 if mode == "none" else 1

    def body(tmp):
        b = it.Broker(stratad, tmp)
        topic = "cl-" + mode
        it.create_topic(b, topic, PARTS)

        # unknown key -> exit 2, message names it
        r = subprocess.run([driver, "-b", b.addr, "-t", topic, "-n", "1", "-X", "linger.msec=1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        it.expect("unknown key exit status", r.returncode, 2)
        if b"linger.msec" not in r.stderr:
            it.fail("unknown-key error does not name the key: %r" % r.stderr)

        n = N
        cmd = [driver, "-b", b.addr, "-t", topic, "-n", str(n)]
        for x in xs:
            cmd += ["-X", x]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        if r.returncode != 0:
            b.dump()
            it.fail("cl_produce exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")))
        reports = parse_reports(r.stdout, n)
        check_kcat(b, topic, reports, n)
        # murmur2 placement: kafka-python's DefaultPartitioner ...
        keyed = [i for i in range(N) if expected(i)[0] is not None]
        if java_partition(b"x", PARTS) is not None:
            bad = [i for i in keyed if java_partition(expected(i)[0], PARTS) != reports[i][0]]
            if bad:
                it.fail("records on the wrong partition vs kafka-python murmur2: %r" % bad[:10])
            it.ok("%d keyed records on kafka-python's murmur2 partition" % len(keyed))
        # ... and librdkafka's murmur2_random, producing the same keys with kcat
        t2 = topic + "-kcat"
        it.create_topic(b, t2, PARTS)
        lines = b"".join(expected(i)[0] + b"\t" + b"%d" % i + b"\n" for i in keyed
                         if expected(i)[0])
        it.kcat(b, ["-P", "-t", t2, "-K", "\t", "-X", "partitioner=murmur2_random"], stdin=lines)
        out = it.kcat(b, ["-C", "-t", t2, "-o", "beginning", "-e", "-q", "-f", "%p %s\n"])
        kparts = {int(v): int(p) for p, v in (l.split() for l in out.split(b"\n") if l)}
        bad = [i for i in kparts if kparts[i] != reports[i][0]]
        it.expect("keys kcat placed", len(kparts), len([i for i in keyed if expected(i)[0]]))
        if bad:
            it.fail("libstrata and librdkafka murmur2_random disagree on %r" % bad[:10])
        it.ok("libstrata and librdkafka murmur2_random agree on all %d keys" % len(kparts))

        check_batches(b, topic, idempotent, codec)
        b.stop_ok()
        return 0

    return it.run("strata-libstrata-", body)


if __name__ == "__main__":
    sys.exit(main())
