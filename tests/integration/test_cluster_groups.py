#!/usr/bin/env python3
"""Cluster mode, the group coordinator across brokers (docs/consumer-groups.md,
docs/replication.md): ZooKeeper + three brokers, __consumer_offsets with 3
partitions and replication factor 3, a topic with 4 partitions and
replication factor 3.

  1. FindCoordinator (raw, on every broker) names the same broker: the leader
     of partition abs(hash(group)) % 3 of __consumer_offsets; a group request
     (Heartbeat) sent to another broker gets NOT_COORDINATOR (16), the
     coordinator answers it with UNKNOWN_MEMBER_ID (25);
  2. a kafka-python group of two consumers (one thread each) reads numbered
     records and commits synchronously after each poll;
  3. once 150 records are committed the coordinator is SIGKILLed while more
     records are produced; the consumers find the new coordinator (the new
     leader of that partition, which loads the committed offsets), rejoin and
     go on;
  5. the killed broker restarts and gets its preferred leadership back
     (leader.imbalance.check.interval.seconds=1): the interim coordinator
     drops the group, the consumers move back and go on;
  4. (at the end) every record is read at least once, and a record is read twice only if
     no commit covering it had succeeded (the uncommitted window): committed
     offsets survived the coordinator's death.
Skips (77) without java / ZooKeeper or kafka-python. Stopped by pid.

usage: test_cluster_groups.py STRATAD
"""
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

TOPIC = "cg"
GROUP = "cg-group"
NOT_COORDINATOR = 16


def find_coordinator(b):
    """(error, node id) from FindCoordinator v1 for GROUP on broker b."""
    c = it.Conn(b.port, timeout=10)
    try:
        r = it.Rd(c.call(10, 1, it.kstr(GROUP) + struct.pack(">b", 0)))
    finally:
        c.close()
    r.i32()
    err = r.i16()
    r.string()
    return err, r.i32()


def heartbeat(b):
    """The error of a Heartbeat v0 for GROUP from an unknown member."""
    c = it.Conn(b.port, timeout=10)
    try:
        r = it.Rd(c.call(12, 0, it.kstr(GROUP) + struct.pack(">i", 1) + it.kstr("nobody")))
    finally:
        c.close()
    return r.i16()


def agreed_coordinator(brokers):
    """The coordinator every live broker names, or None."""
    ids = set()
    for b in brokers.values():
        if not b.running():
            continue
        err, node = find_coordinator(b)
        if err:
            return None
        ids.add(node)
    return ids.pop() if len(ids) == 1 else None


class Reader(threading.Thread):
    def __init__(self, name, boot, stop, lock, seen, committed):
        threading.Thread.__init__(self, daemon=True)
        from kafka import KafkaConsumer
        self.c = KafkaConsumer(TOPIC, bootstrap_servers=boot, group_id=GROUP,
                               client_id=name, auto_offset_reset="earliest",
                               enable_auto_commit=False, session_timeout_ms=10000,
                               heartbeat_interval_ms=1000, request_timeout_ms=15000,
                               metadata_max_age_ms=1000, reconnect_backoff_ms=50,
                               retry_backoff_ms=100, max_poll_records=20)
        self.stop, self.lock, self.seen, self.committed = stop, lock, seen, committed
        self.errors = 0
        self.redelivered = []

    def run(self):
        while not self.stop.is_set():
            try:
                recs = self.c.poll(timeout_ms=200)
            except Exception as e:  # noqa: BLE001 -- rebalances, dead coordinator
                self.errors += 1
                if self.errors < 5:
                    print("poll: %s" % type(e).__name__, flush=True)
                time.sleep(0.1)
                continue
            batch = [int(m.value) for ms in recs.values() for m in ms]
            if not batch:
                continue
            with self.lock:
                for v in batch:
                    if v in self.committed:  # a successful commit covered it already
                        self.redelivered.append(v)
                    self.seen.append(v)
            try:
                self.c.commit()
            except Exception as e:  # noqa: BLE001 -- not committed: may come again
                self.errors += 1
                print("commit: %s" % type(e).__name__, flush=True)
                continue
            with self.lock:
                self.committed.update(batch)
        self.c.close(autocommit=False)


def body(tmp):
    exe = it.stratad_arg(__doc__)
    try:
        from kafka import KafkaProducer
    except ImportError:
        it.skip("needs kafka-python (python3-kafka)")
    zk = it.ZooKeeper(tmp)
    brokers = it.start_cluster(exe, tmp, zk, "/cg",
                               extra=[("offsets.topic.num.partitions", "3"),
                                      ("offsets.topic.replication.factor", "3"),
                                      ("replica.lag.time.max.ms", "4000"),
                                      ("leader.imbalance.check.interval.seconds", "1")])
    boot = it.bootstrap(brokers)

    def all_live():
        s = brokers[1].connect()
        try:
            return len(it.metadata(s, 5, 1, [], allow_auto=False)["brokers"]) == 3
        finally:
            s.close()
    it.wait_until("3 live brokers", all_live)
    it.expect("create %s (4 partitions, RF 3)" % TOPIC, it.create_topic_rf(brokers[1], TOPIC, 4, 3),
              0)

    # 1. one coordinator, named by everyone; NOT_COORDINATOR elsewhere
    coord = it.wait_until("every broker naming one coordinator",
                          lambda: agreed_coordinator(brokers))
    it.ok("FindCoordinator on brokers 1-3: broker %d" % coord)
    other = [i for i in brokers if i != coord][0]
    it.expect("Heartbeat to non-coordinator broker %d" % other, heartbeat(brokers[other]),
              NOT_COORDINATOR)
    err = it.wait_until("the coordinator loaded", lambda: (lambda e: e if e != 14 else None)(
        heartbeat(brokers[coord])))
    it.expect("Heartbeat of an unknown member to coordinator %d" % coord, err, 25)

    producer = KafkaProducer(bootstrap_servers=boot, acks="all", linger_ms=5, retries=20,
                             max_in_flight_requests_per_connection=1,
                             request_timeout_ms=10000, metadata_max_age_ms=500,
                             reconnect_backoff_ms=50, retry_backoff_ms=200)
    total = 0

    def produce(n):
        nonlocal total
        for k in range(n):
            producer.send(TOPIC, b"%06d" % (total + k), partition=(total + k) % 4)
        producer.flush(timeout=60)
        total += n
    produce(300)
    it.ok("produced 300 records (acks=all)")

    # 2. two consumers
    stop, lock = threading.Event(), threading.Lock()
    seen, committed = [], set()
    readers = [Reader("c%d" % k, boot, stop, lock, seen, committed) for k in (1, 2)]
    for r in readers:
        r.start()
    it.wait_until("150 records committed", lambda: len(committed) >= 150)
    # 3. kill the coordinator
    brokers[coord].kill()
    with lock:
        before = len(committed)
    it.ok("SIGKILLed coordinator %d with %d record(s) committed" % (coord, before))
    alive = {i: b for i, b in brokers.items() if i != coord}
    produce(300)
    it.ok("produced 300 more records to the survivors")
    new = it.wait_until("a new coordinator", lambda: (lambda n: n if n and n != coord else None)(
        agreed_coordinator(alive)), 60)
    it.ok("new coordinator: broker %d" % new)
    it.wait_until("every record read", lambda: len(set(seen)) >= total, 60)
    it.wait_until("commits through the new coordinator", lambda: len(committed) >= before + 100, 30)

    # 5. the old coordinator restarts, rejoins the ISR and gets its preferred
    #    leadership back: the interim coordinator drops the group, the
    #    consumers move back, and the restarted broker loads the offsets
    #    committed meanwhile (copied as a follower)
    brokers[coord].start()
    it.ok("restarted broker", coord)
    it.wait_until("broker %d coordinating again (preferred leader)" % coord,
                  lambda: agreed_coordinator(brokers) == coord, 60)
    if "dropped 1 group(s)" not in brokers[new].read_log():
        it.fail("broker %d did not drop the group when it lost the leadership" % new)
    it.ok("coordinator back on broker %d; broker %d dropped the group" % (coord, new))
    with lock:
        mid = len(committed)
    produce(200)
    it.wait_until("every record read", lambda: len(set(seen)) >= total, 60)
    it.wait_until("commits through broker %d" % coord, lambda: len(committed) >= mid + 100, 30)
    stop.set()
    for r in readers:
        r.join(timeout=20)

    # 4. (every phase) no loss; duplicates only from the uncommitted window
    with lock:
        got = list(seen)
    missing = sorted(set(range(total)) - set(got))
    if missing:
        it.fail("%d record(s) never read, first %r" % (len(missing), missing[:10]))
    counts = {}
    for v in got:
        counts[v] = counts.get(v, 0) + 1
    dups = sorted(v for v, n in counts.items() if n > 1)
    it.ok("read %d record(s), %d distinct, %d read twice (uncommitted window); %d poll/commit "
          "error(s) seen by the consumers" % (len(got), len(counts), len(dups),
                                              sum(r.errors for r in readers)))
    bad = sorted(v for r in readers for v in r.redelivered)
    if bad:
        it.fail("%d record(s) read again after a commit covering them had succeeded "
                "(committed offsets lost): first %r" % (len(bad), bad[:10]))
    it.ok("no record read again after a successful commit covered it")
    return 0


if __name__ == "__main__":
    raise SystemExit(it.run("strata-cgroups-", body))
