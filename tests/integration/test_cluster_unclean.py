#!/usr/bin/env python3
"""Cluster mode: unclean leader election and acks=all timeouts
(docs/replication.md). ZooKeeper + three brokers, one topic with one
partition and replication factor 3 (min.insync.replicas 1,
replica.lag.time.max.ms 30000 so only the controller changes the ISR here).

  1. ten records written with acks=all reach every replica;
  2. both followers are SIGSTOPped; an acks=all Produce with timeout_ms=1000
     gets REQUEST_TIMED_OUT (answered by the leader's wait timer; the time it
     took is printed, not asserted);
  3. once their ZooKeeper sessions expire the ISR is the leader alone, and it
     takes five acks=all records no follower has;
  4. the leader is SIGKILLed and the followers resume: no in-sync replica is
     alive, so with unclean.leader.election.enable=false (the default) the
     partition has no leader (Metadata: leader -1, LEADER_NOT_AVAILABLE), and
     still none two refresh periods later;
  5. AlterConfigs sets unclean.leader.election.enable=true on the topic: the
     controller makes a live replica leader (a WARN in its log; the ISR is that
     replica, joined by the other one once it has caught up), which takes an
     acks=all write; the five records only the dead leader had are lost as
     documented, the first ten are there;
  6. the old leader restarts, truncates its five records to follow the new
     leader, rejoins the ISR, and the three logs end byte-identical.
Skips (77) without java / ZooKeeper or kafka-python. Stopped by pid.

usage: test_cluster_unclean.py STRATAD
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

TOPIC = "uc"


def state(brokers):
    """(leader, sorted ISR) of partition 0 as the first answering live broker sees it."""
    st = it.partition_states(brokers, TOPIC)
    return (st[0][0], st[0][1]) if st and 0 in st else None


def registered(b, ids):
    """True when broker b's Metadata lists every broker id in ids."""
    s = b.connect()
    try:
        return set(ids) <= {n for n, _, _ in it.metadata(s, 5, 1, [TOPIC],
                                                         allow_auto=False)["brokers"]}
    finally:
        s.close()


def body(tmp):
    exe = it.stratad_arg(__doc__)
    try:
        from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
    except ImportError:
        it.skip("needs kafka-python (python3-kafka)")
    zk = it.ZooKeeper(tmp)
    brokers = it.start_cluster(exe, tmp, zk, "/uc", extra=[("replica.lag.time.max.ms", "30000")])
    boot = it.bootstrap(brokers)
    admin = KafkaAdminClient(bootstrap_servers=boot, request_timeout_ms=20000)
    admin.create_topics([NewTopic(TOPIC, 1, 3)])
    leader, _ = it.wait_until("leader and full ISR", lambda: (
        lambda s: s if s and s[1] == [1, 2, 3] else None)(state(brokers)))
    followers = [i for i in brokers if i != leader]
    it.ok("topic %s: leader %d, followers %r" % (TOPIC, leader, followers))

    # 1. ten records everywhere
    c = it.Conn(brokers[leader].port)
    for k in range(10):
        it.expect("acks=all record %d" % k,
                  it.produce(c, TOPIC, 0, it.batch([b"v%d" % k]), acks=-1)[0], 0)

    # 2. followers frozen: an acks=all write cannot complete and times out
    for i in followers:
        os.kill(brokers[i].proc.pid, signal.SIGSTOP)
    t0 = time.time()
    err, _, _ = it.parse_produce(c.call(0, 7, it.produce_body(
        TOPIC, 0, it.batch([b"timeout"]), acks=-1, timeout_ms=1000)))
    took = time.time() - t0
    it.expect("acks=all with timeout_ms=1000 and both followers frozen", err, 7)  # REQUEST_TIMED_OUT
    it.ok("REQUEST_TIMED_OUT after %.2f s (timeout_ms=1000)" % took)

    # 3. the followers' sessions expire: the ISR is the leader alone
    it.wait_until("ISR = the leader alone", lambda: (
        lambda s: s if s and s[1] == [leader] else None)(state({leader: brokers[leader]})), 40)
    for k in range(5):
        it.expect("acks=all record alone%d with the ISR = {%d}" % (k, leader),
                  it.produce(c, TOPIC, 0, it.batch([b"alone%d" % k]), acks=-1)[0], 0)
    c.close()

    # 4. the leader dies, the followers resume: nobody in sync is alive
    brokers[leader].kill()
    for i in followers:
        os.kill(brokers[i].proc.pid, signal.SIGCONT)
    alive = {i: brokers[i] for i in followers}
    it.wait_until("followers registered again", lambda: all(
        registered(brokers[i], followers) for i in followers), 40)
    it.wait_until("no leader (clean election only)", lambda: (
        lambda s: s if s and s[0] == -1 else None)(state(alive)), 40)
    time.sleep(5)  # two controller refresh periods (2 s): still nobody may lead
    st = state(alive)
    it.expect("leader after two more refreshes (unclean.leader.election.enable=false)",
              st[0] if st else None, -1)
    it.expect("ISR kept (the dead leader, the last in sync)", st[1], [leader])
    s = brokers[followers[0]].connect()
    try:
        t = it.metadata(s, 5, 1, [TOPIC], allow_auto=False)["topics"][TOPIC]
    finally:
        s.close()
    it.expect("Metadata partition error", t[1][0][0], 5)  # LEADER_NOT_AVAILABLE

    # 5. unclean election allowed on the topic
    admin.close()
    admin = KafkaAdminClient(bootstrap_servers=it.bootstrap(alive), request_timeout_ms=20000)
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, TOPIC,
                                        configs={"unclean.leader.election.enable": "true"})])
    admin.close()
    nl, isr = it.wait_until("an unclean leader", lambda: (
        lambda s: s if s and s[0] in alive else None)(state(alive)), 40)
    # the ISR starts as the new leader alone; the other live replica, which
    # holds the same records, may already be back in it
    if nl not in isr or leader in isr:
        it.fail("ISR after the unclean election: %r" % isr)
    if not any("unclean leader election" in brokers[i].read_log() and
               "replica %d, not in the ISR, leads" % nl in brokers[i].read_log()
               for i in followers):
        it.fail("no WARN about the unclean election of %d in the live brokers' logs" % nl)
    it.ok("leader %d elected uncleanly, ISR %r" % (nl, isr))
    c = it.Conn(brokers[nl].port)
    it.expect("acks=all to the unclean leader", it.produce(c, TOPIC, 0, it.batch([b"after"]),
                                                           acks=-1)[0], 0)

    # 6. the old leader returns, truncates, follows
    brokers[leader].start()
    it.wait_until("broker %d back in the ISR" % leader, lambda: (
        lambda s: s if s and s[1] == [1, 2, 3] else None)(state(brokers)), 60)
    if "truncating from" not in brokers[leader].read_log():
        it.fail("broker %d rejoined without truncating its five records" % leader)
    vals = [v for _, _, v in it.read_all(c, TOPIC, 0)]
    c.close()
    # the five written while the old leader was alone never reached a
    # follower: lost with the unclean election. The timed-out record may be
    # there: a follower's fetch parked at the leader when it was frozen can
    # have been answered with it, and is read after SIGCONT.
    ten = [b"v%d" % k for k in range(10)]
    if vals not in (ten + [b"after"], ten + [b"timeout", b"after"]):
        it.fail("records on the unclean leader: %r" % vals)
    it.ok("leader %d holds the ten records%s and 'after'; the five only the old leader had are "
          "gone" % (nl, " (and the timed-out one)" if len(vals) == 12 else ""))
    logs = it.wait_until("three identical logs", lambda: (
        lambda ls: ls if ls[0] and ls[0] == ls[1] == ls[2] else None)(
            [it.partition_log_bytes(tmp, i, TOPIC) for i in (1, 2, 3)]), 30)
    it.ok("the three logs are byte-identical (%d bytes)" % len(logs[0]))

    for b in brokers.values():
        b.stop_ok()
    zk.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(it.run("strata-unclean-", body))
