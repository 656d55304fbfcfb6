#!/usr/bin/env python3
"""Cluster mode: controlled shutdown and preferred-leader election
(docs/replication.md). ZooKeeper + three brokers with
leader.imbalance.check.interval.seconds=1; an RF=3 topic with 3 partitions
whose preferred leaders (first replicas) are the three brokers.

  1. every partition is led by its preferred replica;
  2. the broker leading some partitions is stopped with SIGTERM: it moves its
     leadership away before it exits (controlled shutdown; its log says so),
     so the survivors name new leaders at once;
  3. it is started again, catches up and rejoins every ISR; the controller
     then gives its partitions back to it (auto.leader.rebalance.enable) and
     records written meanwhile are all still there.
Skips (77) without java / ZooKeeper or kafka-python. Stopped by pid.

usage: test_cluster_preferred.py STRATAD
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

TOPIC = "pref"


def parts(b):
    s = b.connect()
    try:
        t = it.metadata(s, 5, 1, [TOPIC], allow_auto=False)["topics"].get(TOPIC)
    finally:
        s.close()
    if not t or t[0] != 0:
        return None
    return sorted(t[1], key=lambda x: x[1])


def body(tmp):
    exe = it.stratad_arg(__doc__)
    try:
        from kafka import KafkaProducer
    except ImportError:
        it.skip("needs kafka-python (python3-kafka)")
    zk = it.ZooKeeper(tmp)
    brokers = it.start_cluster(exe, tmp, zk, "/pref",
                               extra=[("leader.imbalance.check.interval.seconds", "1")])
    it.expect("create %s (3 partitions, RF 3)" % TOPIC, it.create_topic_rf(brokers[1], TOPIC, 3, 3),
              0)

    def preferred_everywhere(among):
        def check():
            for b in among.values():
                ps = parts(b)
                if not ps or len(ps) != 3:
                    return None
                for err, _, leader, reps, isr in ps:
                    if err or leader != reps[0] or sorted(isr) != [1, 2, 3]:
                        return None
            return ps
        return check
    ps = it.wait_until("every partition led by its preferred replica, full ISR",
                       preferred_everywhere(brokers))
    it.expect("preferred leaders", sorted(p[2] for p in ps), [1, 2, 3])

    victim = ps[0][2]
    theirs = [p[1] for p in ps if p[2] == victim]
    brokers[victim].stop_ok("broker %d (SIGTERM)" % victim)
    if "controlled shutdown: leadership moved" not in brokers[victim].read_log():
        it.fail("broker %d did not move its leadership before stopping" % victim)
    rest = {i: b for i, b in brokers.items() if i != victim}
    moved = it.wait_until("survivors lead partition(s) %r" % theirs, lambda: (
        lambda ps: ps if ps and all(p[2] in rest and victim not in p[4] for p in ps) else None)(
            parts(rest[min(rest)])), 5)
    it.ok("after the controlled shutdown of %d: leaders %r" % (victim, [p[2] for p in moved]))

    c = it.Conn(brokers[moved[theirs[0]][2]].port)
    for k in range(10):
        it.expect("acks=all record %d while broker %d is down" % (k, victim),
                  it.produce(c, TOPIC, theirs[0], it.batch([b"m%d" % k]), acks=-1)[0], 0)
    c.close()

    brokers[victim].start()
    it.ok("restarted broker", victim)
    ps = it.wait_until("leadership back on the preferred replicas",
                       preferred_everywhere(brokers), 40)
    it.expect("partition %d led by %d again" % (theirs[0], victim), ps[theirs[0]][2], victim)
    c = it.Conn(brokers[victim].port)
    vals = [v for _, _, v in it.read_all(c, TOPIC, theirs[0])]
    c.close()
    it.expect("records written while %d was down, read from it as leader" % victim,
              [v for v in vals if v.startswith(b"m")], [b"m%d" % k for k in range(10)])

    # 4. ZooKeeper restarted under load: acks=all writes (no client retries)
    #    keep being acknowledged while it is down and after it is back, and the
    #    cluster view is intact afterwards
    producer = KafkaProducer(bootstrap_servers=it.bootstrap(brokers),
                             acks="all", retries=0, request_timeout_ms=10000)
    sent = failed = 0
    t0 = time.time()
    restarted = False
    while time.time() - t0 < 8:
        try:
            producer.send(TOPIC, b"z%d" % sent).get(timeout=15)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("send failed: %s" % type(e).__name__, flush=True)
        sent += 1
        if not restarted and time.time() - t0 > 2:
            zk.stop()
            time.sleep(2)
            zk.start()
            restarted = True
            it.ok("ZooKeeper SIGKILLed, down 2 s, started again")
    producer.close()
    it.expect("acks=all sends failed across the ZooKeeper restart (of %d)" % sent, failed, 0)
    it.wait_until("every partition led by its preferred replica after the restart",
                  preferred_everywhere(brokers))

    for b in brokers.values():
        b.stop_ok()
    zk.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(it.run("strata-pref-", body))
