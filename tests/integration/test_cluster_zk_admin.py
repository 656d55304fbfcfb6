#!/usr/bin/env python3
"""Cluster mode: the metadata store's writes do not stall shard 0
(docs/replication.md). With ZooKeeper frozen (SIGSTOP), a CreateTopics and an
InitProducerId that needs a new producer-id block wait for ZooKeeper while
Produce / Fetch to an existing partition keep being answered; after SIGCONT
both are answered with error 0 and the new topic takes writes.

ZooKeeper + 1 broker (zookeeper.session.timeout.ms=20000: the stall stays
inside the session, so the pending writes complete once ZooKeeper resumes).

  1. topic "base" (1 partition, RF 1) takes a write.
  2. ZooKeeper is frozen. CreateTopics "fresh" is sent on one connection and
     InitProducerId (the broker's first: it reserves a block in
     /latest_producer_id_block) on another; neither waits for its answer.
     Then, for STALL_S seconds, Produce (acks=1) + Fetch to "base" on a third
     connection. Checked while ZooKeeper is still frozen: at least one
     Produce and one Fetch were answered, and the CreateTopics /
     InitProducerId answers are not there yet. The pre-change code makes
     the store's ZooKeeper calls in the request handler on shard 0: the
     Produce sent after them is not answered until ZooKeeper is back, and
     the test fails here.
  3. ZooKeeper resumes: CreateTopics answers 0, InitProducerId answers 0
     with a producer id >= 0, "fresh" takes an acks=1 write and reads it
     back, a second InitProducerId gets the next id.
  4. ZooKeeper frozen again: CreatePartitions (fresh -> 3), AlterConfigs
     (fresh) and DeleteTopics (gone) stay pending, a FindCoordinator (whose
     first call creates __consumer_offsets) is answered at once with
     COORDINATOR_NOT_AVAILABLE, a Produce is answered; after SIGCONT the
     three answer 0, fresh has 3 partitions, gone is gone, and
     FindCoordinator finds this broker.
Request latencies during the stall are printed, never asserted. Skips (77)
without java / ZooKeeper. Every process is stopped by pid.

usage: test_cluster_zk_admin.py STRATAD
"""
import os
import select
import signal
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

STALL_S = 5


def create_topics_body(name, partitions, rf):
    return (struct.pack(">i", 1) + it.kstr(name) + struct.pack(">ihi", partitions, rf, 0) +
            struct.pack(">i", 0) + struct.pack(">i", 30000))


def init_pid_body():
    return struct.pack(">h", -1) + struct.pack(">i", 60000)  # null transactional id


def parse_create(b):
    r = it.Rd(b)
    if r.i32() != 1:
        it.fail("CreateTopics: not one topic in the answer")
    r.string()
    return r.i16()


def parse_init_pid(b):
    r = it.Rd(b)
    r.i32()  # throttle
    return r.i16(), r.i64()


def readable(conn):
    return bool(select.select([conn.s], [], [], 0)[0])


def body(tmp):
    exe = it.stratad_arg(__doc__)
    zk = it.ZooKeeper(tmp)
    brokers = it.start_cluster(exe, tmp, zk, "/za", ids=(1,), extra=[
        ("zookeeper.session.timeout.ms", "20000")])
    b = brokers[1]
    it.expect("CreateTopics base", it.create_topic_rf(b, "base", 1, 1), 0)
    it.wait_until("base has a leader", lambda: (it.partition_states(brokers, "base") or
                                                 {0: (-1,)})[0][0] == 1, 40)
    c = it.Conn(b.port)
    it.expect("write to base", it.produce(c, "base", 0, it.batch([b"first"]), acks=1)[0], 0)

    ca, cb = it.Conn(b.port, timeout=120), it.Conn(b.port, timeout=120)
    os.kill(zk.proc.pid, signal.SIGSTOP)
    lat = {"produce": [], "fetch": []}
    acked = [b"first"]
    errors = []
    try:
        it.ok("ZooKeeper frozen (SIGSTOP)")
        ca.send(19, 0, create_topics_body("fresh", 2, 1))
        cb.send(22, 0, init_pid_body())
        time.sleep(0.5)  # both are read by the broker before the data requests
        t_end = time.time() + STALL_S
        answered = [0]  # Produce + Fetch pairs answered before t_end (ZooKeeper frozen)

        def data():
            n = 0
            while time.time() < t_end:
                v = b"s%d" % n
                t0 = time.time()
                err = it.produce(c, "base", 0, it.batch([v]), acks=1)[0]
                lat["produce"].append(time.time() - t0)
                if err:
                    errors.append("produce to base during the stall: error %d" % err)
                    return
                acked.append(v)
                t0 = time.time()
                err, _, _ = it.fetch(c, "base", 0, 0, max_wait=20)
                lat["fetch"].append(time.time() - t0)
                if time.time() < t_end:
                    answered[0] += 1
                if err:
                    errors.append("fetch from base during the stall: error %d" % err)
                    return
                n += 1
                time.sleep(0.01)
        th = threading.Thread(target=data, daemon=True)
        th.start()
        th.join(STALL_S + 30)
        pending_ct, pending_pid = not readable(ca), not readable(cb)
    finally:
        os.kill(zk.proc.pid, signal.SIGCONT)
    it.ok("ZooKeeper resumed (SIGCONT)")
    for k in ("produce", "fetch"):
        v = sorted(lat[k])
        if v:
            print("%s latency during the stall: n=%d min %.3f median %.3f max %.3f s" % (
                k, len(v), v[0], v[len(v) // 2], v[-1]), flush=True)
    if errors:
        it.fail("; ".join(errors))
    if th.is_alive():
        it.fail("a Produce / Fetch to base got no answer in %d s" % (STALL_S + 30))
    if answered[0] == 0:
        it.fail("no Produce + Fetch to base was answered while ZooKeeper was frozen "
                "(the store's ZooKeeper writes block shard 0)")
    it.ok("%d Produce + Fetch pairs answered while ZooKeeper was frozen" % answered[0])
    if not pending_ct or not pending_pid:
        it.fail("CreateTopics / InitProducerId answered while ZooKeeper was frozen "
                "(pending: %s / %s)" % (pending_ct, pending_pid))
    it.ok("CreateTopics and InitProducerId were pending during the stall")

    rc, got = ca.recv()
    it.expect("CreateTopics fresh after the stall", parse_create(got), 0)
    rc, got = cb.recv()
    err, pid = parse_init_pid(got)
    it.expect("InitProducerId after the stall", err, 0)
    if pid < 0:
        it.fail("InitProducerId: producer id %d" % pid)
    err2, pid2 = parse_init_pid(cb.call(22, 0, init_pid_body()))
    it.expect("second InitProducerId", (err2, pid2), (0, pid + 1))
    ca.close()
    cb.close()
    it.wait_until("fresh has leaders", lambda: (lambda s: s and len(s) == 2 and
                  all(s[p][0] == 1 for p in s))(it.partition_states(brokers, "fresh")), 40)
    for p in (0, 1):
        it.expect("write to fresh-%d" % p,
                  it.produce(c, "fresh", p, it.batch([b"new%d" % p]), acks=1)[0], 0)
        it.wait_until("fresh-%d: the write is readable (high watermark)" % p,
                      lambda: [v for _, _, v in it.read_all(c, "fresh", p, 0)] == [b"new%d" % p],
                      20)
    it.expect("base holds every acknowledged write",
              [v for _, _, v in it.read_all(c, "base", 0, 0)], acked)

    # 4. the other store writes, and __consumer_offsets on FindCoordinator
    it.expect("CreateTopics gone", it.create_topic_rf(b, "gone", 1, 1), 0)
    it.wait_until("gone has a leader", lambda: (it.partition_states(brokers, "gone") or
                                                 {0: (-1,)})[0][0] == 1, 40)
    conns = [it.Conn(b.port, timeout=120) for _ in range(3)]
    os.kill(zk.proc.pid, signal.SIGSTOP)
    try:
        it.ok("ZooKeeper frozen again")
        conns[0].send(37, 0, struct.pack(">i", 1) + it.kstr("fresh") +
                      struct.pack(">ii", 3, -1) + struct.pack(">i", 30000) + b"\x00")
        conns[1].send(33, 0, struct.pack(">i", 1) + b"\x02" + it.kstr("fresh") +
                      struct.pack(">i", 1) + it.kstr("retention.ms") + it.kstr("3600000") +
                      b"\x00")
        conns[2].send(20, 0, struct.pack(">i", 1) + it.kstr("gone") + struct.pack(">i", 30000))
        time.sleep(0.5)
        fc = it.Rd(c.call(10, 0, it.kstr("g1")))  # FindCoordinator v0: creates the topic
        fc_err = fc.i16()
        err = it.produce(c, "base", 0, it.batch([b"stall2"]), acks=1)[0]
        pend = [not readable(x) for x in conns]
    finally:
        os.kill(zk.proc.pid, signal.SIGCONT)
    it.ok("ZooKeeper resumed")
    it.expect("FindCoordinator while frozen (answered, the topic's creation queued)", fc_err, 15)
    it.expect("produce while frozen with writes queued", err, 0)
    it.expect("CreatePartitions / AlterConfigs / DeleteTopics pending while frozen", pend,
              [True, True, True])
    r = it.Rd(conns[0].recv()[1])
    r.i32()
    it.expect("CreatePartitions answer", (r.i32(), r.string(), r.i16()), (1, "fresh", 0))
    r = it.Rd(conns[1].recv()[1])
    r.i32()
    it.expect("AlterConfigs answer", (r.i32(), r.i16()), (1, 0))
    r = it.Rd(conns[2].recv()[1])
    it.expect("DeleteTopics answer", (r.i32(), r.string(), r.i16()), (1, "gone", 0))
    for x in conns:
        x.close()
    it.wait_until("fresh has 3 partitions with leaders", lambda: (lambda st: st and len(st) == 3 and
                  all(st[p][0] == 1 for p in st))(it.partition_states(brokers, "fresh")), 40)
    it.expect("gone is gone", it.partition_states(brokers, "gone"), None)

    def coordinator():
        r = it.Rd(c.call(10, 0, it.kstr("g1")))
        return r.i16() == 0 and r.i32() == 1
    it.wait_until("FindCoordinator answers broker 1", coordinator, 40)
    c.close()
    b.stop_ok()
    zk.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(it.run("strata-zkadmin-", body))
