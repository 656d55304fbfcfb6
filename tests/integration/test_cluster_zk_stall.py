#!/usr/bin/env python3
"""Cluster mode with a hung ZooKeeper (docs/replication.md): ZooKeeper is
off the data path, so a ZooKeeper that does not answer does not stall
Produce / Fetch.

ZooKeeper + 3 brokers, zookeeper.session.timeout.ms=20000 (the stall below
stays inside every session), replica.lag.time.max.ms=4000.

  1. topic "zs": 3 partitions, RF=3, min.insync.replicas=2, leaders spread
     over the brokers by the assignment, full ISRs.
  2. A producer thread writes acks=all records to every partition's leader
     (one record per request, in turn) and a consumer thread fetches them
     from the leaders, for ~2 s, then ZooKeeper is frozen with SIGSTOP (a
     hung server: connections stay open, nothing is answered) for 8 s, then
     ~3 s after SIGCONT. Every write is acknowledged (error 0), the consumer
     reads every acknowledged record once, in order, and no leader changes
     its ISR ("out of the ISR" in no log): followers kept fetching through
     the stall. A broker whose loop waits on ZooKeeper (every refresh reads
     from it) answers nothing until ZooKeeper is back: its followers stop
     fetching for the whole stall and fall out of the ISR (replica.lag.time.
     max.ms < the stall) -- the pre-change code fails here, and the max
     per-request latency printed shows the stall.
  3. After SIGCONT the cluster converges: a topic created afterwards ("late")
     is seen by every broker with a leader and a full ISR; the leaders of
     "zs" are unchanged; a last acks=all record per partition is
     acknowledged.
  4. Controlled shutdown with ZooKeeper frozen again: the leader X of
     partition 0 gets SIGTERM; for 3 s it keeps answering acks=all writes
     (its leadership cannot move while ZooKeeper is frozen), then ZooKeeper
     resumes, X's leadership moves and X exits 0 (its log says how its
     controlled shutdown ended); a survivor leads partition 0 and holds every
     acknowledged record in order. The pre-change code stops serving at
     SIGTERM and blocks its loop in the controlled shutdown: the write in
     flight is never answered (its connection is reset).
The max latency of a Produce / Fetch during the stall is printed (never
asserted). Skips (77) without java / ZooKeeper. Every process is stopped by
pid.

usage: test_cluster_zk_stall.py STRATAD
"""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

TOPIC = "zs"
STALL_S = 8


def body(tmp):
    exe = it.stratad_arg(__doc__)
    zk = it.ZooKeeper(tmp)
    brokers = it.start_cluster(exe, tmp, zk, "/zs", extra=[
        ("zookeeper.session.timeout.ms", "20000"), ("replica.lag.time.max.ms", "4000")])
    it.expect("CreateTopics zs", it.create_topic_rf(brokers[1], TOPIC, 3, 3,
                                                    [("min.insync.replicas", "2")]), 0)

    def settled():
        st = it.partition_states(brokers, TOPIC)
        if not st or len(st) != 3:
            return None
        if any(st[p][0] < 0 or st[p][1] != [1, 2, 3] for p in st):
            return None
        # every broker agrees
        for b in brokers.values():
            if it.partition_states({0: b}, TOPIC) != st:
                return None
        return st
    st = it.wait_until("zs: leaders and full ISRs on every broker", settled, 60)
    leaders = {p: st[p][0] for p in st}
    it.ok("leaders", leaders)

    stop = threading.Event()
    stall = {"from": None, "to": None}
    lock = threading.Lock()
    acked = {p: [] for p in leaders}     # values acknowledged, in order
    errors = []
    spans = []  # (kind, start, end) of every request

    def note(kind, t0):
        with lock:
            spans.append((kind, t0, time.time()))

    def producer():
        conns = {p: it.Conn(brokers[leaders[p]].port) for p in leaders}
        n = 0
        try:
            while not stop.is_set():
                for p in sorted(leaders):
                    v = b"r%d-%d" % (p, n)
                    t0 = time.time()
                    err, base, _ = it.produce(conns[p], TOPIC, p, it.batch([v]), acks=-1)
                    note("produce", t0)
                    if err:
                        errors.append("produce %s to partition %d: error %d" % (v, p, err))
                        return
                    with lock:
                        acked[p].append(v)
                n += 1
                time.sleep(0.005)
        except Exception as e:  # noqa: BLE001
            errors.append("producer: %r" % (e,))
        finally:
            for c in conns.values():
                c.close()

    read = {p: [] for p in leaders}

    def consumer():
        conns = {p: it.Conn(brokers[leaders[p]].port) for p in leaders}
        off = {p: 0 for p in leaders}
        try:
            while not stop.is_set():
                for p in sorted(leaders):
                    t0 = time.time()
                    err, hw, recs = it.fetch(conns[p], TOPIC, p, off[p], max_wait=50)
                    note("fetch", t0)
                    if err:
                        errors.append("fetch partition %d at %d: error %d" % (p, off[p], err))
                        return
                    for o, _, v in it.parse_batches(recs):
                        if o >= off[p]:
                            read[p].append(v)
                            off[p] = o + 1
        except Exception as e:  # noqa: BLE001
            errors.append("consumer: %r" % (e,))
        finally:
            for c in conns.values():
                c.close()

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for t in threads:
        t.start()
    time.sleep(2)
    os.kill(zk.proc.pid, signal.SIGSTOP)
    with lock:
        stall["from"] = time.time()
        before = sum(len(v) for v in acked.values())
    it.ok("ZooKeeper frozen (SIGSTOP) for %d s" % STALL_S)
    try:
        time.sleep(STALL_S)
    finally:
        with lock:
            stall["to"] = time.time()
            during = sum(len(v) for v in acked.values()) - before
        os.kill(zk.proc.pid, signal.SIGCONT)
    it.ok("ZooKeeper resumed (SIGCONT); %d acks=all writes acknowledged during the stall" % during)
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(timeout=60)
        if t.is_alive():
            it.fail("a client thread is stuck")
    lat = {}  # kind -> [max of requests overlapping the stall, max of the others]
    for kind, a, b in spans:
        i = 0 if a < stall["to"] and b > stall["from"] else 1
        lat.setdefault(kind, [0.0, 0.0])[i] = max(lat.setdefault(kind, [0.0, 0.0])[i], b - a)
    lat.setdefault("produce", [0.0, 0.0])
    lat.setdefault("fetch", [0.0, 0.0])
    slow = max(((b - a, a) for _, a, b in spans if not (a < stall["to"] and b > stall["from"])),
               default=(0.0, 0.0))
    print("slowest request outside the stall: %.3f s, started %.1f s %s it" % (
        slow[0], abs(slow[1] - (stall["from"] if slow[1] < stall["from"] else stall["to"])),
        "before" if slow[1] < stall["from"] else "after"), flush=True)
    print("max per-request latency of requests overlapping the stall: produce %.3f s, fetch "
          "%.3f s (the others: produce %.3f s, fetch %.3f s; a fetch waits up to 50 ms)" %
          (lat["produce"][0], lat["fetch"][0], lat["produce"][1], lat["fetch"][1]), flush=True)
    if errors:
        it.fail("; ".join(errors[:5]))
    if during == 0:
        it.fail("no acks=all write was acknowledged while ZooKeeper was frozen")

    # the consumer read what was acknowledged; the rest is read now
    for p in sorted(leaders):
        c = it.Conn(brokers[leaders[p]].port)
        vals = [v for o, _, v in it.read_all(c, TOPIC, p, 0)]
        c.close()
        it.expect("partition %d: the log holds every acknowledged record once, in order" % p,
                  vals, acked[p])
        it.expect("partition %d: the consumer read a prefix of it, in order" % p,
                  read[p], acked[p][:len(read[p])])
    it.ok("acknowledged records", {p: len(v) for p, v in acked.items()})
    for i, b in brokers.items():
        if "out of the ISR" in b.read_log():
            b.dump(4000)
            it.fail("broker %d changed an ISR: followers stopped fetching during the stall" % i)
    it.ok("no ISR changed")

    # 3. convergence: a topic created after the stall is seen everywhere
    it.expect("CreateTopics late", it.create_topic_rf(brokers[2], "late", 2, 3), 0)

    def late_everywhere():
        for b in brokers.values():
            s = it.partition_states({0: b}, "late")
            if not s or len(s) != 2 or any(s[p][0] < 0 or s[p][1] != [1, 2, 3] for p in s):
                return None
        return True
    it.wait_until("topic late: leaders and full ISRs on every broker", late_everywhere, 40)
    it.expect("zs leaders after the stall", {p: s[0] for p, s in settled().items()}, leaders)
    for p in sorted(leaders):
        c = it.Conn(brokers[leaders[p]].port)
        it.expect("acks=all write to partition %d after the stall" % p,
                  it.produce(c, TOPIC, p, it.batch([b"after"]), acks=-1)[0], 0)
        c.close()

    # 4. controlled shutdown while ZooKeeper is frozen: the loop keeps serving
    x = leaders[min(leaders)]
    px = min(leaders)
    served = []
    os.kill(zk.proc.pid, signal.SIGSTOP)
    try:
        os.kill(brokers[x].proc.pid, signal.SIGTERM)
        c = it.Conn(brokers[x].port)
        t0 = time.time()
        while time.time() - t0 < 3:
            v = b"cs%d" % len(served)
            err = it.produce(c, TOPIC, px, it.batch([v]), acks=-1)[0]
            if err:
                it.fail("acks=all write %s to broker %d in controlled shutdown: error %d" %
                        (v, x, err))
            served.append(v)
        c.close()
    finally:
        os.kill(zk.proc.pid, signal.SIGCONT)
    it.ok("broker %d answered %d acks=all writes in the 3 s after its SIGTERM with ZooKeeper "
          "frozen (controlled shutdown waiting)" % (x, len(served)))
    try:
        rc = brokers[x].proc.wait(timeout=30)
    except Exception:  # noqa: BLE001
        brokers[x].dump()
        it.fail("broker %d did not stop within 30 s of SIGTERM" % x)
    brokers[x].log.close()
    log = brokers[x].read_log()
    if rc != 0:
        brokers[x].dump()
        it.fail("broker %d exited %d after SIGTERM" % (x, rc))
    how = [ln for ln in log.splitlines() if "controlled shutdown: leadership moved" in ln or
           "stopping anyway" in ln]
    if not how:
        brokers[x].dump()
        it.fail("broker %d: no end of its controlled shutdown in its log" % x)
    it.ok("broker %d stopped: %s" % (x, how[-1].split("cluster: ")[-1]))
    rest = {i: b for i, b in brokers.items() if i != x}
    want = acked[px] + [b"after"] + served

    def moved_and_complete():
        st = it.partition_states(rest, TOPIC)
        if not st or st[px][0] not in rest:
            return None
        c = it.Conn(rest[st[px][0]].port)
        try:
            vals = [v for _, _, v in it.read_all(c, TOPIC, px, 0)]
        finally:
            c.close()
        return vals if vals == want else None
    it.wait_until("partition %d led by a survivor, every acknowledged record there" % px,
                  moved_and_complete, 40)

    for b in rest.values():
        b.stop_ok()
    zk.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(it.run("strata-zkstall-", body))
