#!/usr/bin/env python3
"""Cluster mode, replication under failure (docs/replication.md): ZooKeeper +
three brokers, a topic with one partition, replication factor 3 and
min.insync.replicas=2.

  1. kafka-python produces numbered records with acks=all, one at a time
     (max_in_flight 1, retries 0: a record whose send failed is simply not
     acknowledged and never re-sent, so nothing can be duplicated by a retry;
     kafka-python 2.0.2 has no idempotent producer);
  2. after 150 acknowledged records the partition's leader is SIGKILLed while
     the producer keeps going; a new leader takes over (the time from the kill
     to the first acknowledged record after it is printed, not asserted);
  3. the dead broker restarts, truncates to the new leader if needed, catches
     up and rejoins the ISR (all three again);
  4. a consumer (kafka-python, from the beginning, on any broker) reads every
     acknowledged record exactly once and in order; records whose send failed
     appear at most once;
  5. a divergent tail: the followers are SIGSTOPped (for ~1.5 s, long enough
     for their parked fetches to expire) while the leader takes 5 acks=1 records, the leader is SIGKILLed, a follower takes
     over and takes an acks=all write; the old leader restarts, truncates the
     5 records (its log says so), rejoins the ISR, and all three logs end up
     byte-identical, without the tail;
  6. controlled shutdown: the leader stopped with SIGTERM first hands its
     leadership over (its log says so), a survivor names the new leader at
     once, and acks=all writes go on (ISR of two = min.insync.replicas).
Skips (77) without java / ZooKeeper or kafka-python. Stopped by pid.

usage: test_cluster_failover.py STRATAD
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

TOPIC = "fo"


def state(brokers):
    """(leader, isr) of partition 0 as the first answering live broker sees
    it, or None (no answer, or no leader: the partition's LEADER_NOT_AVAILABLE)."""
    st = it.partition_states(brokers, TOPIC)
    p = st.get(0) if st else None
    return (p[0], p[1]) if p and p[0] >= 0 else None


def body(tmp):
    exe = it.stratad_arg(__doc__)
    try:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    except ImportError:
        it.skip("needs kafka-python (python3-kafka)")
    zk = it.ZooKeeper(tmp)
    brokers = it.start_cluster(exe, tmp, zk, "/fo", extra=[("replica.lag.time.max.ms", "4000")])
    boot = it.bootstrap(brokers)
    it.expect("create %s (RF 3, min.insync.replicas=2)" % TOPIC,
              it.create_topic_rf(brokers[1], TOPIC, 1, 3, [("min.insync.replicas", "2")]), 0)
    leader, isr = it.wait_until("leader and full ISR",
                                lambda: (lambda s: s if s and s[1] == [1, 2, 3]
                                         else None)(state(brokers)))
    it.ok("topic %s: leader %d, ISR %r, min.insync.replicas=2" % (TOPIC, leader, isr))

    producer = KafkaProducer(bootstrap_servers=boot, acks="all", retries=0,
                             max_in_flight_requests_per_connection=1, linger_ms=0,
                             request_timeout_ms=10000, metadata_max_age_ms=500,
                             reconnect_backoff_ms=50, retry_backoff_ms=100)
    acked, failed = [], []
    killed_at, first_after = None, None
    n = 0
    deadline = time.time() + 60
    while time.time() < deadline:
        v = b"%06d" % n
        try:
            producer.send(TOPIC, v, partition=0).get(timeout=15)
            acked.append(n)
            if killed_at and first_after is None:
                first_after = time.time()
        except Exception as e:  # noqa: BLE001 -- any failure = not acknowledged
            failed.append(n)
            if len(failed) < 3 or len(failed) % 50 == 0:
                print("send %d failed: %s" % (n, type(e).__name__), flush=True)
            time.sleep(0.05)
        n += 1
        if killed_at is None and len(acked) == 150:
            brokers[leader].kill()
            killed_at = time.time()
            it.ok("SIGKILLed leader", leader, "after 150 acknowledged records")
        if first_after and len(acked) >= 300:
            break
    producer.close()
    if not first_after:
        it.fail("no record acknowledged after the leader was killed (%d failed)" % len(failed))
    it.ok("new leader took writes %.1f s after the kill (zookeeper.session.timeout.ms=6000); "
          "%d acknowledged, %d failed sends" % (first_after - killed_at, len(acked), len(failed)))
    new_leader, isr2 = it.wait_until("a new leader", lambda: state(brokers))
    it.ok("leader %d -> %d, ISR %r" % (leader, new_leader, isr2))

    brokers[leader].start()
    it.ok("restarted broker", leader)
    it.wait_until("broker %d back in the ISR" % leader,
             lambda: (lambda s: s if s and s[1] == [1, 2, 3] else None)(state(brokers)), 60)
    it.ok("broker %d caught up and rejoined the ISR" % leader)

    consumer = KafkaConsumer(bootstrap_servers=boot, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition(TOPIC, 0)])
    got = []
    for m in consumer:
        got.append(int(m.value))
    consumer.close()
    it.ok("consumer read %d record(s)" % len(got))
    if len(set(got)) != len(got):
        dup = sorted({x for x in got if got.count(x) > 1})[:10]
        it.fail("records read more than once: %r" % dup)
    pos = {v: i for i, v in enumerate(got)}
    missing = [a for a in acked if a not in pos]
    if missing:
        it.fail("%d acknowledged record(s) missing, first %r" % (len(missing), missing[:10]))
    order = [pos[a] for a in acked]
    if order != sorted(order):
        it.fail("acknowledged records out of order")
    extra = [g for g in got if g not in set(acked)]
    it.ok("every one of the %d acknowledged records exactly once, in order; %d unacknowledged "
          "send(s) present once each" % (len(acked), len(extra)))

    # 5. a divergent tail: the followers are frozen for a moment while the
    #    leader takes 5 acks=1 records they never copy; the leader is killed;
    #    a follower becomes leader; the old leader restarts with 5 records the
    #    new leader does not have and must truncate them (OffsetForLeaderEpoch)
    leader, _ = it.wait_until("leader", lambda: state(brokers))
    followers = [i for i in brokers if i != leader]
    for i in followers:
        os.kill(brokers[i].proc.pid, signal.SIGSTOP)
    # their fetches parked at the leader expire (max_wait 20 ms) and are
    # answered empty; none is sent again while they are stopped
    time.sleep(1.2)
    c = it.Conn(brokers[leader].port)
    for k in range(5):
        it.expect("acks=1 record %d to leader %d while its followers are frozen" % (k, leader),
                  it.produce(c, TOPIC, 0, it.batch([b"tail%d" % k]), acks=1)[0], 0)
    c.close()
    brokers[leader].kill()
    for i in followers:
        os.kill(brokers[i].proc.pid, signal.SIGCONT)
    it.ok("killed leader %d with a 5-record tail no follower has" % leader)
    alive = {i: brokers[i] for i in followers}
    nl, _ = it.wait_until("a new leader among %r" % followers,
                     lambda: (lambda st: st if st and st[0] in alive else None)(state(alive)))
    c = it.Conn(brokers[nl].port)
    err, base, _ = it.produce(c, TOPIC, 0, it.batch([b"after"]), acks=-1)
    c.close()
    it.expect("acks=all to new leader %d" % nl, err, 0)
    brokers[leader].start()
    it.wait_until("broker %d back in the ISR after its tail" % leader,
             lambda: (lambda st: st if st and st[1] == [1, 2, 3] else None)(state(brokers)), 60)
    if "truncating from" not in brokers[leader].read_log():
        it.fail("broker %d rejoined without truncating its tail" % leader)
    it.ok("broker %d truncated its divergent tail and rejoined the ISR" % leader)

    def same_logs():
        logs = [it.partition_log_bytes(tmp, i, TOPIC) for i in brokers]
        return logs[0] and all(x == logs[0] for x in logs)
    it.wait_until("all three logs byte-identical", same_logs, 30)
    it.ok("all three replicas byte-identical again")
    c = it.Conn(brokers[nl].port)
    vals = [v for _, _, v in it.read_all(c, TOPIC, 0)]
    c.close()
    if any(v.startswith(b"tail") for v in vals):
        it.fail("the never-replicated acks=1 tail is readable after failover")
    it.expect("last record on leader %d" % nl, vals[-1], b"after")

    # 6. controlled shutdown: SIGTERM the leader; it hands the leadership over
    #    before it exits, so a survivor names a new leader right away
    t0 = time.time()
    brokers[nl].stop_ok("broker %d (SIGTERM)" % nl)
    stopped = time.time() - t0
    if "controlled shutdown: leadership moved" not in brokers[nl].read_log():
        it.fail("broker %d stopped without moving its leadership first" % nl)
    rest = {i: b for i, b in brokers.items() if i != nl}
    nl2, isr3 = it.wait_until("a survivor names the new leader",
                         lambda: (lambda st: st if st and st[0] in rest else None)(state(rest)), 5)
    it.ok("controlled shutdown of %d took %.1f s; new leader %d, ISR %r (no session timeout "
          "waited for)" % (nl, stopped, nl2, isr3))
    c = it.Conn(brokers[nl2].port)
    it.expect("acks=all to leader %d after the controlled shutdown" % nl2,
              it.produce(c, TOPIC, 0, it.batch([b"last"]), acks=-1)[0], 0)
    c.close()

    for b in rest.values():
        b.stop_ok()
    zk.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(it.run("strata-failover-", body))
