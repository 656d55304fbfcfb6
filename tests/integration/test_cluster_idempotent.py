#!/usr/bin/env python3
"""Cluster mode: an idempotent producer across a leader failover
(docs/replication.md). ZooKeeper + three brokers, a topic with 3 partitions,
replication factor 3 and min.insync.replicas=2.

  1. librdkafka (python3-confluent-kafka) with enable.idempotence=true and
     acks=all writes numbered records to every partition continuously
     (delivery callbacks record which were acknowledged, at which offset);
  2. after 2 s of acknowledged writes the last follower (assignment order) of
     partition V = 0 is frozen (SIGSTOP) for 1 s, well inside
     replica.lag.time.max.ms: the leader and the other follower keep copying,
     but acks=all cannot be answered, so the batches in flight (up to 5 per
     partition) are on the other follower and unacknowledged; then the leader
     of V is SIGKILLed (and the frozen one continued) while the producer keeps
     going. The other follower becomes leader (first in assignment order of
     the live ISR); librdkafka resends the unacknowledged batches to it, and it
     must recognise the ones it already has (the producer state it rebuilds
     from its log when it takes the leadership) instead of appending them
     again. The time from the kill to the first acknowledgement, from the new
     leader, of a record produced after the kill is printed (not asserted);
  3. the writes stop, the producer flushes; the killed broker restarts,
     catches up and rejoins every ISR, and the three copies of each partition
     become byte-identical;
  4. a librdkafka consumer reads every partition from the beginning: every
     acknowledged record exactly once, at the offset its acknowledgement
     named, and -- the producer being idempotent -- no record twice at all,
     not even one whose acknowledgement was lost; each partition holds its
     records in the order they were produced. The raw log files are checked
     the same way;
  5. a retry is acknowledged no earlier than its original (raw Produce v7):
     with one follower of partition 0 frozen, the same idempotent batch is
     sent twice, on two connections, acks=all -- as a client retries after a
     lost connection. Neither may be answered while the frozen follower lacks
     the batch (the one that arrives second is a duplicate: before the fix,
     it was answered at once); after SIGCONT both are answered 0 with the
     same base offset, and the record is in the log once.
Skips (77) without java / ZooKeeper or python3-confluent-kafka. Stopped by pid.

usage: test_cluster_idempotent.py STRATAD
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

TOPIC = "idem"
NPART = 3


def full_isr(brokers):
    def check():
        st = it.partition_states(brokers, TOPIC)
        if st and len(st) == NPART and all(isr == sorted(brokers) and leader in brokers
                                           for leader, isr, _ in st.values()):
            return st
        return None
    return check


def check_partition(what, p, vals, acked_off):
    """vals: [(offset, n)] of partition p as read. Fails unless the n are
    strictly increasing (no duplicate, produce order) and every acknowledged
    n sits at the offset its acknowledgement named."""
    ns = [n for _, n in vals]
    if len(set(ns)) != len(ns):
        seen, dup = set(), []
        for n in ns:
            if n in seen:
                dup.append(n)
            seen.add(n)
        it.fail("%s: partition %d holds %d duplicate record(s), first %r (%s)" % (
            what, p, len(dup), dup[:10],
            ", ".join("%d %s" % (n, "acked" if n in acked_off else "not acked")
                      for n in dup[:10])))
    if ns != sorted(ns):
        bad = next(i for i in range(1, len(ns)) if ns[i] < ns[i - 1])
        it.fail("%s: partition %d out of produce order at offset %d (%d after %d)" % (
            what, p, vals[bad][0], ns[bad], ns[bad - 1]))
    where = dict((n, off) for off, n in vals)
    missing = [n for n in acked_off if n not in where]
    if missing:
        it.fail("%s: partition %d lacks %d acknowledged record(s), first %r" % (
            what, p, len(missing), sorted(missing)[:10]))
    moved = [(n, acked_off[n], where[n]) for n in acked_off if where[n] != acked_off[n]]
    if moved:
        it.fail("%s: partition %d: %d record(s) not at the acknowledged offset, first "
                "(record, acked, found) %r" % (what, p, len(moved), sorted(moved)[:5]))


def body(tmp):
    exe = it.stratad_arg(__doc__)
    try:
        import confluent_kafka as ck
    except ImportError:
        it.skip("needs librdkafka's Python binding (python3-confluent-kafka: "
                "bash scripts/deps.sh)")
    it.ok("confluent-kafka %s, librdkafka %s" % (ck.version()[0], ck.libversion()[0]))
    zk = it.ZooKeeper(tmp)
    brokers = it.start_cluster(exe, tmp, zk, "/idem",
                               extra=[("replica.lag.time.max.ms", "4000")])
    it.expect("CreateTopics %s (3 partitions, RF 3, min.insync.replicas=2)" % TOPIC,
              it.create_topic_rf(brokers[1], TOPIC, NPART, 3,
                                 [("min.insync.replicas", "2")]), 0)
    st = it.wait_until("leaders and full ISRs", full_isr(brokers))
    it.ok("leaders %r" % {p: st[p][0] for p in sorted(st)})
    # (a frozen broker that leads partitions no longer holds up its followers'
    # fetches from other leaders: one connection per leader since 855beb6)
    vp = 0
    victim = st[vp][0]
    frozen = [r for r in st[vp][2] if r != victim][-1]
    victim_parts = [p for p in st if st[p][0] == victim]

    acked = {p: {} for p in range(NPART)}    # n -> offset
    failed = {p: [] for p in range(NPART)}   # (n, error)
    errors = []
    state = {"frozen_at": None, "killed_at": None, "first_after": None, "n_at_kill": None}

    def on_error(err):
        errors.append(err)
        print("client error: %s%s" % (err, " (FATAL)" if err.fatal() else ""), flush=True)

    def on_delivery(err, msg):
        p = msg.partition()
        n = int(msg.value().split(b"-")[1])
        if err is not None:
            failed[p].append((n, err))
            if len(failed[p]) <= 3:
                print("delivery of %d-%d failed: %s" % (p, n, err), flush=True)
            return
        acked[p][n] = msg.offset()
        if (state["killed_at"] and state["first_after"] is None and p in victim_parts and
                n >= state["n_at_kill"]):
            state["first_after"] = time.time()

    producer = ck.Producer({
        "bootstrap.servers": it.bootstrap(brokers),
        "enable.idempotence": True, "acks": "all",
        "linger.ms": 5, "message.timeout.ms": 60000, "request.timeout.ms": 10000,
        "retry.backoff.ms": 100, "topic.metadata.refresh.interval.ms": 1000,
        "reconnect.backoff.max.ms": 500, "error_cb": on_error})
    n = 0
    t0 = time.time()
    stop_at = None
    while True:
        now = time.time()
        if state["frozen_at"] is None and now - t0 > 2 and sum(map(len, acked.values())) > 100:
            os.kill(brokers[frozen].proc.pid, signal.SIGSTOP)
            state["frozen_at"] = now
            it.ok("SIGSTOPped broker %d (last replica of partition %d) after %d acknowledged "
                  "records" % (frozen, vp, sum(map(len, acked.values()))))
        if state["killed_at"] is None and state["frozen_at"] and now - state["frozen_at"] > 1:
            brokers[victim].kill()
            os.kill(brokers[frozen].proc.pid, signal.SIGCONT)
            state["killed_at"] = time.time()
            state["n_at_kill"] = n
            it.ok("SIGKILLed broker %d (leader of partition(s) %r), continued broker %d; "
                  "partition %d: %d record(s) produced and not acknowledged yet" % (
                      victim, victim_parts, frozen, vp, n - len(acked[vp])))
        if state["first_after"] and stop_at is None:
            stop_at = now + 2
        if stop_at and now > stop_at:
            break
        if state["killed_at"] and now - state["killed_at"] > 45:
            break
        if now - t0 > 60:
            break
        try:
            for p in range(NPART):
                producer.produce(TOPIC, b"%d-%08d" % (p, n), partition=p, on_delivery=on_delivery)
            n += 1
        except BufferError:
            producer.poll(0.1)
        producer.poll(0)
        time.sleep(0.003)
    left = producer.flush(70)
    del producer
    if left:
        it.fail("%d record(s) neither acknowledged nor failed 70 s after the writes stopped" % left)
    if not state["killed_at"]:
        it.fail("never got 100 acknowledgements before the kill")
    if not state["first_after"]:
        it.fail("no record produced after the kill was acknowledged (%d failed)" %
                sum(map(len, failed.values())))
    fatal = [e for e in errors if e.fatal()]
    if fatal:
        it.fail("the idempotent producer hit a fatal error: %s" % fatal[0])
    it.ok("new leader acknowledged the first write %.1f s after the kill "
          "(zookeeper.session.timeout.ms=6000); %d record(s) produced per partition, "
          "acknowledged %r, failed %r" % (
              state["first_after"] - state["killed_at"], n,
              [len(acked[p]) for p in range(NPART)], [len(failed[p]) for p in range(NPART)]))
    st = it.partition_states(brokers, TOPIC)
    it.ok("leaders, ISRs after the kill %r" % {p: st[p][:2] for p in sorted(st)})
    if any(st[p][0] == victim for p in victim_parts):
        it.fail("killed broker %d still named leader" % victim)

    brokers[victim].start()
    it.ok("restarted broker", victim)
    it.wait_until("broker %d back in every ISR" % victim, full_isr(brokers), 60)

    def identical():
        for p in range(NPART):
            logs = [it.partition_log_bytes(tmp, i, TOPIC, p) for i in brokers]
            if not logs[0] or any(x != logs[0] for x in logs):
                return None
        return True
    it.wait_until("three byte-identical copies of every partition", identical, 30)

    # the raw logs (what every replica holds)
    for p in range(NPART):
        raw = [(r["offset"], int(r["value"].split(b"-")[1]))
               for r in it.records(it.partition_log_bytes(tmp, victim, TOPIC, p))]
        check_partition("log files", p, raw, acked[p])
    it.ok("log files: no duplicate, produce order, acknowledged offsets")

    # a real consumer from the beginning
    consumer = ck.Consumer({"bootstrap.servers": it.bootstrap(brokers), "group.id": "idem-check",
                            "enable.auto.commit": False, "enable.partition.eof": True,
                            "error_cb": on_error})
    consumer.assign([ck.TopicPartition(TOPIC, p, ck.OFFSET_BEGINNING) for p in range(NPART)])
    got = {p: [] for p in range(NPART)}
    eof = set()
    deadline = time.time() + 30
    while len(eof) < NPART and time.time() < deadline:
        for m in consumer.consume(500, 1.0):
            if m.error():
                if m.error().code() == ck.KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                it.fail("consumer error: %s" % m.error())
            got[m.partition()].append((m.offset(), int(m.value().split(b"-")[1])))
    consumer.close()
    if len(eof) < NPART:
        it.fail("consumer did not reach the end of partitions %r" %
                sorted(set(range(NPART)) - eof))
    for p in range(NPART):
        check_partition("consumer", p, got[p], acked[p])
    total_acked = sum(map(len, acked.values()))
    total_read = sum(map(len, got.values()))
    it.ok("consumer: every one of the %d acknowledged records exactly once, at its "
          "acknowledged offset, in order; %d record(s) read, none twice" %
          (total_acked, total_read))

    # 5. a duplicate is not acknowledged before the ISR has the original
    st = it.partition_states(brokers, TOPIC)
    leader, _, reps = st[0]
    follower = [r for r in reps if r != leader][-1]
    pid = 1 << 40  # no such producer yet: accepted at any sequence
    rec = it.batch([b"0-99999999"], pid=pid, epoch=0, seq=0)
    os.kill(brokers[follower].proc.pid, signal.SIGSTOP)
    conns = [it.Conn(brokers[leader].port) for _ in range(2)]
    for c in conns:
        c.send(0, 7, it.produce_body(TOPIC, 0, rec, acks=-1, timeout_ms=30000))
    for k, c in enumerate(conns):
        c.s.settimeout(1.0)
        try:
            _, b = c.recv()
        except OSError:  # socket.timeout: nothing answered, as it must be
            continue
        os.kill(brokers[follower].proc.pid, signal.SIGCONT)
        it.fail("the %s send of one idempotent batch was answered %r (error, base, log start) "
                "while follower %d, in the ISR, was frozen without it" % (
                    ("first", "second")[k], it.parse_produce(b), follower))
    os.kill(brokers[follower].proc.pid, signal.SIGCONT)
    answers = []
    for c in conns:
        c.s.settimeout(30)
        _, b = c.recv()
        answers.append(it.parse_produce(b)[:2])
        c.close()
    if answers[0][0] or answers[0] != answers[1]:
        it.fail("the two sends of one idempotent batch answered %r (want 0 and one base "
                "offset)" % answers)
    c = it.Conn(brokers[leader].port)
    vals = [v for _, _, v in it.read_all(c, TOPIC, 0, answers[0][1])]
    c.close()
    it.expect("records from offset %d" % answers[0][1], vals, [b"0-99999999"])
    it.ok("a retried acks=all batch was not acknowledged while follower %d lacked it; "
          "after SIGCONT both sends answered 0 at offset %d, stored once" %
          (follower, answers[0][1]))

    for b in brokers.values():
        b.stop_ok()
    zk.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(it.run("strata-idem-", body))
