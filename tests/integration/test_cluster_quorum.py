#!/usr/bin/env python3
"""Cluster mode: losing replicas under acks=all (docs/replication.md).
ZooKeeper + three brokers, a topic with one partition, replication factor 3
and min.insync.replicas=2. One kafka-python producer (acks=all, one record
at a time, no retries: a failed send is simply not acknowledged, nothing is
re-sent, so nothing can be duplicated by the client) writes numbered records
from a thread through the whole test and is never restarted.

  a. a follower is SIGKILLed while the writes go on: it leaves the ISR, the
     writes go on with an ISR of two; it restarts, catches up and rejoins the
     ISR, and its copy becomes byte-identical to the leader's;
  b1. both followers are SIGKILLed: every send made after that fails with a
     Kafka error (none is acknowledged, none hangs); a raw acks=all Produce
     (timeout_ms 3000) sent at once is answered with an error (7, 19, 20, 5
     or 6); once the leader's ISR is just itself, a raw acks=all Produce gets
     NOT_ENOUGH_REPLICAS (19); the survivor stays up and answers Metadata.
     The two restart: the same producer's sends are acknowledged again;
  b2. the same with the leader and one follower SIGKILLed: the survivor (in
     the ISR) becomes leader with an ISR of one, raw acks=all gets 19, sends
     fail; the two restart and sends are acknowledged again;
  end. the three copies are byte-identical; a kafka-python consumer reads
     every acknowledged record exactly once, at the offset its
     acknowledgement named, in order, and every unacknowledged one (the
     refused raw ones too) at most once.
Skips (77) without java / ZooKeeper or kafka-python. Stopped by pid.

usage: test_cluster_quorum.py STRATAD
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

TOPIC = "q"
NOT_ENOUGH_REPLICAS = 19
REQUEST_TIMEOUT_MS = 8000


class Writer(threading.Thread):
    """Sends b"%08d" % n one at a time with the given producer; sends[n] =
    (phase at send, "acked", offset) or (phase, "failed", error name) or
    (phase, "hung", text) when the future did not complete at all."""

    def __init__(self, producer):
        super().__init__(daemon=True)
        self.producer = producer
        self.phase = "start"
        self.sends = []
        self.lock = threading.Lock()
        self.want_pause = False
        self.idle = threading.Event()
        self.done = False

    def run(self):
        from kafka.errors import KafkaTimeoutError
        while not self.done:
            if self.want_pause:
                self.idle.set()
                time.sleep(0.05)
                continue
            n, phase = len(self.sends), self.phase
            try:
                md = self.producer.send(TOPIC, b"%08d" % n, partition=0).get(
                    timeout=REQUEST_TIMEOUT_MS / 1000 + 20)
                res = (phase, "acked", md.offset)
            except KafkaTimeoutError as e:
                hung = str(e).startswith("Timeout after waiting")
                res = (phase, "hung" if hung else "failed", "KafkaTimeoutError: %s" % e)
            except Exception as e:  # noqa: BLE001 -- any failure = not acknowledged
                res = (phase, "failed", type(e).__name__)
            with self.lock:
                self.sends.append(res)
            if res[1] != "acked":
                time.sleep(0.1)

    def count(self, phase, what="acked"):
        with self.lock:
            return sum(1 for s in self.sends if s[0] == phase and s[1] == what)

    def completed(self, phase):
        with self.lock:
            return sum(1 for s in self.sends if s[0] == phase)

    def pause(self):
        """Returns once no send is in flight (the writer waits)."""
        self.idle.clear()
        self.want_pause = True
        if not self.idle.wait(REQUEST_TIMEOUT_MS / 1000 + 40):
            it.fail("the writer's send did not complete")

    def resume(self, phase):
        self.phase = phase
        self.want_pause = False

    def summary(self, phase):
        with self.lock:
            ss = [s for s in self.sends if s[0] == phase]
        errs = {}
        for s in ss:
            if s[1] != "acked":
                errs[s[2]] = errs.get(s[2], 0) + 1
        return "%s: %d sent, %d acknowledged, failures %r" % (
            phase, len(ss), sum(1 for s in ss if s[1] == "acked"), errs)


def raw_produce_error(b, value, timeout_ms=3000):
    """Raw acks=all Produce v7 with timeout_ms to broker b -> its error code
    (the broker checks expired acks=all waits at least every 2 s, so 20 s
    more than timeout_ms is only a bound against a hang)."""
    c = it.Conn(b.port, timeout=timeout_ms / 1000 + 20)
    t0 = time.time()
    try:
        err = it.parse_produce(c.call(0, 7, it.produce_body(TOPIC, 0, it.batch([value]), acks=-1,
                                                            timeout_ms=timeout_ms)))[0]
    except OSError as e:
        it.fail("raw acks=all Produce (timeout_ms %d) to broker %s: no answer (%s)" %
                (timeout_ms, b.addr, e))
    finally:
        c.close()
    print("  (raw acks=all, timeout_ms %d, answered %d in %.1f s)" %
          (timeout_ms, err, time.time() - t0), flush=True)
    return err


def body(tmp):
    exe = it.stratad_arg(__doc__)
    try:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    except ImportError:
        it.skip("needs kafka-python (python3-kafka)")
    zk = it.ZooKeeper(tmp)
    brokers = it.start_cluster(exe, tmp, zk, "/quorum",
                               extra=[("replica.lag.time.max.ms", "4000")])
    ids = sorted(brokers)
    it.expect("CreateTopics %s (RF 3, min.insync.replicas=2)" % TOPIC,
              it.create_topic_rf(brokers[ids[0]], TOPIC, 1, 3, [("min.insync.replicas", "2")]), 0)

    def state(among=None):
        st = it.partition_states(among or brokers, TOPIC)
        return st[0] if st else None

    def isr_is(want, among=None):
        return lambda: (lambda s: s if s and s[1] == sorted(want) and s[0] in want else None)(
            state(among))

    leader, _, reps = it.wait_until("leader and full ISR", isr_is(ids))
    it.ok("leader %d, replicas %r" % (leader, reps))
    boot = it.bootstrap(brokers)
    producer = KafkaProducer(bootstrap_servers=boot, acks="all", retries=0,
                             max_in_flight_requests_per_connection=1, linger_ms=0,
                             request_timeout_ms=REQUEST_TIMEOUT_MS, max_block_ms=5000,
                             metadata_max_age_ms=500, reconnect_backoff_ms=50,
                             reconnect_backoff_max_ms=500, retry_backoff_ms=100)
    w = Writer(producer)
    w.start()

    def acked_in(phase, k, timeout=60):
        it.wait_until("%d sends acknowledged (%s)" % (k, phase),
                      lambda: w.count(phase) >= k, timeout)

    def identical():
        logs = [it.partition_log_bytes(tmp, i, TOPIC) for i in ids]
        return logs[0] and all(x == logs[0] for x in logs)

    acked_in("start", 50)

    # a. a follower killed under load, restarted: catches up, rejoins
    f = [r for r in reps if r != leader][-1]
    w.phase = "a-follower-down"
    brokers[f].kill()
    it.ok("SIGKILLed follower", f)
    it.wait_until("follower %d out of the ISR" % f, isr_is([i for i in ids if i != f]))
    acked_in("a-follower-down", 20)
    brokers[f].start()
    w.phase = "a-restarted"
    it.ok("restarted broker", f)
    it.wait_until("broker %d back in the ISR" % f, isr_is(ids), 60)
    acked_in("a-restarted", 20)
    w.pause()
    it.wait_until("broker %d's copy byte-identical to the leader's" % f, identical, 30)
    it.ok(w.summary("a-follower-down"))
    it.ok(w.summary("a-restarted"))

    # b. two of three down, then back
    def two_down(phase, victims):
        survivor = [i for i in ids if i not in victims][0]
        w.resume(phase + "-killing")
        acked_in(phase + "-killing", 10)
        for v in victims:
            brokers[v].kill()
        w.phase = phase + "-down"  # from here no send can reach two replicas
        it.ok("SIGKILLed brokers %r; %d survives" % (victims, survivor))
        # at once, before the ZooKeeper sessions of the dead expire: the survivor
        # answers (REQUEST_TIMED_OUT / NOT_ENOUGH_REPLICAS(_AFTER_APPEND) as
        # leader, NOT_LEADER_OR_FOLLOWER / LEADER_NOT_AVAILABLE otherwise)
        err = raw_produce_error(brokers[survivor], b"raw-" + phase.encode() + b"-early")
        if err not in (5, 6, 7, 19, 20):
            it.fail("raw acks=all Produce to %d right after the kill: error %d" % (survivor, err))
        it.ok("raw acks=all Produce to %d right after the kill -> %d" % (survivor, err))
        alone = {survivor: brokers[survivor]}
        it.wait_until("broker %d leads with an ISR of itself" % survivor,
                      isr_is([survivor], alone), 40)
        it.ok("broker %d answers Metadata: leader %d, ISR [%d]" % (survivor, survivor, survivor))
        it.expect("raw acks=all Produce to %d with an ISR of one" % survivor,
                  raw_produce_error(brokers[survivor], b"raw-" + phase.encode() + b"-alone"),
                  NOT_ENOUGH_REPLICAS)
        it.wait_until("3 sends completed (%s-down)" % phase,
                      lambda: w.completed(phase + "-down") >= 3, REQUEST_TIMEOUT_MS / 1000 + 40)
        w.pause()
        with w.lock:
            bad = [(n, s) for n, s in enumerate(w.sends)
                   if s[0] == phase + "-down" and s[1] != "failed"]
        if bad:
            it.fail("with brokers %r down: sends not failed cleanly (record, (phase, what, "
                    "detail)): %r" % (victims, bad[:5]))
        if not brokers[survivor].running():
            it.fail("broker %d exited with two of three down" % survivor)
        it.ok(w.summary(phase + "-killing"))
        it.ok(w.summary(phase + "-down") + " (every one failed)")
        for v in victims:
            brokers[v].start()
        it.ok("restarted brokers", victims)
        w.resume(phase + "-back")
        acked_in(phase + "-back", 20)
        it.wait_until("every broker in the ISR again", isr_is(ids), 60)
        it.ok(w.summary(phase + "-back") + " (the same producer)")
        return survivor

    st = state()
    two_down("b1", [r for r in st[2] if r != st[0]])
    st = state()
    two_down("b2", [st[0], [r for r in st[2] if r != st[0]][0]])

    w.pause()
    w.done = True
    w.join(10)
    producer.close(5)
    it.wait_until("three byte-identical copies", identical, 30)

    with w.lock:
        sends = list(w.sends)
    acked = {n: s[2] for n, s in enumerate(sends) if s[1] == "acked"}
    consumer = KafkaConsumer(bootstrap_servers=boot, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition(TOPIC, 0)])
    got, raw = [], []
    for m in consumer:
        if m.value.startswith(b"raw-"):
            raw.append(m.value)
        else:
            got.append((m.offset, int(m.value)))
    consumer.close()
    if len(set(raw)) != len(raw):
        it.fail("a refused raw record read more than once: %r" % raw)
    ns = [n for _, n in got]
    if len(set(ns)) != len(ns):
        dup = sorted({n for n in ns if ns.count(n) > 1})
        it.fail("records read more than once: %r" % dup[:10])
    if ns != sorted(ns):
        it.fail("records out of the order they were sent in")
    where = dict((n, off) for off, n in got)
    missing = sorted(n for n in acked if n not in where)
    if missing:
        it.fail("%d acknowledged record(s) missing, first %r" % (len(missing), missing[:10]))
    moved = sorted((n, acked[n], where[n]) for n in acked if where[n] != acked[n])
    if moved:
        it.fail("record(s) not at their acknowledged offset (record, acked, found): %r" %
                moved[:5])
    it.ok("consumer: every one of the %d acknowledged records exactly once, at its "
          "acknowledged offset, in order; %d of %d unacknowledged sends present (once each)" %
          (len(acked), len(ns) - len(acked), len(sends) - len(acked)))

    for b in brokers.values():
        b.stop_ok()
    zk.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(it.run("strata-quorum-", body))
