#!/usr/bin/env python3
"""Cluster mode, replication of a compacted topic (docs/replication.md):
ZooKeeper + three brokers, one partition, replication factor 3,
cleanup.policy=compact with small segments and an eager cleaner.

  1. one follower is SIGKILLed; keyed records (20 keys, many values each)
     are produced with acks=all to the leader, which cleans its log: its
     segments now skip offsets (a gap wherever older values were dropped);
  2. the follower restarts and copies the leader's compacted log: it catches
     up to the leader's log end and rejoins the ISR, and its log holds the
     same gaps -- every record it holds sits at the offset it was produced
     at, with the value produced there, and the latest value of every key is
     there (its log never says it stopped copying);
  3. a crash of that follower (SIGKILL, restart) loses nothing it had copied
     (crash recovery accepts the copied gaps);
  4. the leader is SIGKILLed: a new leader serves the compacted log to a
     consumer, latest value of every key included, offsets as produced.
Skips (77) without java / ZooKeeper. Stopped by pid.

usage: test_cluster_compacted.py STRATAD
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

TOPIC = "cmp"
KEYS = 20


def records_of(tmp, bid):
    """{offset: (key, value)} of the topic's log files on broker bid."""
    data = it.partition_log_bytes(tmp, bid, TOPIC)
    return {o: (k, v) for o, k, v in it.parse_batches(data)}


def has_gap(recs):
    offs = sorted(recs)
    return bool(offs) and len(offs) < offs[-1] - offs[0] + 1


def check_copy(what, recs, produced, latest):
    for o, kv in recs.items():
        if produced.get(o) != kv:
            it.fail("%s: offset %d holds %r, produced %r" % (what, o, kv, produced.get(o)))
    missing = [o for o in latest.values() if o not in recs]
    if missing:
        it.fail("%s: latest values missing at offsets %s" % (what, missing[:10]))
    it.ok(what, ": %d records at their produced offsets, latest value of all %d keys"
          % (len(recs), len(latest)))


def body(tmp):
    exe = it.stratad_arg(__doc__)
    zk = it.ZooKeeper(tmp)
    brokers = it.start_cluster(exe, tmp, zk, "/cmp", extra=[
        ("zookeeper.session.timeout.ms", "6000"),
        ("replica.lag.time.max.ms", "2000"),
        ("log.cleaner.backoff.ms", "200")])
    it.wait_until("every broker registered",
                  lambda: it.create_topic_rf(brokers[1], "probe", 1, 3) in (0, 36))
    it.expect("CreateTopics compacted RF=3",
              it.create_topic_rf(brokers[1], TOPIC, 1, 3, [
                  ("cleanup.policy", "compact"), ("segment.bytes", "4096"),
                  ("min.cleanable.dirty.ratio", "0.01")]), 0)

    def settled():
        st = it.partition_states(brokers, TOPIC)
        return st if st and st[0][0] >= 0 and len(st[0][1]) == 3 else None
    leader, _, replicas = it.wait_until("leader and full ISR", settled)[0]
    follower = [r for r in replicas if r != leader][0]
    it.ok("leader", leader, "follower to restart", follower)

    # 1. the follower away while the leader takes keyed writes and cleans
    brokers[follower].kill()
    produced = {}
    latest = {}
    c = it.Conn(brokers[leader].port)
    n = 0
    for rnd in range(60):
        keys = [b"k%d" % ((rnd * 7 + i) % KEYS) for i in range(10)]
        vals = [b"v%d-%s" % (n + i, b"x" * 60) for i in range(10)]
        err, base, _ = it.produce(c, TOPIC, 0, it.batch(vals, keys=keys), acks=-1)
        if err:
            it.fail("acks=all produce round %d: error %d" % (rnd, err))
        for i in range(10):
            produced[base + i] = (keys[i], vals[i])
            latest[keys[i]] = base + i
        n += 10
    c.close()
    end = max(produced) + 1
    it.ok("produced", len(produced), "records over", KEYS, "keys; log end", end)
    lrecs = it.wait_until("the leader cleaned (offset gaps in its log)",
                          lambda: (lambda r: r if has_gap(r) else None)(records_of(tmp, leader)),
                          timeout=60)
    it.ok("leader log holds", len(lrecs), "of", len(produced), "records")

    # 2. the follower copies the compacted log
    brokers[follower].start()

    def caught_up():
        st = it.partition_states(brokers, TOPIC)
        if not st or follower not in st[0][1]:
            return None
        r = records_of(tmp, follower)
        return r if r and max(r) == end - 1 else None
    frecs = it.wait_until("follower caught up and back in the ISR", caught_up, timeout=60)
    if not has_gap(frecs):
        it.fail("the follower's copy has no offset gap: it did not copy a compacted log")
    check_copy("follower copy", frecs, produced, latest)
    if "not copying" in brokers[follower].read_log():
        it.fail("the follower stopped copying the partition")

    # 3. a crash of the follower keeps the copied gaps
    brokers[follower].kill()
    brokers[follower].start()
    # registered again only once its old session has expired: until then the
    # ISR may still list it from before the crash
    it.wait_until("follower registered again after the crash",
                  lambda: brokers[follower].read_log().count("registered broker %d " % follower) >= 3)
    it.wait_until("follower back in the ISR after the crash",
                  lambda: (lambda s: s and follower in s[0][1])(it.partition_states(brokers, TOPIC)))
    after = records_of(tmp, follower)
    if max(after) != end - 1:
        it.fail("after the crash the follower's log ends at %d, before %d" % (max(after), end - 1))
    check_copy("follower after crash recovery", after, produced, latest)
    if "recovery truncated" in brokers[follower].read_log():
        it.fail("crash recovery truncated the copied log")

    # 4. failover: the new leader serves the compacted log
    brokers[leader].kill()

    def new_leader():
        st = it.partition_states(brokers, TOPIC)
        return st[0][0] if st and st[0][0] not in (-1, leader) else None
    nl = it.wait_until("a new leader", new_leader, timeout=60)
    c = it.Conn(brokers[nl].port)
    got = {o: (k, v) for o, k, v in it.read_all(c, TOPIC, 0)}
    c.close()
    check_copy("new leader %d serves" % nl, got, produced, latest)
    for b in brokers.values():
        if b.running():
            b.stop_ok()
    zk.stop()
    return 0


if __name__ == "__main__":
    sys.exit(it.run("strata-cmp-", body, keep_tmp_on_fail=True))
