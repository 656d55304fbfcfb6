#!/usr/bin/env python3
"""The follower fetcher (broker/bk_follow.c, docs/replication.md): one fetch in
flight per leader, and a follower behind its leader's log start.

ZooKeeper + 3 brokers, zookeeper.session.timeout.ms=30000 (a frozen broker
keeps its session, so it keeps its leaderships and stays registered),
replica.lag.time.max.ms=2500, replica.fetch.wait.max.ms 500 (default).

  1. topic "ft": 3 partitions, RF=3, min.insync.replicas=2, leaders spread
     over the three brokers. The leader X of partition 0 is frozen with
     SIGSTOP. For ~8 s acks=all records go to the partitions the two others
     (Y, Z) lead: every one is acknowledged, Y stays in the ISR of Z's
     partitions and Z in Y's (neither leader logs the other "not caught up"),
     while X leaves every ISR. A fetcher that asks its leaders in turn blocks
     on the frozen one (5 s socket timeout) and lets the other leader's
     partitions fall behind replica.lag.time.max.ms: that design fails here.
     After SIGCONT, X catches up: every ISR is full again and every
     follower's segments are byte-identical to its leader's.
  2. topic "del": 1 partition, RF=3. A follower F is frozen; once it is out
     of the ISR, 30 more records are written and DeleteRecords moves the
     leader's log start to 35, past F's log end. After SIGCONT, F's fetch is
     out of range: F asks the leader's log start, empties its log to restart
     at 35 (one segment 00000000000000000035.log, byte-identical to the
     leader's batches from 35 on) and rejoins the ISR.
Skips (77) when java / ZooKeeper is not installed. Every process is stopped
by pid.

usage: test_cluster_fetcher.py STRATAD
"""
import os
import signal
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

LAG_MS = 2500


def wait_for(what, fn, timeout=40):
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        try:
            last = fn()
        except OSError:
            last = None
        if last:
            print("  (%s: %.1f s)" % (what, time.time() - t0), flush=True)
            return last
        time.sleep(0.2)
    it.fail("%s: not within %d s (last: %r)" % (what, timeout, last))


def create_topic(b, name, partitions, rf, configs=()):
    """CreateTopics v0 with a replication factor; the topic's error code."""
    body = (struct.pack(">i", 1) + it.kstr(name) + struct.pack(">ihi", partitions, rf, 0) +
            struct.pack(">i", len(configs)) +
            b"".join(it.kstr(k) + it.kstr(v) for k, v in configs) + struct.pack(">i", 20000))
    c = it.Conn(b.port)
    try:
        r = it.Rd(c.call(19, 0, body))
    finally:
        c.close()
    if r.i32() != 1:
        it.fail("CreateTopics v0: not one topic in the answer")
    r.string()
    return r.i16()


def delete_records(b, topic, partition, offset):
    """DeleteRecords v0: (low watermark, error code)."""
    body = (struct.pack(">i", 1) + it.kstr(topic) + struct.pack(">iiq", 1, partition, offset) +
            struct.pack(">i", 10000))
    c = it.Conn(b.port)
    try:
        r = it.Rd(c.call(21, 0, body))
    finally:
        c.close()
    r.i32()  # throttle
    if r.i32() != 1:
        it.fail("DeleteRecords v0: not one topic in the answer")
    r.string()
    if r.i32() != 1:
        it.fail("DeleteRecords v0: not one partition in the answer")
    r.i32()
    low = r.i64()
    return low, r.i16()


def states(brokers, topic, among=None):
    """{partition: (leader, sorted ISR, replicas)} as every broker of among
    (default: all) sees it, or None until they agree and all have leaders."""
    views = []
    for i, b in brokers.items():
        if among is not None and i not in among:
            continue
        s = b.connect()
        try:
            t = it.metadata(s, 5, 1, [topic], allow_auto=False)["topics"].get(topic)
        finally:
            s.close()
        if not t or t[0] != 0 or not t[1]:
            return None
        v = {p[1]: (p[2], sorted(p[4]), list(p[3])) for p in t[1]}
        if any(p[0] != 0 or p[2] < 0 for p in t[1]):
            return None
        views.append(v)
    return views[0] if all(v == views[0] for v in views) else None


def log_files(tmp, broker, topic, partition):
    d = os.path.join(tmp, "b%d" % broker, "data", "%s-%d" % (topic, partition))
    return sorted(n for n in os.listdir(d) if n.endswith(".log")) if os.path.isdir(d) else []


def log_bytes(tmp, broker, topic, partition):
    d = os.path.join(tmp, "b%d" % broker, "data", "%s-%d" % (topic, partition))
    out = b""
    for name in log_files(tmp, broker, topic, partition):
        with open(os.path.join(d, name), "rb") as f:
            out += f.read()
    return out


def copies_equal(tmp, topic, st):
    for idx, (leader, _, reps) in st.items():
        want = log_bytes(tmp, leader, topic, idx)
        if not want or any(log_bytes(tmp, r, topic, idx) != want for r in reps):
            return False
    return True


def body(tmp):
    exe = it.stratad_arg(__doc__)
    zk = it.ZooKeeper(tmp)
    brokers = {}
    for i in (1, 2, 3):
        d = os.path.join(tmp, "b%d" % i)
        os.makedirs(d)
        brokers[i] = it.Broker(exe, d, it.cluster_overrides(
            zk, i, chroot="/fetcher",
            extra=[("zookeeper.session.timeout.ms", "30000"),
                   ("replica.lag.time.max.ms", str(LAG_MS))]))

    def registered():
        v = it.metadata(brokers[1].connect(), 5, 1, [], allow_auto=False)
        return sorted(n for n, _, _ in v["brokers"]) == [1, 2, 3] and v["controller"] >= 0
    wait_for("three brokers registered", registered)

    # 1. one leader frozen: the other leaders' partitions keep their followers
    it.expect("create ft (3 partitions, RF=3, min.insync.replicas=2)",
              create_topic(brokers[1], "ft", 3, 3, [("min.insync.replicas", "2")]), 0)
    st = wait_for("ft: every broker agrees, ISR full",
                  lambda: (lambda s: s if s and all(len(v[1]) == 3 for v in s.values())
                           else None)(states(brokers, "ft")))
    leaders = {idx: v[0] for idx, v in st.items()}
    if sorted(leaders.values()) != [1, 2, 3]:
        it.skip("leaders not spread over the three brokers (%r): nothing to show" % leaders)
    conns = {i: it.Conn(b.port) for i, b in brokers.items()}
    for idx, leader in leaders.items():
        for k in range(3):
            it.expect("ft-%d record %d (acks=all)" % (idx, k),
                      it.produce(conns[leader], "ft", idx, it.batch([b"a%d" % k]))[0], 0)
    wait_for("ft: followers' copies byte-identical", lambda: copies_equal(tmp, "ft", st), 30)

    x = leaders[0]
    others = sorted(i for i in brokers if i != x)
    y, z = others
    mark = {i: len(brokers[i].read_log()) for i in others}
    os.kill(brokers[x].proc.pid, signal.SIGSTOP)
    it.ok("SIGSTOPped broker %d (leader of ft-0); %d and %d lead the others" % (x, y, z))
    conns[x].close()
    sent = 0
    errs = set()
    t0 = time.time()
    while time.time() - t0 < 8:
        for idx, leader in leaders.items():
            if leader != x:
                errs.add(it.produce(conns[leader], "ft", idx, it.batch([b"b%d" % sent]))[0])
                sent += 1
        time.sleep(0.1)
    it.expect("acks=all records to ft-%s while broker %d is frozen: errors"
              % ("/".join(str(i) for i in leaders if leaders[i] != x), x), sorted(errs), [0])
    it.ok("%d acks=all records acknowledged by %d and %d while %d was frozen"
          % (sent, y, z, x))
    st2 = states(brokers, "ft", among=others)
    if not st2:
        it.fail("ft: brokers %d and %d disagree on the partition states" % (y, z))
    for idx, (leader, isr, _) in st2.items():
        if leader == x:
            continue
        it.expect("ft-%d (leader %d) ISR while %d is frozen" % (idx, leader, x), isr, others)
    for a, b in ((y, z), (z, y)):
        lines = [l for l in brokers[a].read_log()[mark[a]:].splitlines()
                 if "replica %d not caught up" % b in l]
        it.expect("leader %d: times it found follower %d not caught up" % (a, b), len(lines), 0)
    os.kill(brokers[x].proc.pid, signal.SIGCONT)
    it.ok("SIGCONT broker", x)
    st3 = wait_for("ft: broker %d back in every ISR" % x,
                   lambda: (lambda s: s if s and all(v[1] == [1, 2, 3] for v in s.values())
                            else None)(states(brokers, "ft")), 60)
    wait_for("ft: followers' copies byte-identical", lambda: copies_equal(tmp, "ft", st3), 30)
    it.ok("every copy of ft byte-identical after the thaw")
    for c in conns.values():
        c.close()

    # 2. a follower behind its leader's log start
    it.expect("create del (1 partition, RF=3)", create_topic(brokers[1], "del", 1, 3), 0)
    sd = wait_for("del: every broker agrees, ISR full",
                  lambda: (lambda s: s if s and s[0][1] == [1, 2, 3] else None)(
                      states(brokers, "del")))
    lead = sd[0][0]
    f = [i for i in sd[0][2] if i != lead][0]
    c = it.Conn(brokers[lead].port)
    errs = [it.produce(c, "del", 0, it.batch([b"d%d" % k]))[0] for k in range(10)]
    it.expect("del records 0-9 (acks=all): errors", sorted(set(errs)), [0])
    wait_for("del: copies byte-identical", lambda: copies_equal(tmp, "del", sd), 30)
    os.kill(brokers[f].proc.pid, signal.SIGSTOP)
    it.ok("SIGSTOPped follower %d of del (leader %d)" % (f, lead))
    alive = [i for i in brokers if i != f]
    wait_for("del: follower %d out of the ISR" % f,
             lambda: (lambda s: s and f not in s[0][1])(states(brokers, "del", among=alive)))
    errs = [it.produce(c, "del", 0, it.batch([b"d%d" % k]))[0] for k in range(10, 40)]
    it.expect("del records 10-39 (acks=all, follower %d frozen): errors" % f,
              sorted(set(errs)), [0])
    c.close()
    low, err = delete_records(brokers[lead], "del", 0, 35)
    it.expect("DeleteRecords below 35 on leader %d" % lead, (low, err), (35, 0))
    os.kill(brokers[f].proc.pid, signal.SIGCONT)
    it.ok("SIGCONT follower", f)
    wait_for("del: follower %d back in the ISR" % f,
             lambda: (lambda s: s and s[0][1] == [1, 2, 3])(states(brokers, "del")), 40)

    def restarted():
        want = b""
        for base, bb in it.split_batches(log_bytes(tmp, lead, "del", 0)):
            if base >= 35:
                want += bb
        return (log_files(tmp, f, "del", 0) == ["%020d.log" % 35] and want and
                log_bytes(tmp, f, "del", 0) == want)
    wait_for("del: follower %d's log restarted at 35 with the leader's batches" % f,
             restarted, 30)
    it.ok("follower %d emptied its log and copies from the leader's log start 35" % f)
    if "emptying the local log" not in brokers[f].read_log():
        it.fail("follower %d did not log the full truncation" % f)

    for i, b in brokers.items():
        b.stop_ok()
    zk.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(it.run("strata-fetcher-", body))
