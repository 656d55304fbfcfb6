#!/usr/bin/python3
"""Integration test: log compaction (cleanup.policy=compact) with kafka-python.

usage: test_compaction.py STRATAD [MODE]

MODE "topic" (default): one stratad with a fast cleaner (log.cleaner.backoff.ms=100, 200 ms ticks).
A topic with cleanup.policy=compact, segment.bytes=4096, segment.ms=300,
min.cleanable.dirty.ratio=0.01 and delete.retention.ms=1000 gets 40 keys x
15 overwrites (kafka-python KafkaProducer, gzip for half the rounds) and
tombstones for 8 of the keys. Then:
  - while the cleaner runs, a reader thread re-reads the partition from the
    start again and again: offsets always increase, and at the end of every
    pass each key's last record is its latest value (a tombstoned key: a
    tombstone or nothing);
  - the partition compacts to exactly one record per live key, its latest
    value at its original offset, plus the tombstones (kept until
    delete.retention.ms after the first clean that saw them) -- polled, with
    a bounded wait;
  - offsets stay valid: a fetch at a removed offset returns the next kept
    record, a fetch at a kept record's offset returns that record;
  - after delete.retention.ms, more data (a new key) makes the cleaner run
    again and the tombstones are gone: exactly the live keys and the new one;
  - the same holds after a SIGKILL restart;
  - the topic deleted right after more overwrites (a clean may be running):
    its directory goes, and recreated it starts empty.

MODE "offsets": __consumer_offsets is compacted too. With one offsets
partition rolled every 200 ms (AlterConfigs keeping cleanup.policy=compact),
a kafka-python consumer commits 300 times for 2 partitions; the cleaner
compacts __consumer_offsets-0 (seen in the broker log: fewer records out than
in); after a SIGKILL restart the coordinator loads the compacted partition
and a new consumer in the group gets the last commits.

MODE "idempotent": kcat with enable.idempotence=true writes 10 keys (its
producer id's only batches), kafka-python overwrites them all; the cleaner
keeps the idempotent producer's last batch as an empty batch (Kafka's rule,
checked in the segment files); kafka-python and kcat consumers read exactly
the 10 new records across it; a SIGKILL restart rebuilds producer state
from it and kcat, idempotent again, appends.
Exit 0 = pass, 1 = fail, 77 = skipped (no kafka-python).
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402
from strata_it import Broker, fail, ok  # noqa: E402

TOPIC = "shadow"
NKEYS = 40
ROUNDS = 15
DELETED = set(range(0, 40, 5))  # keys that end with a tombstone


def kafka_python():
    try:
        import kafka  # noqa: F401
    except ImportError:
        it.skip("kafka-python (python3-kafka) not installed")
    import kafka
    return kafka


def wait_for(what, cond, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            ok(what)
            return
        time.sleep(0.2)
    fail("timed out waiting for: %s" % what)


def read_all(kafka, b, start=0, topic=TOPIC):
    """Every record of partition 0 from `start` to the end, as (offset, key, value)."""
    tp = kafka.TopicPartition(topic, 0)
    c = kafka.KafkaConsumer(bootstrap_servers=b.addr, enable_auto_commit=False,
                            auto_offset_reset="earliest", request_timeout_ms=15000,
                            consumer_timeout_ms=500)
    try:
        c.assign([tp])
        end = c.end_offsets([tp])[tp]
        c.seek(tp, start)
        out = []
        deadline = time.time() + 30
        while c.position(tp) < end and time.time() < deadline:
            for recs in c.poll(timeout_ms=300).values():
                out += [(r.offset, r.key, r.value) for r in recs]
        if c.position(tp) < end:
            fail("read stalled at %d of %d" % (c.position(tp), end))
        return out
    finally:
        c.close()


def check_order(recs, what):
    prev = -1
    for off, _, _ in recs:
        if off <= prev:
            fail("%s: offset %d after %d" % (what, off, prev))
        prev = off


def latest_per_key(recs):
    last = {}
    for off, k, v in recs:
        last[k] = (off, v)
    return last


class Reader(threading.Thread):
    """Re-reads the partition from the start until stopped; checks each pass."""

    def __init__(self, kafka, b, expect):
        super().__init__(daemon=True)
        self.kafka, self.b, self.expect = kafka, b, expect
        self.stop_flag = False
        self.passes = 0
        self.error = None

    def run(self):
        try:
            while not self.stop_flag:
                recs = read_all(self.kafka, self.b)
                check_order(recs, "reader pass %d" % self.passes)
                last = latest_per_key(recs)
                for k, (off, v) in self.expect.items():
                    got = last.get(k)
                    if v is None and (got is None or got[1] is None):
                        continue
                    if got != (off, v):
                        raise AssertionError("pass %d: key %r: last is %r, want %r"
                                             % (self.passes, k, got, (off, v)))
                self.passes += 1
        except BaseException as e:  # reported by the main thread
            self.error = e


def expect_exact(recs, expect, with_tombstones, what):
    """recs must be exactly one record per key of expect (tombstoned keys only
    when with_tombstones), each the latest value at its original offset."""
    check_order(recs, what)
    want = {k: ov for k, ov in expect.items() if with_tombstones or ov[1] is not None}
    got = {}
    for off, k, v in recs:
        if k in got:
            return "%s: key %r appears twice (offsets %d and %d)" % (what, k, got[k][0], off)
        got[k] = (off, v)
    if got != want:
        extra = sorted(set(got) - set(want))[:5]
        missing = sorted(set(want) - set(got))[:5]
        wrong = sorted(k for k in set(got) & set(want) if got[k] != want[k])[:5]
        return "%s: extra %r, missing %r, wrong %r" % (what, extra, missing, wrong)
    return None


def body(exe, tmp):
    kafka = kafka_python()
    from kafka.admin import KafkaAdminClient, NewTopic
    b = Broker(exe, tmp, {"log.cleaner.backoff.ms": "100",
                          "log.retention.check.interval.ms": "200",
                          "log.cleaner.io.max.bytes.per.second": "10000000"})
    admin = KafkaAdminClient(bootstrap_servers=b.addr, request_timeout_ms=15000)
    admin.create_topics([NewTopic(TOPIC, 1, 1, topic_configs={
        "cleanup.policy": "compact", "segment.bytes": "4096", "segment.ms": "300",
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "1000"})])
    admin.close()
    ok("compacted topic created")

    expect = {}  # key -> (offset, value) of its latest record
    for r in range(ROUNDS):
        p = kafka.KafkaProducer(bootstrap_servers=b.addr, linger_ms=5, acks=1,
                                compression_type="gzip" if r % 2 else None)
        futs = []
        for k in range(NKEYS):
            key = b"dev-%d" % k
            val = b"dev-%d state %d" % (k, r)
            if r == ROUNDS - 1 and k in DELETED:
                val = None
            futs.append((key, val, p.send(TOPIC, key=key, value=val, partition=0)))
        for key, val, f in futs:
            expect[key] = (f.get(timeout=30).offset, val)
        p.close()
    total = NKEYS * ROUNDS
    ok("%d keyed records produced (%d overwrites per key, %d tombstones)"
       % (total, ROUNDS - 1, len(DELETED)))

    reader = Reader(kafka, b, expect)
    reader.start()
    result = {}

    def compacted():
        recs = read_all(kafka, b)
        result["why"] = expect_exact(recs, expect, True, "after compaction")
        return result["why"] is None

    try:
        wait_for("the partition compacts to one record per key, tombstones included",
                 compacted)
    except SystemExit:
        print(result.get("why"))
        raise
    time.sleep(1)
    reader.stop_flag = True
    reader.join(timeout=60)
    if reader.error:
        fail("reader during compaction: %r" % reader.error)
    if reader.passes < 1:
        fail("the reader never finished a pass")
    ok("a reader during compaction saw increasing offsets and every key's latest value "
       "(%d passes)" % reader.passes)
    if "cleaner:" not in b.read_log():
        fail("no cleaner line in the broker log")

    # offsets stay valid: removed ones lead to the next kept record
    kept = sorted(off for off, _ in expect.values())
    if kept[0] == 0:
        fail("offset 0 should have been removed (key dev-0 was overwritten)")
    for removed in (0, kept[0] - 1, kept[3] - 1):
        recs = read_all(kafka, b, start=removed)
        nxt = min(o for o in kept if o >= removed)
        if not recs or recs[0][0] != nxt:
            fail("fetch at removed offset %d: first record %r, want offset %d"
                 % (removed, recs[0][0] if recs else None, nxt))
    recs = read_all(kafka, b, start=kept[5])
    if recs[0][0] != kept[5]:
        fail("fetch at kept offset %d returned offset %d" % (kept[5], recs[0][0]))
    ok("fetches at removed offsets return the next kept record; kept offsets unchanged")

    # tombstones go after delete.retention.ms, at the next clean
    time.sleep(1.5)
    p = kafka.KafkaProducer(bootstrap_servers=b.addr, acks=1)
    md = p.send(TOPIC, key=b"dev-new", value=b"new", partition=0).get(timeout=30)
    p.close()
    expect[b"dev-new"] = (md.offset, b"new")

    def tombstones_gone():
        result["why"] = expect_exact(read_all(kafka, b), expect, False, "tombstones")
        return result["why"] is None

    try:
        wait_for("after delete.retention.ms the tombstones are removed", tombstones_gone)
    except SystemExit:
        print(result.get("why"))
        raise

    b.kill()
    b.start()
    why = expect_exact(read_all(kafka, b), expect, False, "after SIGKILL restart")
    if why:
        fail(why)
    ok("the compacted log is intact after a SIGKILL restart")

    # deleting the topic while the cleaner may be at work on it: the
    # directory goes, nothing is left behind, the broker keeps serving
    p = kafka.KafkaProducer(bootstrap_servers=b.addr, acks=1)
    for r in range(5):
        for k in range(NKEYS):
            p.send(TOPIC, key=b"dev-%d" % k, value=b"again %d" % r, partition=0)
        p.flush()
        time.sleep(0.1)
    p.close()
    time.sleep(0.4)
    admin = KafkaAdminClient(bootstrap_servers=b.addr, request_timeout_ms=15000)
    admin.delete_topics([TOPIC])
    pdir = os.path.join(tmp, "data", TOPIC + "-0")
    wait_for("the deleted compacted partition's directory is gone",
             lambda: not os.path.exists(pdir), timeout=30)
    admin.create_topics([NewTopic(TOPIC, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    admin.close()
    p = kafka.KafkaProducer(bootstrap_servers=b.addr, acks=1)
    p.send(TOPIC, key=b"dev-1", value=b"fresh", partition=0).get(timeout=30)
    p.close()
    recs = read_all(kafka, b)
    if [(k, v) for _, k, v in recs] != [(b"dev-1", b"fresh")]:
        fail("recreated topic holds %r" % recs)
    ok("a compacted topic deleted during cleaning is gone; recreated, it starts empty")
    b.stop_ok()


def body_offsets(exe, tmp):
    kafka = kafka_python()
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
    from kafka.structs import OffsetAndMetadata
    b = Broker(exe, tmp, {"log.cleaner.backoff.ms": "100",
                          "log.retention.check.interval.ms": "200",
                          "offsets.topic.num.partitions": "1"})
    admin = KafkaAdminClient(bootstrap_servers=b.addr, request_timeout_ms=15000)
    admin.create_topics([NewTopic("src", 2, 1)])
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "__consumer_offsets", configs={
        "cleanup.policy": "compact", "segment.bytes": "2048", "segment.ms": "200",
        "min.cleanable.dirty.ratio": "0.01"})])
    admin.close()
    tps = [kafka.TopicPartition("src", p) for p in (0, 1)]
    c = kafka.KafkaConsumer(bootstrap_servers=b.addr, group_id="shadow-reader",
                            enable_auto_commit=False, request_timeout_ms=15000)
    c.assign(tps)
    for i in range(1, 301):
        c.commit({tp: OffsetAndMetadata(i * 10 + tp.partition, "m%d" % i) for tp in tps})
    c.close()
    ok("300 commits of 2 partitions in __consumer_offsets")

    def cleaned():
        for line in b.read_log().splitlines():
            if "__consumer_offsets-0: cleaned" in line:
                m = line.split(" records")[0].rsplit(" ", 3)
                if int(m[-1]) < int(m[-3]):
                    return True
        return False

    wait_for("the cleaner compacts __consumer_offsets-0", cleaned)
    b.kill()
    b.start()
    c = kafka.KafkaConsumer(bootstrap_servers=b.addr, group_id="shadow-reader",
                            enable_auto_commit=False, request_timeout_ms=15000)
    got = {tp.partition: c.committed(tp) for tp in tps}
    c.close()
    if got != {0: 3000, 1: 3001}:
        fail("committed offsets after restart: %r, want {0: 3000, 1: 3001}" % got)
    ok("after a SIGKILL restart the compacted __consumer_offsets gives the last commits")
    b.stop_ok()


def log_batches(tmp, topic):
    """(base, lastOffsetDelta, producerId, recordsCount) of every batch in the
    partition's segment files."""
    import struct
    pdir = os.path.join(tmp, "data", topic + "-0")
    out = []
    for name in sorted(os.listdir(pdir)):
        if not name.endswith(".log"):
            continue
        with open(os.path.join(pdir, name), "rb") as f:
            data = f.read()
        pos = 0
        while pos + 61 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            lod = struct.unpack_from(">i", data, pos + 23)[0]
            pid = struct.unpack_from(">q", data, pos + 43)[0]
            count = struct.unpack_from(">i", data, pos + 57)[0]
            out.append((base, lod, pid, count))
            pos += 12 + length
    return out


def body_idempotent(exe, tmp):
    kafka = kafka_python()
    from kafka.admin import KafkaAdminClient, NewTopic
    b = Broker(exe, tmp, {"log.cleaner.backoff.ms": "100",
                          "log.retention.check.interval.ms": "200"})
    admin = KafkaAdminClient(bootstrap_servers=b.addr, request_timeout_ms=15000)
    admin.create_topics([NewTopic("idem", 1, 1, topic_configs={
        "cleanup.policy": "compact", "segment.ms": "300", "min.cleanable.dirty.ratio": "0.01"})])
    admin.close()
    keys = [b"k%d" % i for i in range(10)]
    it.kcat(b, ["-P", "-t", "idem", "-p", "0", "-K", ":", "-X", "enable.idempotence=true"],
            stdin=b"".join(k + b":old\n" for k in keys))
    p = kafka.KafkaProducer(bootstrap_servers=b.addr, acks=1)
    for k in keys:
        p.send("idem", key=k, value=b"new-" + k, partition=0)
    p.close()
    want = [(k, b"new-" + k) for k in keys]

    def compacted():
        return [(k, v) for _, k, v in read_all(kafka, b, topic="idem")] == want

    wait_for("the idempotent producer's records are compacted away", compacted)
    empty = [x for x in log_batches(tmp, "idem") if x[2] >= 0 and x[3] == 0]
    if len(empty) != 1 or empty[0][0] != 0 or empty[0][1] != 9:
        fail("want one empty batch at offset 0 (lastOffsetDelta 9) of the idempotent "
             "producer, segment files hold %r" % log_batches(tmp, "idem"))
    ok("the idempotent producer's last batch is kept empty: %r" % (empty[0],))
    out = it.kcat(b, ["-C", "-t", "idem", "-p", "0", "-o", "beginning", "-e",
                      "-f", "%o %k %s\n"]).decode().split("\n")
    got = [line.split(" ", 1)[1] for line in out if line]
    if got != ["%s %s" % (k.decode(), v.decode()) for k, v in want]:
        fail("kcat read %r" % out)
    ok("kafka-python and kcat consumers read across the empty batch")
    b.kill()
    b.start()
    if "producer state of 1 producer id(s)" not in b.read_log():
        fail("no producer state rebuilt from the empty batch")
    it.kcat(b, ["-P", "-t", "idem", "-p", "0", "-K", ":", "-X", "enable.idempotence=true"],
            stdin=b"k0:again\n")
    recs = read_all(kafka, b, topic="idem")
    if recs[-1][1:] != (b"k0", b"again"):
        fail("after restart: %r" % recs[-1:])
    ok("after a SIGKILL restart producer state comes from it; idempotent produce goes on")
    b.stop_ok()


def main():
    exe = it.stratad_arg(__doc__)
    mode = sys.argv[2] if len(sys.argv) > 2 else "topic"
    fn = {"topic": body, "offsets": body_offsets, "idempotent": body_idempotent}.get(mode)
    if not fn:
        fail("unknown mode %r" % mode)
    return it.run("strata-compact-", lambda tmp: fn(exe, tmp))


if __name__ == "__main__":
    sys.exit(main())
