#!/usr/bin/env python3
"""Cluster mode, stage 1 (docs/replication.md): ZooKeeper + three brokers with
metadata.store=zookeeper.

  1. three brokers (racks r1 r2 r3) register; every broker's Metadata lists all
     three with their racks' ports, the same cluster id and the same controller;
  2. kafka-python's admin client creates an RF=3 topic with 3 partitions; every
     broker's Metadata then agrees on leaders, replicas and ISR (replicas = the
     three brokers, ISR = replicas, leaders spread over the brokers);
  3. Produce to a partition's leader succeeds; Produce and Fetch to a broker
     that does not lead it answer NOT_LEADER_OR_FOLLOWER (6);
     then 20 records more per partition (acks=all): every follower's
     segments become byte-identical to its leader's (the follower fetcher);
  4. a broker frozen with SIGSTOP past zookeeper.session.timeout.ms leaves the
     broker list and every ISR (leaders move off it); after SIGCONT it starts
     a new session, registers again, catches up and rejoins every ISR (the
     leader re-admits it);
  5. the controller broker is SIGKILLed: another broker becomes controller
     with a higher controller epoch (from its log), the dead broker leaves
     the Metadata broker list and every ISR, and partitions it led get a new
     leader among the survivors, which serves every record written before;
  6. a topic with min.insync.replicas=3 then refuses acks=all produce with
     NOT_ENOUGH_REPLICAS (19) and still takes acks=1.
Skips (77) when java / ZooKeeper is not installed. Brokers and ZooKeeper are
stopped by pid.

usage: test_cluster.py STRATAD
"""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

TOPIC = "rf3"


def meta(b, topics):
    s = b.connect()
    try:
        return it.metadata(s, 5, 1, topics, allow_auto=False)
    finally:
        s.close()


def wait_for(what, fn, timeout=30):
    deadline = time.time() + timeout
    last = None
    t0 = time.time()
    while time.time() < deadline:
        last = fn()
        if last:
            print("  (%s: %.1f s)" % (what, time.time() - t0), flush=True)
            return last
        time.sleep(0.2)
    it.fail("%s: not within %d s (last: %r)" % (what, timeout, last))


def produce_err(b, partition):
    """Produce v7 (acks=1) of one record to TOPIC-partition on broker b: its error code."""
    c = it.Conn(b.port)
    try:
        return it.produce(c, TOPIC, partition, it.batch([b"v"]), acks=1)[0]
    finally:
        c.close()


def fetch_err(b, partition):
    """Fetch v4 of TOPIC-partition from offset 0 on broker b: its error code."""
    c = it.Conn(b.port)
    try:
        return it.fetch(c, TOPIC, partition, 0)[0]
    finally:
        c.close()


def log_bytes(tmp, broker, partition):
    """Concatenated .log segment files of TOPIC-partition in broker's data dir."""
    d = os.path.join(tmp, "b%d" % broker, "data", "%s-%d" % (TOPIC, partition))
    out = b""
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if name.endswith(".log"):
            with open(os.path.join(d, name), "rb") as f:
                out += f.read()
    return out


def controller_epochs(b):
    return [int(x) for x in re.findall(r"is the controller \(epoch (\d+)\)", b.read_log())]


def body(tmp):
    exe = it.stratad_arg(__doc__)
    try:
        from kafka.admin import KafkaAdminClient, NewTopic
    except ImportError:
        it.skip("needs kafka-python (python3-kafka)")
    zk = it.ZooKeeper(tmp)
    it.ok("ZooKeeper on", zk.connect)
    brokers = {}
    for i in (1, 2, 3):
        d = os.path.join(tmp, "b%d" % i)
        os.makedirs(d)
        brokers[i] = it.Broker(exe, d, it.cluster_overrides(
            zk, i, rack="r%d" % i, chroot="/strata",
            extra=[("zookeeper.session.timeout.ms", "10000"),
                   ("replica.lag.time.max.ms", "2000")]))
    ports = {i: b.port for i, b in brokers.items()}

    # 1. registration, one cluster id, one controller
    def all_registered():
        views = [meta(b, [])for b in brokers.values()]
        ok = all(sorted(n for n, _, _ in v["brokers"]) == [1, 2, 3] for v in views)
        ctl = {v["controller"] for v in views}
        cid = {v["cluster"] for v in views}
        return views if ok and len(ctl) == 1 and -1 not in ctl and len(cid) == 1 else None
    views = wait_for("all brokers registered, one controller", all_registered)
    it.expect("brokers listed with their ports",
              sorted((n, p) for n, _, p in views[0]["brokers"]), sorted(ports.items()))
    controller = views[0]["controller"]
    it.ok("controller is broker", controller, "cluster id", views[0]["cluster"])

    # 2. an RF=3 topic through kafka-python's admin client
    admin = KafkaAdminClient(bootstrap_servers=brokers[2].addr, request_timeout_ms=20000)
    admin.create_topics([NewTopic(TOPIC, 3, 3),
                         NewTopic("strict", 1, 3, topic_configs={"min.insync.replicas": "3"})])
    admin.close()
    it.ok("created", TOPIC, "with 3 partitions, RF=3")

    def agreed():
        views = [meta(b, [TOPIC])["topics"].get(TOPIC) for b in brokers.values()]
        if any(v is None or v[0] != 0 for v in views):
            return None
        parts = [sorted(v[1], key=lambda x: x[1]) for v in views]
        if any(p != parts[0] for p in parts) or len(parts[0]) != 3:
            return None
        if any(err != 0 or leader < 0 for err, _, leader, _, _ in parts[0]):
            return None
        return parts[0]
    parts = wait_for("Metadata agrees on every broker", agreed)
    for err, idx, leader, reps, isr in parts:
        it.expect("partition %d replicas" % idx, sorted(reps), [1, 2, 3])
        it.expect("partition %d ISR" % idx, sorted(isr), [1, 2, 3])
        it.expect("partition %d leader is its first replica" % idx, leader, reps[0])
    leaders = {leader for _, _, leader, _, _ in parts}
    it.expect("leaders spread over the brokers", sorted(leaders), [1, 2, 3])

    # 3. only the leader takes Produce / Fetch
    for _, idx, leader, _, _ in parts:
        it.expect("Produce to leader %d of partition %d" % (leader, idx),
                  produce_err(brokers[leader], idx), 0)
        other = [i for i in brokers if i != leader][0]
        it.expect("Produce to non-leader %d of partition %d" % (other, idx),
                  produce_err(brokers[other], idx), 6)
        it.expect("Fetch from non-leader %d of partition %d" % (other, idx),
                  fetch_err(brokers[other], idx), 6)
        it.expect("Fetch from leader %d of partition %d" % (leader, idx),
                  fetch_err(brokers[leader], idx), 0)

    # 3b. followers copy the leader's log (byte-identical segments)
    for _, idx, leader, _, _ in parts:
        c = it.Conn(brokers[leader].port)
        for i in range(20):
            it.expect("Produce record %d to partition %d" % (i, idx),
                      it.produce(c, TOPIC, idx, it.batch([b"r%d" % i]), acks=-1)[0], 0)
        c.close()

    def copied():
        for _, idx, leader, reps, _ in parts:
            want = log_bytes(tmp, leader, idx)
            if not want:
                return None
            for r in reps:
                if log_bytes(tmp, r, idx) != want:
                    return None
        return True
    wait_for("every follower's log equal to its leader's", copied, 30)
    it.ok("followers hold byte-identical copies of every partition (21 records each)")

    # 4. a broker frozen (SIGSTOP) past its session timeout drops out, then returns
    frozen = [i for i in brokers if i != controller][0]
    os.kill(brokers[frozen].proc.pid, signal.SIGSTOP)
    it.ok("SIGSTOPped broker", frozen)

    def dropped():
        views = [meta(b, [TOPIC]) for i, b in brokers.items() if i != frozen]
        for v in views:
            if frozen in [n for n, _, _ in v["brokers"]]:
                return None
            for err, _, leader, _, isr in v["topics"][TOPIC][1]:
                if err != 0 or leader == frozen or frozen in isr:
                    return None
        return True
    wait_for("frozen broker %d out of the broker list and every ISR" % frozen, dropped, 40)
    it.ok("broker", frozen, "dropped out of the cluster")
    os.kill(brokers[frozen].proc.pid, signal.SIGCONT)

    def back():
        v = meta(brokers[controller], [TOPIC])
        return frozen in [n for n, _, _ in v["brokers"]]
    wait_for("broker %d registered again after SIGCONT" % frozen, back, 40)
    it.ok("broker", frozen, "registered again with a new session")
    if "starting a new one" not in brokers[frozen].read_log():
        it.fail("broker %d did not log its new ZooKeeper session" % frozen)

    def rejoined():
        views = [meta(b, [TOPIC]) for b in brokers.values()]
        for v in views:
            for err, _, _, _, isr in v["topics"][TOPIC][1]:
                if err != 0 or sorted(isr) != [1, 2, 3]:
                    return None
        return True
    wait_for("broker %d back in every ISR once caught up" % frozen, rejoined, 40)
    it.ok("broker", frozen, "caught up and is back in every ISR")
    lagged = [l for b in brokers.values() for l in b.read_log().splitlines()
              if "replica %d not caught up" % frozen in l]
    it.ok("ISR removals of broker %d for lag (replica.lag.time.max.ms=2000): %d"
          % (frozen, len(lagged)))
    parts = sorted(meta(brokers[controller], [TOPIC])["topics"][TOPIC][1], key=lambda x: x[1])

    # 5. SIGKILL the controller
    old_epoch = max(controller_epochs(brokers[controller]))
    t0 = time.time()
    brokers[controller].kill()
    it.ok("SIGKILLed broker", controller, "(controller epoch %d)" % old_epoch)
    alive = {i: b for i, b in brokers.items() if i != controller}

    def failed_over():
        views = [meta(b, [TOPIC]) for b in alive.values()]
        ctl = {v["controller"] for v in views}
        if len(ctl) != 1 or ctl & {-1, controller}:
            return None
        if any(sorted(n for n, _, _ in v["brokers"]) != sorted(alive) for v in views):
            return None
        ps = [sorted(v["topics"][TOPIC][1], key=lambda x: x[1]) for v in views]
        if ps[0] != ps[1]:
            return None
        for err, _, leader, _, isr in ps[0]:
            if err != 0 or leader not in alive or controller in isr:
                return None
        return (ctl.pop(), ps[0])
    new_ctl, parts2 = wait_for("failover after the controller died", failed_over, timeout=40)
    it.ok("new controller %d after %.1f s" % (new_ctl, time.time() - t0))
    new_epochs = controller_epochs(brokers[new_ctl])
    if not new_epochs or max(new_epochs) <= old_epoch:
        it.fail("new controller epoch %r not above %d" % (new_epochs, old_epoch))
    it.ok("controller epoch %d -> %d" % (old_epoch, max(new_epochs)))
    for (_, idx, l1, _, _), (_, _, l2, _, isr) in zip(parts, parts2):
        if l1 == controller:
            it.ok("partition %d: leader %d -> %d, isr %r" % (idx, l1, l2, isr))
        else:
            it.expect("partition %d keeps leader" % idx, l2, l1)
    for _, idx, leader, _, _ in parts2:
        c = it.Conn(brokers[leader].port)
        vals = [v for _, _, v in it.read_all(c, TOPIC, idx)]
        c.close()
        it.expect("partition %d on leader %d: the 21 records written before" % (idx, leader),
                  vals[:21], [b"v"] + [b"r%d" % i for i in range(20)])
        it.expect("Produce to new leader %d of partition %d" % (leader, idx),
                  produce_err(brokers[leader], idx), 0)
    # min.insync.replicas=3 with one of three brokers dead: acks=all refused, acks=1 taken
    def strict_short():
        v = meta(alive[new_ctl], ["strict"])["topics"].get("strict")
        return v and v[1] and controller not in v[1][0][4] and v[1][0][2] in alive and v[1][0]
    _, _, sl, _, sisr = wait_for("strict's ISR without the dead broker", strict_short)
    c = it.Conn(brokers[sl].port)
    it.expect("acks=all to 'strict' with ISR %r < min.insync.replicas=3" % sorted(sisr),
              it.produce(c, "strict", 0, it.batch([b"x"]), acks=-1)[0], 19)
    it.expect("acks=1 to 'strict' is still taken",
              it.produce(c, "strict", 0, it.batch([b"x"]), acks=1)[0], 0)
    c.close()
    for i, b in alive.items():
        t0 = time.time()
        b.stop_ok()
        print("  (stopping broker %d: %.1f s)" % (i, time.time() - t0), flush=True)
    zk.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(it.run("strata-cluster-", body))
