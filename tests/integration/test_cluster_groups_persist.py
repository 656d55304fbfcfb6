#!/usr/bin/env python3
"""Group metadata persisted in __consumer_offsets (docs/consumer-groups.md,
"Group metadata records" and "Cluster mode"), and the coordinator's writes
refused when __consumer_offsets has fewer in-sync replicas than
min.insync.replicas.

Single node (metadata.store=local), raw protocol:
  1. JoinGroup v1 + SyncGroup v0 make a Stable group of one member; its
     GroupMetadata record in __consumer_offsets is in Kafka's format (key
     version 2; value version 3: protocol type, generation, protocol, leader,
     current state timestamp, the member with its client id and host,
     timeouts, subscription and assignment);
  2. stratad SIGKILLed and restarted: the member's Heartbeat with its old
     generation is accepted, DescribeGroups shows the group Stable with the
     member and its assignment, SyncGroup gives the assignment back;
  3. LeaveGroup + DeleteGroups: the GroupMetadata key gets a tombstone; after
     another restart the group is gone (DescribeGroups: Dead).

Cluster (ZooKeeper + 3 brokers, __consumer_offsets 3 partitions x RF 3):
  4. two kafka-python consumers (session.timeout.ms 30 s) split four
     partitions; the coordinator is SIGKILLed; the new coordinator knows the
     group (DescribeGroups: Stable, the same member ids) and the consumers go
     on in the same generation with the same partitions (no rebalance),
     reading every record;
  5. with min.insync.replicas=3 on __consumer_offsets and one broker still
     down, an OffsetCommit and a DeleteGroups are refused with
     COORDINATOR_NOT_AVAILABLE (15) and change nothing (OffsetFetch: no
     offset; the group still exists); once the broker is back in the ISR the
     same commit succeeds; a static member's rejoin (new member id, no
     rebalance) is refused the same way and its old member id stays valid,
     then succeeds once the ISR is back; DeleteGroups then succeeds, and after its
     coordinator is SIGKILLed right away the next one does not know the group
     or its offsets.
Skips (77) without java / ZooKeeper or kafka-python. Stopped by pid.

usage: test_cluster_groups_persist.py STRATAD
"""
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

OFFSETS = "__consumer_offsets"
COORDINATOR_NOT_AVAILABLE = 15


def wait_for(what, fn, timeout=40):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
        except OSError as e:  # a broker not listening yet
            last = e
        if last and not isinstance(last, OSError):
            return last
        time.sleep(0.2)
    it.fail("%s: not within %d s (last: %r)" % (what, timeout, last))


def java_hash(s):
    h = 0
    for ch in s:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def kbytes(b):
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


def rbytes(r):
    n = r.i32()
    return None if n < 0 else r.take(n)


def nstring(r):
    n = r.i16()
    return None if n < 0 else r.take(n).decode()


def subscription(topics):
    """ConsumerProtocolSubscription v0."""
    return (struct.pack(">hi", 0, len(topics)) + b"".join(it.kstr(t) for t in topics) +
            kbytes(None))


# ---- raw group requests ----------------------------------------------------------

def join(c, group, member="", session=30000, rebalance=10000, sub=b""):
    """JoinGroup v1 -> (error, generation, protocol, leader, member id)."""
    body = (it.kstr(group) + struct.pack(">ii", session, rebalance) + it.kstr(member) +
            it.kstr("consumer") + struct.pack(">i", 1) + it.kstr("range") + kbytes(sub))
    r = it.Rd(c.call(11, 1, body))
    return r.i16(), r.i32(), r.string(), r.string(), r.string()


def sync(c, group, gen, member, assignments=()):
    """SyncGroup v0 -> (error, assignment)."""
    body = (it.kstr(group) + struct.pack(">i", gen) + it.kstr(member) +
            struct.pack(">i", len(assignments)) +
            b"".join(it.kstr(m) + kbytes(a) for m, a in assignments))
    r = it.Rd(c.call(14, 0, body))
    return r.i16(), rbytes(r)


def join_static(c, group, instance, member="", sub=b""):
    """JoinGroup v5 with a group.instance.id -> (error, generation, leader, member id)."""
    body = (it.kstr(group) + struct.pack(">ii", 30000, 10000) + it.kstr(member) +
            it.kstr(instance) + it.kstr("consumer") + struct.pack(">i", 1) + it.kstr("range") +
            kbytes(sub))
    r = it.Rd(c.call(11, 5, body))
    r.i32()
    err, gen = r.i16(), r.i32()
    r.string()
    return err, gen, r.string(), r.string()


def sync_static(c, group, gen, member, instance, assignments=()):
    """SyncGroup v3 -> (error, assignment)."""
    body = (it.kstr(group) + struct.pack(">i", gen) + it.kstr(member) + it.kstr(instance) +
            struct.pack(">i", len(assignments)) +
            b"".join(it.kstr(m) + kbytes(a) for m, a in assignments))
    r = it.Rd(c.call(14, 3, body))
    r.i32()
    return r.i16(), rbytes(r)


def heartbeat_static(c, group, gen, member, instance):
    """Heartbeat v3 -> error."""
    r = it.Rd(c.call(12, 3, it.kstr(group) + struct.pack(">i", gen) + it.kstr(member) +
                     it.kstr(instance)))
    r.i32()
    return r.i16()


def heartbeat(c, group, gen, member):
    r = it.Rd(c.call(12, 0, it.kstr(group) + struct.pack(">i", gen) + it.kstr(member)))
    return r.i16()


def leave(c, group, member):
    return it.Rd(c.call(13, 0, it.kstr(group) + it.kstr(member))).i16()


def describe(c, group):
    """DescribeGroups v0 -> (error, state, protocol, {member id: (client id,
    host, metadata, assignment)})."""
    r = it.Rd(c.call(15, 0, struct.pack(">i", 1) + it.kstr(group)))
    r.i32()
    err, _, state, _, proto = r.i16(), r.string(), r.string(), r.string(), r.string()
    members = {}
    for _ in range(r.i32()):
        mid, cid, host = r.string(), r.string(), r.string()
        members[mid] = (cid, host, rbytes(r), rbytes(r))
    return err, state, proto, members


def delete_group(c, group):
    """DeleteGroups v0 -> the group's error."""
    r = it.Rd(c.call(42, 0, struct.pack(">i", 1) + it.kstr(group)))
    r.i32()
    r.i32()
    r.string()
    return r.i16()


def commit(c, group, topic, part, offset, gen=-1, member=""):
    """OffsetCommit v2 of one partition -> its error."""
    body = (it.kstr(group) + struct.pack(">i", gen) + it.kstr(member) + struct.pack(">q", -1) +
            struct.pack(">i", 1) + it.kstr(topic) + struct.pack(">i", 1) +
            struct.pack(">iq", part, offset) + it.kstr(""))
    r = it.Rd(c.call(8, 2, body))
    r.i32()
    r.string()
    r.i32()
    r.i32()
    return r.i16()


def fetch_offset(c, group, topic, part):
    """OffsetFetch v1 of one partition -> (offset, error)."""
    body = (it.kstr(group) + struct.pack(">i", 1) + it.kstr(topic) + struct.pack(">ii", 1, part))
    r = it.Rd(c.call(9, 1, body))
    r.i32()
    r.string()
    r.i32()
    r.i32()
    off = r.i64()
    r.string()
    return off, r.i16()


def find_coordinator(b, group):
    """(error, node id) from FindCoordinator v0 on broker b."""
    c = it.Conn(b.port, timeout=10)
    try:
        r = it.Rd(c.call(10, 0, it.kstr(group)))
    finally:
        c.close()
    return r.i16(), r.i32()


def group_records(port, group, nparts):
    """[(key version, value or None)] of the group's GroupMetadata key in its
    __consumer_offsets partition, in log order."""
    c = it.Conn(port)
    try:
        part = abs(java_hash(group)) % nparts
        out = []
        for _, bb in it.read_all_batches(c, OFFSETS, part):
            for rec in it.batch_records(bb):
                k = it.Rd(rec["key"])
                if k.i16() == 2 and k.string() == group:
                    out.append(rec["value"])
        return out
    finally:
        c.close()


def parse_group_value(v):
    r = it.Rd(v)
    ver = r.i16()
    g = {"version": ver, "protocol_type": r.string(), "generation": r.i32(),
         "protocol": nstring(r), "leader": nstring(r), "ts": r.i64(), "members": []}
    for _ in range(r.i32()):
        g["members"].append({"id": r.string(), "instance": nstring(r), "client_id": r.string(),
                             "client_host": r.string(), "rebalance": r.i32(),
                             "session": r.i32(), "subscription": rbytes(r),
                             "assignment": rbytes(r)})
    r.done()  # no trailing bytes
    return g


# ---- single node -----------------------------------------------------------------

def single_node(exe, tmp):
    d = os.path.join(tmp, "single")
    os.makedirs(d)
    b = it.Broker(exe, d, {"offsets.topic.num.partitions": "1",
                           "group.initial.rebalance.delay.ms": "0"})
    it.create_topic(b, "pt", 2)
    group, sub, asg = "pg", subscription(["pt"]), b"ASSIGN-1"
    c = it.Conn(b.port)
    err, gen, proto, leader, mid = join(c, group, sub=sub)
    it.expect("JoinGroup v1 (error, protocol, leader is me)", (err, proto, leader == mid),
              (0, "range", True))
    it.expect("SyncGroup v0 of the leader", sync(c, group, gen, mid, [(mid, asg)]), (0, asg))
    it.expect("OffsetCommit v2 of the member", commit(c, group, "pt", 0, 7, gen, mid), 0)
    c.close()

    # 1. the record, in Kafka's schema
    vals = group_records(b.port, group, 1)
    if not vals or vals[-1] is None:
        it.fail("no GroupMetadata record for %s in %s-0" % (group, OFFSETS))
    g = parse_group_value(vals[-1])
    m = g["members"][0] if len(g["members"]) == 1 else it.fail("members: %r" % g["members"])
    it.expect("GroupMetadataValue (version, type, generation, protocol, leader)",
              (g["version"], g["protocol_type"], g["generation"], g["protocol"], g["leader"]),
              (3, "consumer", gen, "range", mid))
    it.expect("its member (id, instance, client id, host, rebalance, session, subscription, "
              "assignment)",
              (m["id"], m["instance"], m["client_id"], m["client_host"], m["rebalance"],
               m["session"], m["subscription"], m["assignment"]),
              (mid, None, "it", "/127.0.0.1", 10000, 30000, sub, asg))
    if g["ts"] <= 0:
        it.fail("currentStateTimestamp %d" % g["ts"])

    # 2. SIGKILL + restart: the member goes on in its generation
    b.kill()
    b.start()
    if "1 group(s) Stable with their members" not in b.read_log():
        it.fail("the restart did not report the reloaded group")
    c = it.Conn(b.port)
    it.expect("Heartbeat with the old generation after the restart", heartbeat(c, group, gen, mid),
              0)
    err, state, proto, members = describe(c, group)
    it.expect("DescribeGroups after the restart (error, state, protocol, members)",
              (err, state, proto, sorted(members)), (0, "Stable", "range", [mid]))
    it.expect("its member's client id, host, subscription, assignment", members[mid],
              ("it", "/127.0.0.1", sub, asg))
    it.expect("SyncGroup in the Stable group gives the assignment back", sync(c, group, gen, mid),
              (0, asg))
    it.expect("the commit survived", fetch_offset(c, group, "pt", 0), (7, 0))

    # 3. leave, delete: tombstone; gone after a restart
    it.expect("LeaveGroup", leave(c, group, mid), 0)
    err, state, _, _ = describe(c, group)
    it.expect("the group after LeaveGroup", (err, state), (0, "Empty"))
    # the Empty record is not waited for (as in Kafka): poll until it is readable
    empty = parse_group_value(wait_for("the Empty group's record", lambda: (
        lambda v: v[-1] if v and v[-1] is not None and
        parse_group_value(v[-1])["generation"] == gen + 1 else None)(
            group_records(b.port, group, 1)), 20))
    it.expect("its Empty record (generation, protocol, leader, members)",
              (empty["generation"], empty["protocol"], empty["leader"], empty["members"]),
              (gen + 1, None, None, []))
    it.expect("DeleteGroups", delete_group(c, group), 0)
    c.close()
    it.expect("the last GroupMetadata record after DeleteGroups is a tombstone",
              group_records(b.port, group, 1)[-1], None)
    b.kill()
    b.start()
    c = it.Conn(b.port)
    err, state, _, members = describe(c, group)
    it.expect("after another restart the deleted group", (err, state, members), (0, "Dead", {}))
    it.expect("and its offset", fetch_offset(c, group, "pt", 0), (-1, 0))
    c.close()
    b.stop_ok()


# ---- cluster ---------------------------------------------------------------------

class Reader(threading.Thread):
    def __init__(self, name, boot, topic, group, stop, lock, seen):
        threading.Thread.__init__(self, daemon=True)
        from kafka import KafkaConsumer
        self.c = KafkaConsumer(topic, bootstrap_servers=boot, group_id=group,
                               client_id=name, auto_offset_reset="earliest",
                               enable_auto_commit=False, session_timeout_ms=30000,
                               heartbeat_interval_ms=1000, request_timeout_ms=40000,
                               metadata_max_age_ms=1000, reconnect_backoff_ms=50,
                               retry_backoff_ms=100, max_poll_records=20)
        self.stop, self.lock, self.seen = stop, lock, seen
        self.errors = 0

    def state(self):
        """(generation, member id, sorted assigned partitions)."""
        g = self.c._coordinator._generation  # kafka-python 2.0.2 internals, read only
        return (g.generation_id, g.member_id,
                tuple(sorted(tp.partition for tp in self.c.assignment())))

    def run(self):
        while not self.stop.is_set():
            try:
                recs = self.c.poll(timeout_ms=200)
            except Exception as e:  # noqa: BLE001 -- a dead coordinator
                self.errors += 1
                if self.errors < 5:
                    print("poll: %s" % type(e).__name__, flush=True)
                time.sleep(0.1)
                continue
            batch = [int(m.value) for ms in recs.values() for m in ms]
            if not batch:
                continue
            with self.lock:
                self.seen.extend(batch)
            try:
                self.c.commit()
            except Exception as e:  # noqa: BLE001
                self.errors += 1
                print("commit: %s" % type(e).__name__, flush=True)


def cluster(exe, tmp):
    try:
        from kafka import KafkaProducer
        from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
    except ImportError:
        it.skip("needs kafka-python (python3-kafka)")
    zk = it.ZooKeeper(tmp)
    brokers = {}
    for i in (1, 2, 3):
        d = os.path.join(tmp, "b%d" % i)
        os.makedirs(d)
        brokers[i] = it.Broker(exe, d, it.cluster_overrides(
            zk, i, chroot="/cgp", extra=[("offsets.topic.num.partitions", "3"),
                                         ("offsets.topic.replication.factor", "3"),
                                         ("replica.lag.time.max.ms", "4000"),
                                         ("group.initial.rebalance.delay.ms", "0")]))
    boot = ",".join(b.addr for b in brokers.values())

    def all_live():
        s = brokers[1].connect()
        try:
            return len(it.metadata(s, 5, 1, [], allow_auto=False)["brokers"]) == 3
        finally:
            s.close()
    wait_for("3 live brokers", all_live)
    admin = KafkaAdminClient(bootstrap_servers=boot, request_timeout_ms=20000)
    admin.create_topics([NewTopic("cp", 4, 3)])
    admin.close()
    group = "cgp-group"

    def coordinator(live):
        ids = set()
        for b in live.values():
            err, node = find_coordinator(b, group)
            if err:
                return None
            ids.add(node)
        return ids.pop() if len(ids) == 1 else None
    coord = wait_for("one coordinator", lambda: coordinator(brokers))

    producer = KafkaProducer(bootstrap_servers=boot, acks="all", linger_ms=5, retries=20,
                             max_in_flight_requests_per_connection=1,
                             request_timeout_ms=10000, metadata_max_age_ms=500,
                             reconnect_backoff_ms=50, retry_backoff_ms=200)
    total = 0

    def produce(n):
        nonlocal total
        for k in range(n):
            producer.send("cp", b"%06d" % (total + k), partition=(total + k) % 4)
        producer.flush(timeout=60)
        total += n
    produce(200)

    # 4. a Stable group of two, then the coordinator dies
    stop, lock, seen = threading.Event(), threading.Lock(), []
    readers = [Reader("p%d" % k, boot, "cp", group, stop, lock, seen) for k in (1, 2)]
    for r in readers:
        r.start()

    def settled():
        st = [r.state() for r in readers]
        parts = sorted(p for s in st for p in s[2])
        return st if (parts == [0, 1, 2, 3] and st[0][0] == st[1][0] > 0 and
                      len(set(seen)) >= total) else None
    before = wait_for("two consumers sharing 4 partitions, 200 records read", settled, 60)
    c = it.Conn(brokers[coord].port)
    err, state, _, members = describe(c, group)
    c.close()
    it.expect("DescribeGroups on coordinator %d" % coord, (err, state, sorted(members)),
              (0, "Stable", sorted(s[1] for s in before)))
    it.ok("generation %d, partitions %r / %r" % (before[0][0], before[0][2], before[1][2]))
    brokers[coord].kill()
    t_kill = time.time()
    it.ok("SIGKILLed coordinator %d" % coord)
    alive = {i: b for i, b in brokers.items() if i != coord}
    produce(200)
    new = wait_for("a new coordinator", lambda: (lambda n: n if n and n != coord else None)(
        coordinator(alive)), 60)

    def described():
        c = it.Conn(brokers[new].port)
        try:
            d = describe(c, group)
        finally:
            c.close()
        return d if d[0] == 0 else None
    err, state, _, members = wait_for("the new coordinator loaded", described, 30)
    t_loaded = time.time() - t_kill
    it.expect("DescribeGroups on the new coordinator %d (state, members)" % new,
              (state, sorted(members)), ("Stable", sorted(s[1] for s in before)))
    wait_for("every record read", lambda: len(set(seen)) >= total, 60)

    def committed_all():
        c = it.Conn(brokers[new].port)
        try:
            offs = [fetch_offset(c, group, "cp", p) for p in range(4)]
        finally:
            c.close()
        return sum(o for o, _ in offs) == total and all(e == 0 for _, e in offs)
    wait_for("the consumers' commits of all %d records accepted by coordinator %d" % (total, new),
             committed_all, 30)
    it.ok("new coordinator answering DescribeGroups %.1f s after the SIGKILL; every commit "
          "accepted there %.1f s after it (figures, not checked)" % (t_loaded,
                                                                     time.time() - t_kill))
    after = [r.state() for r in readers]
    it.expect("each consumer's (generation, member id, partitions) after the failover "
              "(no rebalance)", after, before)
    with lock:
        got = list(seen)
    missing = sorted(set(range(total)) - set(got))
    if missing:
        it.fail("%d record(s) never read, first %r" % (len(missing), missing[:10]))
    it.ok("%d record(s) read, %d distinct" % (len(got), len(set(got))))
    stop.set()
    for r in readers:
        r.join(timeout=20)
    for r in readers:
        r.c.close(autocommit=False)

    # 5. min.insync.replicas=3 with broker `coord` down. First a static member
    #    (group.instance.id) in a Stable group of its own, on the same offsets
    #    partition as the probe group below (so the same coordinator)
    probe = "cgp-probe"
    static = next("cgp-static-%d" % k for k in range(1000)
                  if abs(java_hash("cgp-static-%d" % k)) % 3 == abs(java_hash(probe)) % 3)

    def on_coord(name, fn):
        for b in brokers.values():
            if not b.running():
                continue
            err, node = find_coordinator(b, name)
            if err or not brokers[node].running():
                return None
            c = it.Conn(brokers[node].port)
            try:
                return fn(c)
            finally:
                c.close()
        return None
    ssub = subscription(["cp"])
    s_err, s_gen, s_leader, s_mid = wait_for("a static member joined", lambda: on_coord(
        static, lambda c: (lambda r: r if r[0] == 0 else None)(
            join_static(c, static, "i1", sub=ssub))), 30)
    it.expect("SyncGroup v3 of the static member", on_coord(
        static, lambda c: sync_static(c, static, s_gen, s_mid, "i1", [(s_mid, b"S1")])),
        (0, b"S1"))

    def alter():
        # a fresh client on the live brokers (one whose connection to the
        # killed broker breaks would fail the request)
        a = KafkaAdminClient(bootstrap_servers=",".join(b.addr for b in alive.values()),
                             request_timeout_ms=20000)
        try:
            a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, OFFSETS, configs={
                "cleanup.policy": "compact", "min.insync.replicas": "3"})])
            return True
        except Exception as e:  # noqa: BLE001 -- retriable connection errors only
            if not getattr(e, "retriable", False):
                raise
            print("alter_configs: %s; again" % type(e).__name__, flush=True)
            return None
        finally:
            a.close()
    wait_for("AlterConfigs min.insync.replicas=3 on %s" % OFFSETS, alter, 60)

    def on_coordinator(fn):
        return on_coord(probe, fn)
    # offset 5 until the new config has reached the coordinator (commits
    # before that may succeed), then 11, which must be refused
    wait_for("a commit refused (the config propagated)", lambda: on_coordinator(
        lambda c: commit(c, probe, "cp", 0, 5) == COORDINATOR_NOT_AVAILABLE), 30)
    it.expect("OffsetCommit with 2 in-sync replicas of 3 required",
              on_coordinator(lambda c: commit(c, probe, "cp", 0, 11)), COORDINATOR_NOT_AVAILABLE)
    off = on_coordinator(lambda c: fetch_offset(c, probe, "cp", 0))
    if off is None or off[0] == 11:
        it.fail("OffsetFetch after the refused commit: %r" % (off,))
    it.ok("OffsetFetch after the refused commit: %r (not 11)" % (off,))
    # Kafka's updateStaticMemberAndRebalance: the rejoin is stored before it is
    # answered; refused, the old member id is the instance's again
    it.expect("static rejoin (new member id) while the group cannot be stored "
              "(error, generation, leader, member id)",
              on_coord(static, lambda c: join_static(c, static, "i1", sub=ssub)),
              (COORDINATOR_NOT_AVAILABLE, s_gen, s_mid, ""))
    it.expect("Heartbeat v3 with the old member id afterwards", on_coord(
        static, lambda c: heartbeat_static(c, static, s_gen, s_mid, "i1")), 0)

    def on_group_coordinator(fn):
        err, node = find_coordinator(brokers[new], group)
        if err or not brokers[node].running():
            return None
        c = it.Conn(brokers[node].port)
        try:
            return fn(c)
        finally:
            c.close()
    wait_for("the group Empty after both left", lambda: on_group_coordinator(
        lambda c: describe(c, group)[1] == "Empty"), 30)
    it.expect("DeleteGroups with 2 in-sync replicas of 3 required",
              on_group_coordinator(lambda c: delete_group(c, group)), COORDINATOR_NOT_AVAILABLE)
    it.expect("the group is still there", on_group_coordinator(
        lambda c: describe(c, group)[:2]), (0, "Empty"))
    brokers[coord].start()
    it.ok("restarted broker", coord)
    wait_for("the commit accepted once broker %d is back in the ISR" % coord,
             lambda: on_coordinator(lambda c: commit(c, probe, "cp", 0, 11) == 0), 60)
    it.expect("OffsetFetch", on_coordinator(lambda c: fetch_offset(c, probe, "cp", 0)), (11, 0))
    err, gen, leader, mid2 = on_coord(static, lambda c: join_static(c, static, "i1", sub=ssub))
    it.expect("static rejoin stored now: (error, generation, old leader id, a new id)",
              (err, gen, leader, mid2 not in ("", s_mid)), (0, s_gen, s_mid, True))
    it.expect("Heartbeat v3 of the new id / the old id (fenced)", on_coord(
        static, lambda c: (heartbeat_static(c, static, s_gen, mid2, "i1"),
                           heartbeat_static(c, static, s_gen, s_mid, "i1"))), (0, 82))
    wait_for("DeleteGroups accepted", lambda: on_group_coordinator(
        lambda c: delete_group(c, group) == 0), 30)
    it.ok("DeleteGroups accepted with 3 in-sync replicas")

    # 6. answered once the ISR had the tombstones: the deletion survives the
    #    coordinator's loss right after it
    def find_any(g):
        for b in brokers.values():
            if b.running():
                err, node = find_coordinator(b, g)
                if not err and brokers[node].running():
                    return node
        return None
    gc = wait_for("the group's coordinator", lambda: find_any(group), 30)
    brokers[gc].kill()
    it.ok("SIGKILLed the group's coordinator %d right after DeleteGroups" % gc)
    nc = wait_for("another coordinator", lambda: (lambda n: n if n and n != gc else None)(
        find_any(group)), 60)

    def gone():
        c = it.Conn(brokers[nc].port)
        try:
            d = describe(c, group)
            offs = [fetch_offset(c, group, "cp", p) for p in range(4)]
        finally:
            c.close()
        return (d[:2], offs) if d[0] == 0 and all(e == 0 for _, e in offs) else None
    it.expect("the deleted group on the new coordinator %d (DescribeGroups, offsets)" % nc,
              wait_for("coordinator %d loaded" % nc, gone, 30),
              ((0, "Dead"), [(-1, 0)] * 4))
    producer.close()


def body(tmp):
    exe = it.stratad_arg(__doc__)
    single_node(exe, tmp)
    cluster(exe, tmp)
    return 0


if __name__ == "__main__":
    raise SystemExit(it.run("strata-cgpersist-", body))
