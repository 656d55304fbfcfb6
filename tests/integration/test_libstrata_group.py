#!/usr/bin/env python3
"""libstrata's group consumer (tests/integration/libstrata/cl_group.c) against stratad.

    test_libstrata_group.py STRATAD CL_GROUP MODE

MODE  split      a libstrata member (enable.auto.commit) and a kafka-python
                 KafkaConsumer in one group on a 4-partition topic: libstrata
                 owns all 4 alone, the two split them 2/2 (range), records
                 produced before, during and after are read exactly once
                 between them (the commits made at each revoke and at close
                 hand the partitions over without loss or duplicates); when
                 kafka-python leaves, libstrata owns all 4 again
      restart    auto commit off: read, commit the positions
                 (strata_consumer_commit(NULL)), read 40 more without committing,
                 SIGKILL; a new member resumes exactly at the committed
                 offsets: nothing lost, the only duplicates are the
                 uncommitted window
      autocommit enable.auto.commit with a 10-minute interval: read everything,
                 strata_consumer_close -> the final commit holds the end
                 offsets (OffsetFetch), and the member left (the group is Empty);
                 strata_consumer_free alone does the same; an assign-mode
                 consumer with group.id (cl_consume -o stored) starts at them
      fenced     max.poll.interval.ms 2000: the application stops polling, the
                 member leaves the group (revoke callback), a commit made then
                 is refused by the coordinator with UNKNOWN_MEMBER_ID /
                 ILLEGAL_GENERATION and returned to the caller, the committed
                 offset is unchanged; polling again rejoins and gets the
                 partitions back; commit_async reports through its callback
      follower   kafka-python first (so it leads and runs the assignor), libstrata
                 joins (preferring roundrobin; the coordinator's vote picks one
                 both support), gets 2 of 4 from kafka-python's assignment, reads;
                 libstrata closes (auto-commit + LeaveGroup) and kafka-python
                 reads on from its commits: every record exactly once
      manual     auto commit off, the revoke callback commits with commit_async
                 (a sync commit there returns STRATA_ERR_DEADLOCK): a kafka-python
                 member joins and leaves, every record exactly once; then a
                 member whose assign callback seeks to the beginning re-reads all
      kcat       the same as split with kcat -G (librdkafka 2.0.2) as the other
                 member: it joins the libstrata-led group, the two split 2/2, it
                 leaves on SIGTERM (commit + LeaveGroup), every record exactly once
      coordinator  stratad is SIGKILLed and restarted on the same port under a
                 stable member: the restarted coordinator reloads the group
                 Stable from its GroupMetadata record, the member finds it again
                 and goes on in its generation with its partitions (no
                 rebalance) and reads on: nothing lost, nothing re-read
      session    stratad is SIGSTOPped under a stable member: after
                 session.timeout.ms without a heartbeat answer the member revokes
                 its partitions (the coordinator has given them away by then);
                 SIGCONT: it rejoins and reads on, nothing lost
      rediscover a proxy in front of stratad answers the first JoinGroup with
                 NOT_COORDINATOR, the 3rd Heartbeat with COORDINATOR_NOT_AVAILABLE
                 and the first OffsetCommit with NOT_COORDINATOR: each time the
                 member looks the coordinator up again (FindCoordinator count),
                 the join and the commit are retried and succeed, the heartbeat
                 error costs no rebalance (one ASSIGN); then ILLEGAL_GENERATION on
                 a Heartbeat rejoins with the same member id, UNKNOWN_MEMBER_ID
                 rejoins with the member id reset
      static     group.instance.id: close commits but sends no LeaveGroup, so the
                 coordinator still lists the static member (Kafka's behaviour); a
                 restart with the same instance id takes its place (still one
                 member) and resumes from its commits
      grow       the topic grows from 2 to 4 partitions (CreatePartitions); the
                 leader sees the new count in its metadata and rejoins, the
                 member then owns all 4 and reads every record exactly once

Exit 77 when kafka-python (split) or kcat (kcat) is missing.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402
import test_groups as tg  # noqa: E402
from strata_it import Conn, create_topic, expect, fail, ok  # noqa: E402

OVERRIDES = {"num.partitions": 1, "group.min.session.timeout.ms": 1000,
             "group.initial.rebalance.delay.ms": 0}
BASE = {"session.timeout.ms": 3000, "heartbeat.interval.ms": 300, "max.poll.interval.ms": 10000,
        "auto.offset.reset": "earliest", "request.timeout.ms": 15000}


class Driver:
    """cl_group under test: commands on stdin, lines from stdout collected by a thread."""

    def __init__(self, exe, b, tmp, group, topic, conf, name="d", flags=()):
        args = [exe, "-b", b.addr, "-g", group, "-t", topic] + list(flags)
        for k, v in dict(BASE, **conf).items():
            args += ["-X", "%s=%s" % (k, v)]
        self.name = name
        self.err_path = os.path.join(tmp, "%s.stderr" % name)
        self.errf = open(self.err_path, "wb")
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.errf)
        self.lines, self.cv = [], threading.Condition()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        self.wait("READY")

    def _read(self):
        for raw in self.p.stdout:
            with self.cv:
                self.lines.append(raw.decode().rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append("EOF")
            self.cv.notify_all()

    def send(self, cmd):
        self.p.stdin.write((cmd + "\n").encode())
        self.p.stdin.flush()

    def wait(self, prefix, start=0, timeout=40):
        """The first line at or after index start beginning with prefix."""
        deadline = time.time() + timeout
        with self.cv:
            while True:
                for i in range(start, len(self.lines)):
                    if self.lines[i].startswith(prefix):
                        return i, self.lines[i]
                    if self.lines[i] == "EOF":
                        self.dump()
                        fail("%s exited (%s) before printing %r" % (self.name, self.p.poll(), prefix))
                left = deadline - time.time()
                if left <= 0:
                    self.dump()
                    fail("%s: no %r within %d s" % (self.name, prefix, timeout))
                self.cv.wait(left)

    def mark(self):
        with self.cv:
            return len(self.lines)

    def call(self, cmd, prefix, timeout=40):
        m = self.mark()
        self.send(cmd)
        return self.wait(prefix, m, timeout)[1]

    def records(self):
        """[(partition, offset, value)] in the order polled."""
        with self.cv:
            out = []
            for ln in self.lines:
                if ln.startswith("R "):
                    _, p, o, v = ln.split(" ", 3)
                    out.append((int(p), int(o), v.encode()))
                elif ln.startswith("E "):
                    self.dump()
                    fail("%s: partition error %s" % (self.name, ln))
            return out

    def assigned(self):
        """The current assignment per the last ASSIGN / REVOKE line."""
        with self.cv:
            cur = set()
            for ln in self.lines:
                if ln.startswith("ASSIGN"):
                    cur = {int(x) for x in ln.split()[1:]}
                elif ln.startswith("REVOKE"):
                    cur = set()
            return cur

    def count(self, prefix):
        with self.cv:
            return sum(1 for ln in self.lines if ln.startswith(prefix))

    def dump(self):
        self.errf.flush()
        with open(self.err_path, "rb") as f:
            err = f.read().decode(errors="replace")
        print("---- %s stdout (last 40 lines) ----" % self.name)
        print("\n".join(self.lines[-40:]))
        print("---- %s stderr ----" % self.name)
        print(err[-6000:])

    def finish(self, timeout=30):
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.dump()
            fail("%s did not exit" % self.name)
        self.errf.close()
        if rc != 0:
            self.dump()
            fail("%s exited %d" % (self.name, rc))

    def kill(self):
        self.p.kill()
        self.p.wait(timeout=15)
        self.errf.close()


def wait_for(what, cond, timeout=40):
    tg.wait_for(what, cond, timeout)


def committed(b, group, topic, parts):
    c = Conn(b.port)
    got, top = tg.offset_fetch(c, 5, group, {topic: list(range(parts))})
    c.close()
    if top:
        fail("OffsetFetch: error %d" % top)
    return {p: got[(topic, p)][0] for p in range(parts)}


def describe_state(b, group):
    """(state, member count) of the group per DescribeGroups v4."""
    c = Conn(b.port)
    err, state, _, _, members = tg.describe(c, 4, [group])[group]
    c.close()
    if err:
        fail("DescribeGroups %s: error %d" % (group, err))
    return state, len(members)


def values(recs):
    return sorted(v for _, _, v in recs)


def want(start, n):
    return sorted(b"v%d" % i for i in range(start, start + n))


# ---- modes ------------------------------------------------------------------------------------

def mode_split(b, exe, tmp):
    kafka = tg.kafka_python()
    create_topic(b, "gsplit", 4)
    tg.produce_n(b, "gsplit", 4, 40)
    d = Driver(exe, b, tmp, "gs", "gsplit", {"enable.auto.commit": "true",
                                             "auto.commit.interval.ms": 1000})
    wait_for("libstrata alone owns all 4 partitions", lambda: d.assigned() == {0, 1, 2, 3})
    wait_for("libstrata read the first 40", lambda: len(d.records()) >= 40)

    k = tg.consumer(kafka, b, "gs", enable_auto_commit=True, auto_commit_interval_ms=1000)
    k.subscribe(["gsplit"])
    kp = tg.Poller(k)
    kp.start()
    wait_for("libstrata and kafka-python split the partitions 2/2",
             lambda: len(d.assigned()) == 2 and len(kp.assigned) == 2 and
             d.assigned() | kp.assigned == {0, 1, 2, 3})
    if d.assigned() != {0, 1}:  # range: members sorted by member id; either order is Java's
        expect("the other member got the other range", kp.assigned, {0, 1})
    ok("assignment: libstrata %s, kafka-python %s" % (sorted(d.assigned()), sorted(kp.assigned)))
    tg.produce_n(b, "gsplit", 4, 40, start=40)
    wait_for("the next 40 read between the two",
             lambda: len(d.records()) + len(kp.records) >= 80)
    mine = set(d.assigned())
    for p, _, _ in kp.records:
        if p in mine:
            fail("kafka-python read partition %d that libstrata owns" % p)

    kp.stop()
    k.close()  # auto-commit + LeaveGroup
    wait_for("after kafka-python leaves libstrata owns all 4 again",
             lambda: d.assigned() == {0, 1, 2, 3})
    tg.produce_n(b, "gsplit", 4, 40, start=80)
    wait_for("libstrata read the last 40", lambda: len(d.records()) + len(kp.records) >= 120)
    time.sleep(1.0)  # anything extra (a duplicate) would show up now
    both = d.records() + kp.records
    expect("every record read exactly once between libstrata and kafka-python",
           values(both), want(0, 120))
    if kp.error:
        fail("kafka-python thread: %r" % kp.error)
    if d.count("ASSIGN") < 3:
        fail("libstrata saw %d ASSIGN callbacks, want at least 3" % d.count("ASSIGN"))
    d.call("close", "CLOSED 0")
    d.finish()
    expect("the group is Empty after close", describe_state(b, "gs"), ("Empty", 0))


def mode_follower(b, exe, tmp):
    kafka = tg.kafka_python()
    create_topic(b, "gfol", 4)
    tg.produce_n(b, "gfol", 4, 40)
    k = tg.consumer(kafka, b, "gfo", enable_auto_commit=True, auto_commit_interval_ms=1000)
    k.subscribe(["gfol"])
    kp = tg.Poller(k)
    kp.start()
    wait_for("kafka-python alone owns all 4 and read the first 40",
             lambda: kp.assigned == {0, 1, 2, 3} and len(kp.records) >= 40)
    d = Driver(exe, b, tmp, "gfo", "gfol", {"enable.auto.commit": "true",
                                            "auto.commit.interval.ms": 1000,
                                            "partition.assignment.strategy": "roundrobin,range"})
    wait_for("kafka-python (leader) assigned 2 of 4 to libstrata",
             lambda: len(d.assigned()) == 2 and len(kp.assigned) == 2 and
             d.assigned() | kp.assigned == {0, 1, 2, 3})
    ok("assignment: libstrata %s, kafka-python %s" % (sorted(d.assigned()), sorted(kp.assigned)))
    tg.produce_n(b, "gfol", 4, 40, start=40)
    wait_for("the next 40 read between the two", lambda: len(d.records()) + len(kp.records) >= 80)
    d.call("close", "CLOSED 0")  # final auto-commit + LeaveGroup
    d.finish()
    wait_for("after libstrata closes kafka-python owns all 4 again",
             lambda: kp.assigned == {0, 1, 2, 3})
    tg.produce_n(b, "gfol", 4, 40, start=80)
    wait_for("the last 40 read", lambda: len(d.records()) + len(kp.records) >= 120)
    time.sleep(1.0)
    expect("every record read exactly once between kafka-python and libstrata",
           values(d.records() + kp.records), want(0, 120))
    kp.stop()
    k.close()
    if kp.error:
        fail("kafka-python thread: %r" % kp.error)


def mode_manual(b, exe, tmp):
    kafka = tg.kafka_python()
    create_topic(b, "gman", 4)
    tg.produce_n(b, "gman", 4, 40)
    d = Driver(exe, b, tmp, "gm", "gman", {"enable.auto.commit": "false"}, flags=["-R"])
    wait_for("libstrata alone owns all 4 and read the first 40",
             lambda: d.assigned() == {0, 1, 2, 3} and len(d.records()) >= 40)
    k = tg.consumer(kafka, b, "gm", enable_auto_commit=True, auto_commit_interval_ms=1000)
    k.subscribe(["gman"])
    kp = tg.Poller(k)
    kp.start()
    wait_for("split 2/2", lambda: len(d.assigned()) == 2 and len(kp.assigned) == 2 and
             d.assigned() | kp.assigned == {0, 1, 2, 3})
    i, line = d.wait("REVOKE 0 1 2 3")
    expect("in the revoke callback commit_async is accepted, the sync commit is refused",
           line.split(" (")[1], "commit_async 0, sync %d)" % -35)
    d.wait("ACB 0 4", i)
    ok("the revoke callback's commit_async committed 4 partitions")
    tg.produce_n(b, "gman", 4, 40, start=40)
    wait_for("the next 40 read between the two", lambda: len(d.records()) + len(kp.records) >= 80)
    kp.stop()
    k.close()
    wait_for("libstrata owns all 4 again", lambda: d.assigned() == {0, 1, 2, 3})
    tg.produce_n(b, "gman", 4, 40, start=80)
    wait_for("the last 40 read", lambda: len(d.records()) + len(kp.records) >= 120)
    time.sleep(1.0)
    expect("every record exactly once with manual commits in the revoke callback",
           values(d.records() + kp.records), want(0, 120))
    d.call("close", "CLOSED 0")
    d.finish()
    # a seek in the assign callback overrides the committed offsets
    d3 = Driver(exe, b, tmp, "gm", "gman", {"enable.auto.commit": "false"}, name="d3",
                flags=["-S", "beginning"])
    wait_for("a member seeking to the beginning in its assign callback re-reads all 120",
             lambda: len(d3.records()) >= 120)
    expect("from offset 0 of each partition",
           sorted({p: o for p, o, _ in reversed(d3.records())}.items()),
           [(0, 0), (1, 0), (2, 0), (3, 0)])
    d3.call("close", "CLOSED 0")
    d3.finish()


def mode_restart(b, exe, tmp):
    create_topic(b, "grs", 4)
    tg.produce_n(b, "grs", 4, 200)
    conf = {"enable.auto.commit": "false"}
    d1 = Driver(exe, b, tmp, "gr", "grs", conf, name="d1")
    wait_for("first member read at least 100", lambda: len(d1.records()) >= 100)
    d1.send("pause")
    time.sleep(0.3)  # a poll in progress returns
    line = d1.call("commit", "COMMIT")
    expect("strata_consumer_commit(NULL)", line, "COMMIT 0")
    first = d1.records()
    pos = {}
    for p, o, _ in first:
        pos[p] = max(pos.get(p, 0), o + 1)
    got = committed(b, "gr", "grs", 4)
    expect("committed offsets are the positions after the last polled record",
           {p: got[p] for p in pos}, pos)
    tg.produce_n(b, "grs", 4, 40, start=200)
    d1.send("resume")
    wait_for("first member reads 40 more without committing",
             lambda: len(d1.records()) >= len(first) + 40)
    d1.kill()
    window = d1.records()[len(first):]
    ok("SIGKILLed with %d uncommitted records read" % len(window))

    tg.produce_n(b, "grs", 4, 40, start=240)
    d2 = Driver(exe, b, tmp, "gr", "grs", conf, name="d2")
    wait_for("the new member reaches the end (after the dead member's session expires)",
             lambda: len(first) + len(d2.records()) >= 280, timeout=50)
    time.sleep(0.5)
    second = d2.records()
    starts = {}
    for p, o, _ in second:
        starts.setdefault(p, o)
    expect("the new member starts each partition at its committed offset",
           {p: starts[p] for p in pos if p in starts}, {p: pos[p] for p in pos if p in starts})
    expect("nothing lost, nothing read twice across the restart (first + second)",
           values(first + second), want(0, 280))
    dup = set(values(window)) & set(values(second))
    expect("the re-read records are exactly the uncommitted window", dup, set(values(window)))
    d2.call("close", "CLOSED 0")
    d2.finish()


def mode_autocommit(b, exe, tmp):
    create_topic(b, "gac", 2)
    tg.produce_n(b, "gac", 2, 50)
    d = Driver(exe, b, tmp, "ga", "gac", {"enable.auto.commit": "true",
                                          "auto.commit.interval.ms": 600000})
    wait_for("read all 50", lambda: len(d.records()) >= 50)
    expect("nothing committed before close", committed(b, "ga", "gac", 2), {0: -1, 1: -1})
    d.call("close", "CLOSED 0")
    d.finish()
    expect("the final auto-commit on close holds the end offsets",
           committed(b, "ga", "gac", 2), {0: 25, 1: 25})
    expect("the member left the group on close", describe_state(b, "ga"), ("Empty", 0))
    # a new member resumes at the end: nothing re-read
    tg.produce_n(b, "gac", 2, 4, start=50)
    d2 = Driver(exe, b, tmp, "ga", "gac", {"enable.auto.commit": "true"}, name="d2")
    wait_for("the next member reads only the 4 new records", lambda: len(d2.records()) >= 4)
    time.sleep(0.5)
    expect("only the new records", values(d2.records()), want(50, 4))
    d2.send("exit")  # strata_consumer_free closes (and commits) by itself
    d2.finish()
    expect("free committed too", committed(b, "ga", "gac", 2), {0: 27, 1: 27})
    # assign mode with group.id: STRATA_OFFSET_STORED starts at the committed offset
    cons = os.path.join(os.path.dirname(exe), "cl_consume")
    if not os.access(cons, os.X_OK):
        fail("%s not built" % cons)
    tg.produce_n(b, "gac", 2, 4, start=54)
    r = subprocess.run([cons, "-b", b.addr, "-t", "gac", "-p", "2", "-o", "stored", "-n", "4",
                        "-X", "group.id=ga", "-X", "auto.offset.reset=earliest"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        fail("cl_consume -o stored exited %d: %s" % (r.returncode, r.stderr.decode()[-2000:]))
    got = sorted((int(ln.split()[1]), int(ln.split()[2])) for ln in r.stdout.decode().splitlines()
                 if ln.startswith("R "))
    expect("assign mode + group.id: -o stored starts at the committed offsets",
           got, [(0, 27), (0, 28), (1, 27), (1, 28)])


def mode_fenced(b, exe, tmp):
    create_topic(b, "gfe", 1)
    tg.produce_n(b, "gfe", 1, 20)
    d = Driver(exe, b, tmp, "gf", "gfe", {"enable.auto.commit": "false",
                                          "max.poll.interval.ms": 2000})
    wait_for("read 20", lambda: len(d.records()) >= 20)
    expect("commit while a member", d.call("commit 0 10", "COMMIT"), "COMMIT 0 0")
    m = d.mark()
    d.send("pause")
    d.wait("REVOKE", m, timeout=30)
    ok("the member stopped polling and left the group (revoke callback)")
    line = d.call("commit 0 20", "COMMIT")
    rc = int(line.split()[1])
    if rc not in (22, 25):
        d.dump()
        fail("commit after leaving: got %r, want ILLEGAL_GENERATION (22) or "
             "UNKNOWN_MEMBER_ID (25)" % line)
    ok("fenced commit returned %d" % rc)
    expect("the fenced commit did not land", committed(b, "gf", "gfe", 1), {0: 10})
    m = d.mark()
    d.send("resume")
    d.wait("ASSIGN 0", m, timeout=30)
    ok("polling again rejoined and got the partition back")
    wait_for("re-read from the committed offset 10", lambda: len(d.records()) >= 30)
    expect("records 10..19 again", values(d.records()[20:]), want(10, 10))
    line = d.call("async", "ACB")
    expect("commit_async of the positions reports through the callback", line, "ACB 0 1")
    expect("the positions are committed", committed(b, "gf", "gfe", 1), {0: 20})
    d.call("close", "CLOSED 0")
    d.finish()


def mode_static(b, exe, tmp):
    create_topic(b, "gst", 2)
    tg.produce_n(b, "gst", 2, 10)
    d = Driver(exe, b, tmp, "gst", "gst", {"enable.auto.commit": "true",
                                           "group.instance.id": "inst-1",
                                           "session.timeout.ms": 30000})
    wait_for("static member reads all 10", lambda: len(d.records()) >= 10)
    state, n = describe_state(b, "gst")
    expect("one member while consuming", (state, n), ("Stable", 1))
    d.call("close", "CLOSED 0")
    d.finish()
    expect("close committed the positions", committed(b, "gst", "gst", 2), {0: 5, 1: 5})
    c = Conn(b.port)
    err, state, _, _, members = tg.describe(c, 4, ["gst"])["gst"]
    c.close()
    expect("no LeaveGroup: the static member is still listed until its session times out",
           (state, [m[5] for m in members]), ("Stable", ["inst-1"]))
    # a restart with the same group.instance.id takes the member's place and
    # resumes from its commits (stratad: without a rebalance, KIP-345)
    tg.produce_n(b, "gst", 2, 4, start=10)
    d2 = Driver(exe, b, tmp, "gst", "gst", {"enable.auto.commit": "true",
                                            "group.instance.id": "inst-1",
                                            "session.timeout.ms": 30000}, name="d2")
    wait_for("the restarted static member owns both partitions again and reads the 4 new",
             lambda: d2.assigned() == {0, 1} and len(d2.records()) >= 4)
    time.sleep(0.5)
    expect("only the records after the commit", values(d2.records()), want(10, 4))
    c = Conn(b.port)
    err, state, _, _, members = tg.describe(c, 4, ["gst"])["gst"]
    c.close()
    expect("one member, the same instance", (state, [m[5] for m in members]),
           ("Stable", ["inst-1"]))
    d2.call("close", "CLOSED 0")
    d2.finish()


class Kcat:
    """kcat -G member: records from stdout ("%p %o %s"), assignment from stderr."""

    def __init__(self, b, group, topic):
        import shutil
        if not shutil.which("kcat"):
            it.skip("kcat not installed")
        self.p = subprocess.Popen(["kcat", "-u", "-b", b.addr, "-G", group, topic, "-f", "%p %o %s\\n",
                                   "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=300",
                                   "-X", "auto.offset.reset=earliest",
                                   "-X", "auto.commit.interval.ms=1000"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out, self.err, self.lock = [], [], threading.Lock()
        for f, dst in ((self.p.stdout, self.out), (self.p.stderr, self.err)):
            threading.Thread(target=self._read, args=(f, dst), daemon=True).start()

    def _read(self, f, dst):
        for raw in f:
            with self.lock:
                dst.append(raw.decode(errors="replace").rstrip("\n"))

    def records(self):
        with self.lock:
            out = []
            for ln in self.out:
                p, o, v = ln.split(" ", 2)
                out.append((int(p), int(o), v.encode()))
            return out

    def assigned(self):
        cur = set()
        with self.lock:
            for ln in self.err:
                if "rebalanced" in ln and "assigned:" in ln:
                    cur = {int(x.split("[")[1].rstrip("],")) for x in ln.split("assigned:")[1].split(",")
                           if "[" in x}
                elif "rebalanced" in ln and "revoked:" in ln:
                    cur = set()
        return cur

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            fail("kcat did not exit after SIGTERM")


def mode_kcat(b, exe, tmp):
    create_topic(b, "gkc", 4)
    tg.produce_n(b, "gkc", 4, 40)
    d = Driver(exe, b, tmp, "gkc", "gkc", {"enable.auto.commit": "true",
                                           "auto.commit.interval.ms": 1000})
    wait_for("libstrata alone owns all 4 and read the first 40",
             lambda: d.assigned() == {0, 1, 2, 3} and len(d.records()) >= 40)
    k = Kcat(b, "gkc", "gkc")
    wait_for("libstrata and kcat split the partitions 2/2",
             lambda: len(d.assigned()) == 2 and len(k.assigned()) == 2 and
             d.assigned() | k.assigned() == {0, 1, 2, 3})
    ok("assignment: libstrata %s, kcat %s" % (sorted(d.assigned()), sorted(k.assigned())))
    tg.produce_n(b, "gkc", 4, 40, start=40)
    wait_for("the next 40 read between the two", lambda: len(d.records()) + len(k.records()) >= 80)
    k.stop()
    wait_for("after kcat leaves libstrata owns all 4 again", lambda: d.assigned() == {0, 1, 2, 3})
    tg.produce_n(b, "gkc", 4, 40, start=80)
    wait_for("the last 40 read", lambda: len(d.records()) + len(k.records()) >= 120)
    time.sleep(1.0)
    expect("every record read exactly once between libstrata and kcat",
           values(d.records() + k.records()), want(0, 120))
    d.call("close", "CLOSED 0")
    d.finish()


def mode_coordinator(b, exe, tmp):
    create_topic(b, "gco", 2)
    tg.produce_n(b, "gco", 2, 20)
    d = Driver(exe, b, tmp, "gco", "gco", {"enable.auto.commit": "true",
                                           "auto.commit.interval.ms": 200,
                                           "reconnect.backoff.ms": 100})
    wait_for("read the first 20", lambda: d.assigned() == {0, 1} and len(d.records()) >= 20)
    wait_for("positions auto-committed", lambda: committed(b, "gco", "gco", 2) == {0: 10, 1: 10})
    assigns = d.count("ASSIGN")
    b.kill()
    b.start()
    ok("stratad SIGKILLed and restarted on port %d" % b.port)
    if "1 group(s) Stable with their members" not in b.read_log():
        fail("the restarted coordinator did not load the group's GroupMetadata record")
    tg.produce_n(b, "gco", 2, 20, start=20)
    wait_for("read the next 20", lambda: len(set(values(d.records()))) >= 40)
    expect("the member kept its generation and partitions across the restart (the group "
           "was reloaded Stable from __consumer_offsets: no rebalance)",
           (d.count("ASSIGN") - assigns, d.assigned()), (0, {0, 1}))
    time.sleep(0.5)
    expect("nothing lost across the coordinator restart", sorted(set(values(d.records()))),
           want(0, 40))
    expect("nothing re-read (everything before the restart was committed)",
           len(d.records()), 40)
    d.call("close", "CLOSED 0")
    d.finish()


class FaultProxy:
    """TCP proxy to stratad: Metadata and FindCoordinator answers point at the
    proxy, so every connection goes through it; inject[(api_key, n)] = error
    answers the n-th request of that API with error instead of forwarding it
    (responses stay in request order per connection)."""

    def __init__(self, b):
        self.b, self.inject, self.seen, self.joins = b, {}, {}, []
        self.lock = threading.Lock()
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def count(self, key):
        with self.lock:
            return self.seen.get(key, 0)

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        up = socket.create_connection(("127.0.0.1", self.b.port))
        slots, cv = [], threading.Condition()

        def flush():  # cv held
            while slots and slots[0]["resp"] is not None:
                c.sendall(it.frame(slots.pop(0)["resp"]))

        def from_broker():
            try:
                while True:
                    resp = it.read_response(up)
                    corr = struct.unpack_from(">i", resp)[0]
                    with cv:
                        slot = next(x for x in slots if x["corr"] == corr and x["resp"] is None)
                        slot["resp"] = self._rewrite(slot["key"], slot["ver"], resp)
                        flush()
            except (OSError, EOFError, StopIteration):
                c.close()

        threading.Thread(target=from_broker, daemon=True).start()
        try:
            while True:
                req = it.read_response(c)  # same framing both ways
                key, ver, corr, cl = struct.unpack_from(">hhih", req)
                body = req[10 + max(cl, 0):]
                with self.lock:
                    n = self.seen[key] = self.seen.get(key, 0) + 1
                    err = self.inject.get((key, n))
                    if key == 11:  # JoinGroup: remember the member id it carries
                        r = it.Rd(body)
                        r.string(), r.i32()
                        if ver >= 1:
                            r.i32()
                        self.joins.append(r.string())
                slot = {"corr": corr, "key": key, "ver": ver, "resp": None}
                with cv:
                    slots.append(slot)
                    if err is None:
                        up.sendall(it.frame(req))
                    else:
                        slot["resp"] = struct.pack(">i", corr) + self._error(key, ver, body, err)
                        flush()
        except (OSError, EOFError):
            up.close()

    def _rewrite(self, key, ver, resp):
        r = it.Rd(resp[4:])
        if key == 10:  # FindCoordinator
            head = r.take(4) if ver >= 1 else b""
            err = r.i16()
            msg = r.string() if ver >= 1 else None
            node = r.i32()
            r.string(), r.i32()
            out = head + struct.pack(">h", err)
            if ver >= 1:
                out += struct.pack(">h", -1) if msg is None else it.kstr(msg)
            return resp[:4] + out + struct.pack(">i", node) + it.kstr("127.0.0.1") + \
                struct.pack(">i", self.port)
        if key == 3:  # Metadata: brokers -> the proxy
            head = r.take(4) if ver >= 3 else b""
            n = r.i32()
            out = head + struct.pack(">i", n)
            for _ in range(n):
                node = r.i32()
                r.string(), r.i32()
                rack = r.string() if ver >= 1 else None
                out += struct.pack(">i", node) + it.kstr("127.0.0.1") + struct.pack(">i", self.port)
                if ver >= 1:
                    out += struct.pack(">h", -1) if rack is None else it.kstr(rack)
            return resp[:4] + out + r.b[r.p:]
        return resp

    def _error(self, key, ver, body, err):
        thr = struct.pack(">i", 0)
        if key == 11:  # JoinGroup
            return (thr if ver >= 2 else b"") + struct.pack(">hi", err, -1) + it.kstr("") + \
                it.kstr("") + it.kstr("") + struct.pack(">i", 0)
        if key == 12:  # Heartbeat
            return (thr if ver >= 1 else b"") + struct.pack(">h", err)
        if key == 8:  # OffsetCommit: the error for every partition asked
            r = it.Rd(body)
            r.string(), r.i32(), r.string()
            if ver >= 7:
                r.string()
            if ver <= 4:
                r.i64()
            out = struct.pack(">i", r.i32())
            for t in range(struct.unpack(">i", out)[0]):
                name, np = r.string(), r.i32()
                out += it.kstr(name) + struct.pack(">i", np)
                for _ in range(np):
                    part = r.i32()
                    r.i64()
                    if ver >= 6:
                        r.i32()
                    r.string()
                    out += struct.pack(">ih", part, err)
            return (thr if ver >= 3 else b"") + out
        raise AssertionError("no error layout for api %d" % key)


def mode_rediscover(b, exe, tmp):
    create_topic(b, "grd", 2)
    tg.produce_n(b, "grd", 2, 20)
    px = FaultProxy(b)
    px.inject = {(11, 1): 16, (12, 3): 15, (8, 1): 16}

    class Via:  # the driver bootstraps through the proxy
        addr = "127.0.0.1:%d" % px.port
    d = Driver(exe, Via, tmp, "grd", "grd", {"enable.auto.commit": "false"})
    wait_for("joined after NOT_COORDINATOR on the first JoinGroup, read 20",
             lambda: d.assigned() == {0, 1} and len(d.records()) >= 20)
    if px.count(10) < 2:
        fail("FindCoordinator sent %d time(s), want a second lookup after NOT_COORDINATOR"
             % px.count(10))
    wait_for("the 3rd Heartbeat got COORDINATOR_NOT_AVAILABLE and a new lookup followed",
             lambda: px.count(12) >= 4 and px.count(10) >= 3)
    expect("the heartbeat error cost no rebalance", d.count("ASSIGN"), 1)
    d.send("pause")
    time.sleep(0.3)
    expect("commit retried after NOT_COORDINATOR", d.call("commit", "COMMIT"), "COMMIT 0")
    if px.count(8) < 2 or px.count(10) < 4:
        fail("OffsetCommit sent %d time(s), FindCoordinator %d: want a retry after a new lookup"
             % (px.count(8), px.count(10)))
    expect("the retried commit landed", committed(b, "grd", "grd", 2), {0: 10, 1: 10})
    # ILLEGAL_GENERATION on a heartbeat: revoke and rejoin with the same member id;
    # UNKNOWN_MEMBER_ID: rejoin with the member id forgotten ("")
    d.send("resume")
    member = px.joins[-1]
    with px.lock:
        px.inject[(12, px.seen.get(12, 0) + 2)] = 22
    wait_for("ILLEGAL_GENERATION on a Heartbeat -> revoked and assigned again",
             lambda: d.count("ASSIGN") == 2 and d.assigned() == {0, 1})
    expect("the rejoin kept the member id", px.joins[-1], member)
    njoins = len(px.joins)
    with px.lock:
        px.inject[(12, px.seen.get(12, 0) + 2)] = 25
    wait_for("UNKNOWN_MEMBER_ID on a Heartbeat -> revoked and assigned again",
             lambda: d.count("ASSIGN") == 3 and d.assigned() == {0, 1})
    expect("the rejoin after UNKNOWN_MEMBER_ID started with no member id",
           px.joins[njoins], "")
    ok("FindCoordinator %d, JoinGroup %d, Heartbeat %d, OffsetCommit %d through the proxy"
       % (px.count(10), px.count(11), px.count(12), px.count(8)))
    d.call("close", "CLOSED 0")
    d.finish()


def mode_session(b, exe, tmp):
    create_topic(b, "gse", 2)
    tg.produce_n(b, "gse", 2, 20)
    d = Driver(exe, b, tmp, "gse", "gse", {"enable.auto.commit": "true",
                                           "auto.commit.interval.ms": 200})
    wait_for("read the first 20", lambda: d.assigned() == {0, 1} and len(d.records()) >= 20)
    m = d.mark()
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        d.wait("REVOKE", m, timeout=30)
        ok("no heartbeat answer for session.timeout.ms: the member revoked its partitions")
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    d.wait("ASSIGN 0 1", m, timeout=40)
    ok("stratad resumed: the member rejoined")
    tg.produce_n(b, "gse", 2, 20, start=20)
    wait_for("read the next 20", lambda: len(set(values(d.records()))) >= 40)
    expect("nothing lost", sorted(set(values(d.records()))), want(0, 40))
    d.call("close", "CLOSED 0")
    d.finish()


def create_partitions(b, topic, count):
    c = Conn(b.port)
    body = (struct.pack(">i", 1) + it.kstr(topic) + struct.pack(">ii", count, -1) +
            struct.pack(">ib", 10000, 0))
    r = it.Rd(c.call(37, 0, body))
    r.i32()
    res = [(r.string(), r.i16(), r.string()) for _ in range(r.i32())]
    c.close()
    expect("CreatePartitions %s -> %d" % (topic, count), [x[1] for x in res], [0])


def mode_grow(b, exe, tmp):
    create_topic(b, "ggrow", 2)
    tg.produce_n(b, "ggrow", 2, 10)
    d = Driver(exe, b, tmp, "gg", "ggrow", {"enable.auto.commit": "true",
                                            "topic.metadata.refresh.interval.ms": 300})
    wait_for("owns both partitions, read 10", lambda: d.assigned() == {0, 1} and
             len(d.records()) >= 10)
    create_partitions(b, "ggrow", 4)
    wait_for("the leader noticed 4 partitions and rejoined: owns all 4",
             lambda: d.assigned() == {0, 1, 2, 3})
    tg.produce_n(b, "ggrow", 4, 20, start=10)
    wait_for("read the 20 new records", lambda: len(d.records()) >= 30)
    time.sleep(0.5)
    expect("every record exactly once across the rebalance", values(d.records()), want(0, 30))
    d.call("close", "CLOSED 0")
    d.finish()


MODES = {"split": mode_split, "follower": mode_follower, "manual": mode_manual, "restart": mode_restart, "autocommit": mode_autocommit,
         "fenced": mode_fenced, "coordinator": mode_coordinator, "session": mode_session, "rediscover": mode_rediscover, "static": mode_static, "grow": mode_grow, "kcat": mode_kcat}


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in MODES:
        print(__doc__)
        return 2
    exe = it.stratad_arg(__doc__)
    drv, mode = os.path.abspath(sys.argv[2]), sys.argv[3]
    if not os.access(drv, os.X_OK):
        fail("%s is not executable (build first)" % drv)

    def body(tmp):
        b = it.Broker(exe, tmp, overrides=OVERRIDES)
        MODES[mode](b, drv, tmp)
        b.stop_ok()
    it.run("strata-clgroup-", body, keep_tmp_on_fail=True)
    print("PASS: %s" % mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
