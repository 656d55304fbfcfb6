#!/usr/bin/python3
"""Integration test: the group coordinator and committed offsets.

usage: test_groups.py STRATAD MODE

MODE is one of
  raw      the protocol by hand: FindCoordinator v0/v2; JoinGroup v5 ->
           MEMBER_ID_REQUIRED -> rejoin (leader, generation 1); bad session
           timeout 26, empty group id 24, unknown member 25; SyncGroup stores
           and returns the assignment; Heartbeat 0 / 22 / 25; DescribeGroups,
           ListGroups; OffsetCommit v2/v7 + OffsetFetch v1/v5 (metadata,
           leader epoch, unknown partition 3, too-large metadata 12, generation
           fencing 22/25); LeaveGroup v3 -> Empty; a simple commit then works;
           Produce to __consumer_offsets refused (17); Metadata hides it from
           the all-topics list and marks it internal when asked by name
  split    two kafka-python KafkaConsumers in one group on a 4-partition topic
           split the partitions 2/2; one closes, the other gets all four
  restart  kafka-python consumes part of a topic and commits; stratad is
           SIGKILLed and restarted; a new consumer resumes at the commit: every
           record seen exactly once; the commits are records in
           __consumer_offsets in Kafka's key/value format
  evict    a raw member joins a kafka-python consumer's group and goes silent:
           the partitions are split with it, then it is evicted after its
           session timeout and the consumer gets all four back
  kcat     kcat -G (librdkafka balanced consumer) reads everything; a second
           run in the same group resumes from its commits
  internal __consumer_offsets is protected: DeleteTopics v0-3 and
           CreatePartitions v0-1 on it fail with 17 INVALID_TOPIC_EXCEPTION,
           AlterConfigs v0-1 that does not keep cleanup.policy=compact fails
           with 40 INVALID_CONFIG (one that keeps it works); retention honours
           cleanup.policy: with retention.ms=1 / retention.bytes=1 and a 100 ms
           retention check, a compact topic keeps every segment while delete
           and compact,delete topics lose theirs
  expire   offset expiry with offsets.retention.minutes=1 and a 200 ms check:
           an OffsetCommit v2 retention time expires its offset (tombstone,
           OffsetFetch -1, the group leaves ListGroups; still gone after a
           restart) while a plain commit stays; then a commit-only group
           expires 60 s after its commit, and a consumer group's offsets 60 s
           after it became Empty (not after the commit); meanwhile a Stable
           group's offset of a topic it does not subscribe to expires 60 s after
           its commit while its subscribed topic's offset stays
  static   static membership by raw frames (kafka-python 2.0.2 has none): no
           MEMBER_ID_REQUIRED; a restarted instance (empty member id, same
           topics) rejoins a Stable group with no rebalance and gets its old
           assignment, old id fenced (82) on Join/Sync/Heartbeat/Commit; same
           for the leader (the old leader id is answered); a changed
           subscription rebalances; LeaveGroup v3 by instance id; a static
           member that stops without LeaveGroup is kept through a rebalance and
           removed only at its session timeout
  delete   DeleteGroups v0/v1 (Empty only: 68 / 69 / 24), through kafka-python's
           KafkaAdminClient.delete_consumer_groups too; OffsetDelete v0 (86 for
           subscribed topics of a Stable group, 68 for a non-consumer group with
           members, 3 for unknown partitions; an Empty group loses its last
           offset and disappears); everything stays deleted after a SIGKILL
           restart; group.max.size=2 (81 in Stable, before MEMBER_ID_REQUIRED,
           and for the member rejoining last in PreparingRebalance)

Each mode starts its own stratad with small session / rebalance settings
(--override) and stops it by pid. Exit 0 = pass, 1 = fail, 77 = skipped.
"""
import os
import shutil
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402
from strata_it import Conn, Rd, create_topic, expect, fail, kstr, ok  # noqa: E402

OVERRIDES = {"num.partitions": 1, "group.min.session.timeout.ms": 1000,
             "group.initial.rebalance.delay.ms": 0}


def kbytes(b):
    return struct.pack(">i", len(b)) + b


def nstr(s):
    return struct.pack(">h", -1) if s is None else kstr(s)


def subscription(topics):
    """ConsumerProtocolSubscription v0."""
    return struct.pack(">h", 0) + struct.pack(">i", len(topics)) + b"".join(
        kstr(t) for t in topics) + struct.pack(">i", -1)


def assignment(parts):
    """ConsumerProtocolAssignment v0 from {topic: [partitions]}."""
    body = struct.pack(">h", 0) + struct.pack(">i", len(parts))
    for t, ps in parts.items():
        body += kstr(t) + struct.pack(">i", len(ps)) + b"".join(struct.pack(">i", p) for p in ps)
    return body + struct.pack(">i", -1)


# ---- raw requests -----------------------------------------------------------------

def join_body(v, group, member="", session=6000, rebalance=10000, instance=None,
              protos=(("range", b"m"),), ptype="consumer"):
    body = kstr(group) + struct.pack(">i", session)
    if v >= 1:
        body += struct.pack(">i", rebalance)
    body += kstr(member)
    if v >= 5:
        body += nstr(instance)
    body += kstr(ptype) + struct.pack(">i", len(protos))
    for n, m in protos:
        body += kstr(n) + kbytes(m)
    return body


def join_send(c, v, group, **kw):
    """Sends a JoinGroup without waiting (it parks while the group rebalances)."""
    return c.send(11, v, join_body(v, group, **kw))


def join_recv(c, v, corr):
    rc, body = c.recv()
    if rc != corr:
        fail("JoinGroup response: correlation id %d, expected %d" % (rc, corr))
    return parse_join(v, body)


def join(c, v, group, **kw):
    return parse_join(v, c.call(11, v, join_body(v, group, **kw)))


def parse_join(v, body):
    r = Rd(body)
    if v >= 2:
        r.i32()
    out = {"error": r.i16(), "generation": r.i32(), "protocol": r.string(),
           "leader": r.string(), "member": r.string(), "members": []}
    for _ in range(r.i32()):
        mid = r.string()
        if v >= 5:
            r.string()
        out["members"].append((mid, r.take(r.i32())))
    r.done()
    return out


def sync(c, v, group, gen, member, assigns=(), instance=None):
    body = kstr(group) + struct.pack(">i", gen) + kstr(member)
    if v >= 3:
        body += nstr(instance)
    body += struct.pack(">i", len(assigns))
    for mid, a in assigns:
        body += kstr(mid) + kbytes(a)
    r = Rd(c.call(14, v, body))
    if v >= 1:
        r.i32()
    err = r.i16()
    a = r.take(r.i32())
    r.done()
    return err, a


def heartbeat(c, v, group, gen, member, instance=None):
    body = kstr(group) + struct.pack(">i", gen) + kstr(member)
    if v >= 3:
        body += nstr(instance)
    r = Rd(c.call(12, v, body))
    if v >= 1:
        r.i32()
    err = r.i16()
    r.done()
    return err


def commit(c, v, group, gen, member, offsets, retention=-1, instance=None):
    """offsets: [(topic, partition, offset, metadata)] -> {(topic, partition): error}."""
    body = kstr(group) + struct.pack(">i", gen) + kstr(member)
    if v >= 7:
        body += nstr(instance)
    if v <= 4:
        body += struct.pack(">q", retention)
    topics = {}
    for t, p, o, m in offsets:
        topics.setdefault(t, []).append((p, o, m))
    body += struct.pack(">i", len(topics))
    for t, ps in topics.items():
        body += kstr(t) + struct.pack(">i", len(ps))
        for p, o, m in ps:
            body += struct.pack(">iq", p, o)
            if v >= 6:
                body += struct.pack(">i", 7)
            body += nstr(m)
    r = Rd(c.call(8, v, body))
    if v >= 3:
        r.i32()
    out = {}
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p = r.i32()
            out[(t, p)] = r.i16()
    r.done()
    return out


def offset_fetch(c, v, group, topics):
    """topics: {topic: [partitions]} or None -> ({(t, p): (offset, epoch, meta, err)}, top_err)."""
    body = kstr(group)
    if topics is None:
        body += struct.pack(">i", -1)
    else:
        body += struct.pack(">i", len(topics))
        for t, ps in topics.items():
            body += kstr(t) + struct.pack(">i", len(ps)) + b"".join(struct.pack(">i", p) for p in ps)
    r = Rd(c.call(9, v, body))
    if v >= 3:
        r.i32()
    out = {}
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p, off = r.i32(), r.i64()
            epoch = r.i32() if v >= 5 else -1
            meta, err = r.string(), r.i16()
            out[(t, p)] = (off, epoch, meta, err)
    top = r.i16() if v >= 2 else 0
    r.done()
    return out, top


def describe(c, v, groups):
    body = struct.pack(">i", len(groups)) + b"".join(kstr(g) for g in groups)
    if v >= 3:
        body += b"\x00"
    r = Rd(c.call(15, v, body))
    if v >= 1:
        r.i32()
    out = {}
    for _ in range(r.i32()):
        err, gid, state, ptype, proto = r.i16(), r.string(), r.string(), r.string(), r.string()
        members = []
        for _ in range(r.i32()):
            mid = r.string()
            inst = r.string() if v >= 4 else None
            cid, host = r.string(), r.string()
            meta, asg = r.take(r.i32()), r.take(r.i32())
            members.append((mid, cid, host, meta, asg, inst))
        if v >= 3:
            r.i32()
        out[gid] = (err, state, ptype, proto, members)
    r.done()
    return out


def list_groups(c, v):
    r = Rd(c.call(16, v, b""))
    if v >= 1:
        r.i32()
    err = r.i16()
    groups = {}
    for _ in range(r.i32()):
        g = r.string()
        groups[g] = r.string()
    r.done()
    return err, groups


def leave_v3(c, group, members):
    """members: member ids, or (member id, instance id) pairs -> (error, {member or
    instance: error})."""
    members = [m if isinstance(m, tuple) else (m, None) for m in members]
    body = kstr(group) + struct.pack(">i", len(members)) + b"".join(
        kstr(m) + nstr(i) for m, i in members)
    r = Rd(c.call(13, 3, body))
    r.i32()
    top = r.i16()
    res = {}
    for _ in range(r.i32()):
        mid, inst, err = r.string(), r.string(), r.i16()
        res[inst if inst is not None else mid] = err
    r.done()
    return top, res


def delete_groups(c, v, groups):
    """DeleteGroups v0-1 -> [(group, error)] in response order."""
    r = Rd(c.call(42, v, struct.pack(">i", len(groups)) + b"".join(kstr(g) for g in groups)))
    r.i32()
    out = [(r.string(), r.i16()) for _ in range(r.i32())]
    r.done()
    return out


def offset_delete(c, group, topics):
    """OffsetDelete v0; topics {topic: [partitions]} -> (error, {(topic, partition): error})."""
    body = kstr(group) + struct.pack(">i", len(topics))
    for t, ps in topics.items():
        body += kstr(t) + struct.pack(">i", len(ps)) + b"".join(struct.pack(">i", p) for p in ps)
    r = Rd(c.call(47, 0, body))
    top = r.i16()
    r.i32()
    out = {}
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p = r.i32()
            out[(t, p)] = r.i16()
    r.done()
    return top, out


# ---- raw mode -----------------------------------------------------------------------

def mode_raw(b):
    create_topic(b, "rt", 2)
    c = Conn(b.port)
    for v in (0, 2):
        body = kstr("g") + (b"\x00" if v >= 1 else b"")
        r = Rd(c.call(10, v, body))
        if v >= 1:
            r.i32()
        err = r.i16()
        if v >= 1:
            r.string()
        node, host, port = r.i32(), r.string(), r.i32()
        r.done()
        expect("FindCoordinator v%d" % v, (err, node, host, port), (0, 0, "127.0.0.1", b.port))

    expect("JoinGroup bad session timeout", join(c, 5, "g", session=10)["error"], 26)
    expect("JoinGroup empty group id", join(c, 5, "")["error"], 24)
    expect("JoinGroup unknown member of unknown group", join(c, 5, "g", member="x")["error"], 25)

    meta = subscription(["rt"])
    j = join(c, 5, "g", protos=(("range", meta), ("roundrobin", meta)))
    expect("JoinGroup v5 with no member id", j["error"], 79)
    mid = j["member"]
    if not mid.startswith("it-"):
        fail("member id %r is not <client_id>-<uuid>" % mid)
    j = join(c, 5, "g", member=mid, protos=(("range", meta), ("roundrobin", meta)))
    expect("JoinGroup v5 rejoin", (j["error"], j["generation"], j["protocol"], j["leader"],
                                   j["member"], j["members"]),
           (0, 1, "range", mid, mid, [(mid, meta)]))
    expect("JoinGroup: other protocols -> 23",
           join(c, 1, "g", protos=(("sticky", b""),))["error"], 23)
    expect("Heartbeat before sync (CompletingRebalance)", heartbeat(c, 3, "g", 1, mid), 0)
    expect("OffsetCommit during CompletingRebalance",
           commit(c, 7, "g", 1, mid, [("rt", 0, 5, None)]), {("rt", 0): 27})
    asg = assignment({"rt": [0, 1]})
    expect("SyncGroup v3 (leader)", sync(c, 3, "g", 1, mid, [(mid, asg)]), (0, asg))
    expect("SyncGroup v0 again (Stable)", sync(c, 0, "g", 1, mid), (0, asg))
    expect("SyncGroup wrong generation", sync(c, 1, "g", 7, mid)[0], 22)
    expect("Heartbeat v0", heartbeat(c, 0, "g", 1, mid), 0)
    expect("Heartbeat wrong generation", heartbeat(c, 1, "g", 2, mid), 22)
    expect("Heartbeat unknown member", heartbeat(c, 2, "g", 1, "nobody"), 25)

    d = describe(c, 4, ["g", "nope"])
    expect("DescribeGroups g", (d["g"][0], d["g"][1], d["g"][2], d["g"][3], len(d["g"][4])),
           (0, "Stable", "consumer", "range", 1))
    m = d["g"][4][0]
    expect("DescribeGroups member", (m[0], m[1], m[2], m[3], m[4]),
           (mid, "it", "/127.0.0.1", meta, asg))
    expect("DescribeGroups unknown group", d["nope"][:4], (0, "Dead", "", ""))
    expect("ListGroups v2", list_groups(c, 2), (0, {"g": "consumer"}))

    res = commit(c, 2, "g", 1, mid, [("rt", 0, 10, "m0"), ("rt", 1, 11, None), ("rt", 5, 1, None),
                                     ("nope", 0, 1, None), ("rt", 0, 12, "x" * 4097)])
    # the last entry for rt-0 is too large; the earlier one is stored
    expect("OffsetCommit v2", res, {("rt", 0): 12, ("rt", 1): 0, ("rt", 5): 3, ("nope", 0): 3})
    res = commit(c, 7, "g", 1, mid, [("rt", 1, 21, "e")])
    expect("OffsetCommit v7 (leader epoch 7)", res, {("rt", 1): 0})
    expect("OffsetCommit wrong generation", commit(c, 7, "g", 0, mid, [("rt", 0, 1, None)]),
           {("rt", 0): 22})
    expect("OffsetCommit unknown member", commit(c, 5, "g", 1, "zz", [("rt", 0, 1, None)]),
           {("rt", 0): 25})
    expect("OffsetCommit simple while the group has members",
           commit(c, 2, "g", -1, "", [("rt", 0, 1, None)]), {("rt", 0): 25})
    expect("OffsetCommit member of unknown group",
           commit(c, 2, "g2", 3, "m", [("rt", 0, 1, None)]), {("rt", 0): 22})
    got, top = offset_fetch(c, 1, "g", {"rt": [0, 1, 9]})
    expect("OffsetFetch v1", (got, top), ({("rt", 0): (10, -1, "m0", 0), ("rt", 1): (21, -1, "e", 0),
                                           ("rt", 9): (-1, -1, "", 0)}, 0))
    got, top = offset_fetch(c, 5, "g", None)
    expect("OffsetFetch v5 all", (got, top), ({("rt", 0): (10, -1, "m0", 0),
                                               ("rt", 1): (21, 7, "e", 0)}, 0))
    got, top = offset_fetch(c, 3, "unknown-group", {"rt": [0]})
    expect("OffsetFetch unknown group", got, {("rt", 0): (-1, -1, "", 0)})

    expect("LeaveGroup v3", leave_v3(c, "g", [mid, "ghost"]), (0, {mid: 0, "ghost": 25}))
    d = describe(c, 0, ["g"])
    expect("DescribeGroups after leave", (d["g"][1], len(d["g"][4])), ("Empty", 0))
    expect("Heartbeat after leave", heartbeat(c, 1, "g", 2, mid), 25)
    expect("OffsetCommit simple on the Empty group",
           commit(c, 2, "g", -1, "", [("rt", 0, 30, None)]), {("rt", 0): 0})
    expect("OffsetCommit simple creates a group",
           commit(c, 5, "simple", -1, "", [("rt", 0, 3, None)]), {("rt", 0): 0})
    expect("ListGroups v0", list_groups(c, 0), (0, {"g": "consumer", "simple": ""}))

    # kafka-python style JoinGroup v2: no MEMBER_ID_REQUIRED
    j = join(c, 2, "g", protos=(("range", meta),))
    expect("JoinGroup v2 new member", (j["error"], j["generation"], j["leader"] == j["member"]),
           (0, 3, True))

    # __consumer_offsets: internal, hidden, not producible
    s = b.connect()
    md = it.metadata(s, 1, 1, None)
    if "__consumer_offsets" in md["topics"]:
        fail("Metadata all-topics lists __consumer_offsets")
    md = it.metadata(s, 1, 2, ["__consumer_offsets"])
    err, parts = md["topics"]["__consumer_offsets"]
    expect("Metadata __consumer_offsets by name", (err, len(parts)), (0, 50))
    s.sendall(it.request(3, 1, 3, struct.pack(">i", 1) + kstr("__consumer_offsets")))
    body = it.read_response(s)[4:]
    r = Rd(body)
    for _ in range(r.i32()):  # brokers
        r.i32(), r.string(), r.i32(), r.string()
    r.i32()  # controller
    r.i32()  # topics (1)
    r.i16(), r.string()
    expect("Metadata is_internal", r.i8(), 1)
    s.close()
    pc = Conn(b.port)
    expect("Produce to __consumer_offsets",
           it.produce(pc, "__consumer_offsets", 0, it.batch([b"x"]))[0], 17)
    pc.close()
    c.close()


# ---- static membership (raw: kafka-python 2.0.2 has no group.instance.id) ---------------

def subscription_v1(topics, owned):
    """ConsumerProtocolSubscription v1: v0 + owned partitions {topic: [partitions]}."""
    body = struct.pack(">h", 1) + struct.pack(">i", len(topics)) + b"".join(
        kstr(t) for t in topics) + struct.pack(">i", -1) + struct.pack(">i", len(owned))
    for t, ps in owned.items():
        body += kstr(t) + struct.pack(">i", len(ps)) + b"".join(struct.pack(">i", p) for p in ps)
    return body


def rebalance_two(ca, cb, group, a_kw, b_kw):
    """Both members (re)join in one generation: cb's JoinGroup parks, ca's completes it."""
    corr = join_send(cb, 5, group, **b_kw)
    time.sleep(0.2)  # cb's join reaches the broker first (either order completes the phase)
    ja = join(ca, 5, group, **a_kw)
    jb = join_recv(cb, 5, corr)
    return ja, jb


def mode_static(b):
    create_topic(b, "st", 4)
    meta = subscription(["st"])
    P = (("range", meta),)
    ca, cb = Conn(b.port), Conn(b.port)

    # i1 joins: static members get no MEMBER_ID_REQUIRED
    ja = join(ca, 5, "gst", instance="i1", protos=P)
    expect("static JoinGroup v5 (no MEMBER_ID_REQUIRED)", (ja["error"], ja["generation"]), (0, 1))
    a1 = ja["member"]
    expect("SyncGroup i1 alone", sync(ca, 3, "gst", 1, a1, [(a1, b"all")], instance="i1"),
           (0, b"all"))
    # i2 joins: a rebalance to generation 2, i1 stays leader
    ja, jb = rebalance_two(ca, cb, "gst", dict(member=a1, instance="i1", protos=P),
                           dict(instance="i2", protos=P))
    a1, b1 = ja["member"], jb["member"]
    expect("generation 2 with both", (ja["error"], jb["error"], ja["generation"], jb["generation"],
                                      ja["leader"], jb["leader"]), (0, 0, 2, 2, a1, a1))
    asg_a, asg_b = assignment({"st": [0, 1]}), assignment({"st": [2, 3]})
    corr = cb.send(14, 3, kstr("gst") + struct.pack(">i", 2) + kstr(b1) + nstr("i2") +
                   struct.pack(">i", 0))
    expect("leader SyncGroup", sync(ca, 3, "gst", 2, a1, [(a1, asg_a), (b1, asg_b)],
                                    instance="i1"), (0, asg_a))
    rc, body = cb.recv()
    r = Rd(body)
    r.i32()
    expect("follower SyncGroup", (rc, r.i16(), r.take(r.i32())), (corr, 0, asg_b))
    d = describe(ca, 4, ["gst"])["gst"]
    expect("DescribeGroups v4 lists the instance ids", sorted(m[5] for m in d[4]), ["i1", "i2"])

    # i2 "restarts": a new connection, empty member id, same subscription (as v1 with
    # different owned partitions: only the topics count)
    cb.close()
    cb = Conn(b.port)
    jb = join(cb, 5, "gst", instance="i2",
              protos=(("range", subscription_v1(["st"], {})),))
    b2 = jb["member"]
    expect("static rejoin, same topics: no rebalance",
           (jb["error"], jb["generation"], jb["protocol"], jb["leader"], jb["members"],
            b2 != b1), (0, 2, "range", a1, [], True))
    expect("the group stayed Stable", describe(ca, 0, ["gst"])["gst"][1], "Stable")
    expect("rejoined i2 gets its old assignment",
           sync(cb, 3, "gst", 2, b2, instance="i2"), (0, asg_b))
    expect("leader heartbeat: still generation 2", heartbeat(ca, 3, "gst", 2, a1, "i1"), 0)
    expect("new i2 id heartbeat", heartbeat(cb, 3, "gst", 2, b2, "i2"), 0)
    # the old id is fenced
    expect("old member id + instance: Heartbeat 82", heartbeat(cb, 3, "gst", 2, b1, "i2"), 82)
    expect("old member id + instance: SyncGroup 82", sync(cb, 3, "gst", 2, b1, instance="i2")[0],
           82)
    expect("old member id + instance: OffsetCommit 82",
           commit(cb, 7, "gst", 2, b1, [("st", 2, 1, None)], instance="i2"), {("st", 2): 82})
    expect("old member id + instance: JoinGroup 82",
           join(cb, 5, "gst", member=b1, instance="i2", protos=P)["error"], 82)
    expect("old member id without instance: Heartbeat 25", heartbeat(cb, 2, "gst", 2, b1), 25)
    expect("new id commits", commit(cb, 7, "gst", 2, b2, [("st", 2, 5, None)], instance="i2"),
           {("st", 2): 0})

    # the leader restarts the same way: still no rebalance, and the old leader id is
    # answered so the new one does not run an assignment a Stable group would not hand out
    ca.close()
    ca = Conn(b.port)
    ja = join(ca, 5, "gst", instance="i1", protos=P)
    a2 = ja["member"]
    expect("static leader rejoin: no rebalance, old leader id answered",
           (ja["error"], ja["generation"], ja["leader"], ja["members"], a2 != a1),
           (0, 2, a1, [], True))
    expect("leader's assignment kept", sync(ca, 3, "gst", 2, a2, instance="i1"), (0, asg_a))
    expect("old leader id fenced", heartbeat(ca, 3, "gst", 2, a1, "i1"), 82)
    expect("still Stable", describe(ca, 0, ["gst"])["gst"][1], "Stable")

    # i2 restarts with another subscription: that rebalances
    cb.close()
    cb = Conn(b.port)
    P2 = (("range", subscription(["st", "st2"])),)
    corr = join_send(cb, 5, "gst", instance="i2", protos=P2)
    wait_for("changed subscription: the leader is told to rejoin (27)",
             lambda: heartbeat(ca, 3, "gst", 2, a2, "i1") == 27, timeout=10)
    ja = join(ca, 5, "gst", member=a2, instance="i1", protos=P)
    jb = join_recv(cb, 5, corr)
    expect("changed subscription: generation 3", (ja["error"], jb["error"], ja["generation"],
                                                   jb["generation"], ja["leader"]),
           (0, 0, 3, 3, a2))
    b3 = jb["member"]
    corr = cb.send(14, 3, kstr("gst") + struct.pack(">i", 3) + kstr(b3) + nstr("i2") +
                   struct.pack(">i", 0))
    expect("leader SyncGroup gen 3", sync(ca, 3, "gst", 3, a2, [(a2, asg_a), (b3, asg_b)],
                                          instance="i1")[0], 0)
    cb.recv()

    # LeaveGroup v3 by instance id
    expect("LeaveGroup v3: unknown instance / instance with another member id",
           leave_v3(ca, "gst", [("", "nobody"), ("wrong-id", "i2")]),
           (0, {"nobody": 25, "i2": 82}))
    expect("LeaveGroup v3 by instance id (member id empty)",
           leave_v3(ca, "gst", [("", "i2")]), (0, {"i2": 0}))
    expect("i1's heartbeat after i2 left", heartbeat(ca, 3, "gst", 3, a2, "i1"), 27)
    ja = join(ca, 5, "gst", member=a2, instance="i1", session=3000, rebalance=1500, protos=P)
    expect("i1 alone: generation 4", (ja["error"], ja["generation"], len(ja["members"])), (0, 4, 1))
    expect("SyncGroup gen 4", sync(ca, 3, "gst", 4, a2, [(a2, b"x")], instance="i1")[0], 0)
    cb.close()

    # i1 stops without LeaveGroup; a dynamic member joins. After the 1.5 s rebalance
    # timeout the generation completes without i1, which stays (static) until its 3 s
    # session timeout; the dynamic member leads since i1 did not rejoin
    ca.close()
    cd = Conn(b.port)
    jd = join(cd, 1, "gst", session=6000, rebalance=1500, protos=P)
    d1 = jd["member"]
    expect("generation 5 completed without i1 rejoining, i1 kept, the joined member leads",
           (jd["error"], jd["generation"], jd["leader"], sorted(m for m, _ in jd["members"])),
           (0, 5, d1, sorted([a2, d1])))
    expect("SyncGroup gen 5", sync(cd, 1, "gst", 5, d1, [(d1, asg_a), (a2, asg_b)])[0], 0)
    d = describe(cd, 4, ["gst"])["gst"]
    expect("Stable with the silent static member", (d[1], sorted(str(m[5]) for m in d[4])),
           ("Stable", ["None", "i1"]))

    def hb():
        e = heartbeat(cd, 1, "gst", 5, d1)
        if e not in (0, 27):
            fail("heartbeat: %d" % e)
        return e == 27
    wait_for("i1 removed at its session timeout (rebalance)", hb, timeout=20)
    if "missed its 3000 ms session timeout" not in b.read_log():
        fail("no session-timeout removal of i1 in the broker log")
    jd = join(cd, 1, "gst", member=d1, session=6000, rebalance=1500, protos=P)
    expect("generation 6: the dynamic member alone", (jd["error"], jd["generation"],
                                                       len(jd["members"])), (0, 6, 1))
    cd.close()


# ---- DeleteGroups, OffsetDelete, group.max.size ---------------------------------------

def mode_delete(b):
    create_topic(b, "dt", 2)
    create_topic(b, "dt2", 1)
    c = Conn(b.port)
    meta = subscription(["dt"])
    P = (("range", meta),)
    # gd1, gd2: commit-only (Empty) groups; gm: a consumer group with one member
    for g in ("gd1", "gd2"):
        expect("commit %s" % g, commit(c, 2, g, -1, "", [("dt", 0, 3, None), ("dt2", 0, 4, None)]),
               {("dt", 0): 0, ("dt2", 0): 0})
    mid = join(c, 1, "gm", protos=P)["member"]
    expect("gm SyncGroup", sync(c, 1, "gm", 1, mid, [(mid, assignment({"dt": [0, 1]}))])[0], 0)
    expect("gm commits dt and dt2", commit(c, 7, "gm", 1, mid, [("dt", 0, 5, None),
                                                                 ("dt", 1, 6, None),
                                                                 ("dt2", 0, 7, None)]),
           {("dt", 0): 0, ("dt", 1): 0, ("dt2", 0): 0})

    # DeleteGroups v0 / v1
    expect("DeleteGroups v0", delete_groups(c, 0, ["gd1", "nope", "gm", ""]),
           [("gd1", 0), ("nope", 69), ("gm", 68), ("", 24)])
    expect("gd1's offsets gone", offset_fetch(c, 1, "gd1", {"dt": [0], "dt2": [0]})[0],
           {("dt", 0): (-1, -1, "", 0), ("dt2", 0): (-1, -1, "", 0)})
    expect("gd1 left ListGroups", sorted(list_groups(c, 0)[1]), ["gd2", "gm"])
    expect("DeleteGroups v1 again", delete_groups(c, 1, ["gd1"]), [("gd1", 69)])

    # OffsetDelete v0
    expect("OffsetDelete unknown group", offset_delete(c, "nope", {"dt": [0]}), (69, {}))
    expect("OffsetDelete empty group id", offset_delete(c, "", {"dt": [0]}), (24, {}))
    expect("OffsetDelete on a Stable group: subscribed topic refused, other deleted, "
           "unknown partition/topic 3",
           offset_delete(c, "gm", {"dt": [0, 9], "dt2": [0], "ghost": [0]}),
           (0, {("dt", 0): 86, ("dt", 9): 3, ("dt2", 0): 0, ("ghost", 0): 3}))
    got = offset_fetch(c, 1, "gm", {"dt": [0, 1], "dt2": [0]})[0]
    expect("gm keeps dt, loses dt2", {k: v[0] for k, v in got.items()},
           {("dt", 0): 5, ("dt", 1): 6, ("dt2", 0): -1})
    # another protocol type with members: NON_EMPTY_GROUP
    cx = Conn(b.port)
    jx = join(cx, 1, "gx", ptype="connect", protos=(("default", b"x"),))
    expect("gx (connect) joined", jx["error"], 0)
    expect("OffsetDelete on a non-consumer group with members", offset_delete(c, "gx", {"dt": [0]}),
           (68, {}))
    cx.close()

    # kafka-python's admin client (DeleteGroups v1): gm still has its member -> 68
    try:
        import kafka
        from kafka.admin import KafkaAdminClient
    except ImportError:
        kafka = None
        ok("kafka-python not installed: KafkaAdminClient.delete_consumer_groups not run")
    if kafka:
        adm = KafkaAdminClient(bootstrap_servers=b.addr, request_timeout_ms=15000)
        res = {g: e.errno for g, e in adm.delete_consumer_groups(["gd2", "gm"])}
        expect("KafkaAdminClient.delete_consumer_groups", res, {"gd2": 0, "gm": 68})
        adm.close()
    else:
        expect("DeleteGroups gd2", delete_groups(c, 1, ["gd2"]), [("gd2", 0)])

    # gm's member leaves: now OffsetDelete removes anything; the last offset takes the
    # group with it
    expect("gm member leaves", leave_v3(c, "gm", [mid]), (0, {mid: 0}))
    expect("OffsetDelete on the Empty gm", offset_delete(c, "gm", {"dt": [0]}),
           (0, {("dt", 0): 0}))
    expect("gm still listed (dt-1 left)", "gm" in list_groups(c, 0)[1], True)
    expect("OffsetDelete gm's last offset", offset_delete(c, "gm", {"dt": [1]}),
           (0, {("dt", 1): 0}))
    expect("gm gone with its last offset", sorted(list_groups(c, 0)[1]), ["gx"])
    expect("commit gk", commit(c, 2, "gk", -1, "", [("dt", 1, 9, None)]), {("dt", 1): 0})
    c.close()

    # tombstones survive a restart: only gk's offset is loaded
    b.kill()
    b.start()
    if "loaded 1 committed offset(s) of 1 group(s)" not in b.read_log():
        fail("after the restart the deleted offsets came back (want only gk's)")
    c = Conn(b.port)
    expect("ListGroups after restart", sorted(list_groups(c, 0)[1]), ["gk"])
    for g, t, p in (("gd1", "dt", 0), ("gd2", "dt2", 0), ("gm", "dt2", 0), ("gm", "dt", 0)):
        expect("%s %s-%d still deleted" % (g, t, p),
               offset_fetch(c, 1, g, {t: [p]})[0][(t, p)][0], -1)

    # group.max.size=2 (this mode's broker), Kafka's acceptJoiningMember rules
    ms = [Conn(b.port) for _ in range(4)]
    j1 = join(ms[0], 1, "gmax", protos=P)
    m1 = j1["member"]
    expect("gmax m1 alone", sync(ms[0], 1, "gmax", 1, m1, [(m1, b"a")])[0], 0)
    corr = join_send(ms[1], 1, "gmax", protos=P)
    time.sleep(0.2)
    j1 = join(ms[0], 1, "gmax", member=m1, protos=P)
    j2 = join_recv(ms[1], 1, corr)
    m2 = j2["member"]
    expect("two members in generation 2", (j1["error"], j2["error"], j1["generation"],
                                           len(j1["members"])), (0, 0, 2, 2))
    corr = ms[1].send(14, 1, kstr("gmax") + struct.pack(">i", 2) + kstr(m2) + struct.pack(">i", 0))
    expect("gmax leader sync", sync(ms[0], 1, "gmax", 2, m1, [(m1, b"a"), (m2, b"b")])[0], 0)
    ms[1].recv()
    expect("a third member of the Stable group: 81", join(ms[2], 1, "gmax", protos=P)["error"], 81)
    expect("JoinGroup v5 over the limit: 81 before any MEMBER_ID_REQUIRED",
           join(ms[3], 5, "gmax", protos=P)["error"], 81)
    expect("the group is untouched", (describe(c, 0, ["gmax"])["gmax"][1],
                                      heartbeat(ms[0], 1, "gmax", 2, m1)), ("Stable", 0))
    # PreparingRebalance counts the members that rejoined: the leader rejoins, a new
    # member gets in (1 rejoined < 2), and m2, rejoining last, is the one refused
    corr1 = join_send(ms[0], 1, "gmax", member=m1, protos=P)
    wait_for("gmax rebalancing after the leader's rejoin",
             lambda: describe(c, 0, ["gmax"])["gmax"][1] == "PreparingRebalance", timeout=10)
    corr3 = join_send(ms[2], 1, "gmax", protos=P)
    wait_for("the new member in (3 members, 2 rejoined)",
             lambda: len(describe(c, 0, ["gmax"])["gmax"][4]) == 3, timeout=10)
    expect("m2 rejoining third: 81", join(ms[1], 1, "gmax", member=m2, protos=P)["error"], 81)
    j1, j3 = join_recv(ms[0], 1, corr1), join_recv(ms[2], 1, corr3)
    expect("generation 3: m1 and the new member", (j1["error"], j3["error"], j1["generation"],
                                                   sorted(m for m, _ in j1["members"])),
           (0, 0, 3, sorted([m1, j3["member"]])))
    for m in ms:
        m.close()
    c.close()


# ---- kafka-python ---------------------------------------------------------------------

def kafka_python():
    try:
        import kafka  # noqa: F401
    except ImportError:
        it.skip("kafka-python (python3-kafka) not installed")
    import kafka
    return kafka


def consumer(kafka, b, group, **kw):
    args = dict(bootstrap_servers=b.addr, group_id=group, session_timeout_ms=3000,
                heartbeat_interval_ms=300, max_poll_interval_ms=10000,
                auto_offset_reset="earliest", enable_auto_commit=False,
                request_timeout_ms=15000, consumer_timeout_ms=200)
    args.update(kw)
    return kafka.KafkaConsumer(**args)


class Poller(threading.Thread):
    """Polls one consumer until stopped, recording its assignment and records."""

    def __init__(self, c):
        super().__init__(daemon=True)
        self.c, self.stop_ev = c, threading.Event()
        self.assigned, self.records, self.error = set(), [], None

    def run(self):
        try:
            while not self.stop_ev.is_set():
                for tp, recs in self.c.poll(timeout_ms=100).items():
                    self.records += [(tp.partition, r.offset, r.value) for r in recs]
                self.assigned = {tp.partition for tp in self.c.assignment()}
        except Exception as e:  # reported by the main thread
            self.error = e

    def stop(self):
        self.stop_ev.set()
        self.join(30)


def wait_for(what, cond, timeout=40):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            ok(what)
            return
        time.sleep(0.1)
    fail("timed out waiting for: %s" % what)


def produce_n(b, topic, parts, n, start=0):
    c = Conn(b.port)
    for p in range(parts):
        vals = [b"v%d" % i for i in range(start, start + n) if i % parts == p]
        if vals:
            err = it.produce(c, topic, p, it.batch(vals))[0]
            if err:
                fail("produce to %s-%d: %d" % (topic, p, err))
    c.close()


def mode_split(b):
    kafka = kafka_python()
    create_topic(b, "split", 4)
    produce_n(b, "split", 4, 40)
    c1 = consumer(kafka, b, "gs")
    c1.subscribe(["split"])
    p1 = Poller(c1)
    p1.start()
    wait_for("first consumer owns all 4 partitions", lambda: p1.assigned == {0, 1, 2, 3})
    c2 = consumer(kafka, b, "gs")
    c2.subscribe(["split"])
    p2 = Poller(c2)
    p2.start()
    wait_for("two consumers split the partitions 2/2",
             lambda: len(p1.assigned) == 2 and len(p2.assigned) == 2 and
             p1.assigned | p2.assigned == {0, 1, 2, 3})
    wait_for("every record consumed once between them",
             lambda: len({(p, o) for p, o, _ in p1.records + p2.records}) == 40)
    p2.stop()
    c2.close()  # LeaveGroup
    wait_for("after one closes the other owns all 4", lambda: p1.assigned == {0, 1, 2, 3})
    p1.stop()
    c1.close()
    for p in (p1, p2):
        if p.error:
            fail("consumer thread: %r" % p.error)


def mode_restart(b):
    kafka = kafka_python()
    create_topic(b, "rs", 4)
    produce_n(b, "rs", 4, 200)
    c = consumer(kafka, b, "gr")
    c.subscribe(["rs"])
    first = []
    deadline = time.time() + 40
    while len(first) < 100 and time.time() < deadline:
        for tp, recs in c.poll(timeout_ms=200, max_records=25).items():
            first += [(tp.partition, r.offset, r.value) for r in recs]
    if len(first) < 100:
        fail("consumed only %d records before the commit" % len(first))
    c.commit()  # positions = everything returned so far
    committed = {p: c.committed(kafka.TopicPartition("rs", p)) for p in range(4)}
    ok("committed after %d records: %s" % (len(first), committed))
    c.close()

    b.kill()
    b.start()
    ok("stratad SIGKILLed and restarted")
    log = b.read_log()
    if "loaded 4 committed offset(s) of 1 group(s)" not in log:
        fail("the restart did not report loading the 4 offsets")
    produce_n(b, "rs", 4, 100, start=200)

    c = consumer(kafka, b, "gr")
    c.subscribe(["rs"])
    p = Poller(c)
    p.start()
    wait_for("after the restart the consumer resumes and reaches the end",
             lambda: len(first) + len(p.records) >= 300, timeout=60)
    time.sleep(0.5)
    p.stop()
    got = {p2: c.committed(kafka.TopicPartition("rs", p2)) for p2 in range(4)}
    c.close()
    expect("committed offsets survived the restart", got, committed)
    both = first + p.records
    keys = [(x[0], x[1]) for x in both]
    if len(keys) != len(set(keys)):
        fail("duplicates across the restart: %d records, %d distinct" % (len(keys), len(set(keys))))
    values = sorted(x[2] for x in both)
    expect("every record exactly once", values, sorted(b"v%d" % i for i in range(300)))

    # the commits are Kafka-format records in __consumer_offsets
    h = 0
    for ch in "gr":
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= 1 << 31 else h
    part = abs(h) % 50
    conn = Conn(b.port)
    recs = [r for bb in [x for _, x in it.read_all_batches(conn, "__consumer_offsets", part)]
            for r in it.batch_records(bb)]
    conn.close()
    last = {}
    for r in recs:
        k = Rd(r["key"])
        if struct.unpack(">h", r["key"][:2])[0] == 2:  # GroupMetadata (membership)
            kv, grp = k.i16(), k.string()
            if grp != "gr":
                fail("GroupMetadata record of group %r" % grp)
            continue
        kv, grp, top, pn = k.i16(), k.string(), k.string(), k.i32()
        v = Rd(r["value"])
        vv, off = v.i16(), v.i64()
        if (kv, grp, top, vv) != (1, "gr", "rs", 3):
            fail("unexpected offsets record %r" % ((kv, grp, top, vv),))
        last[pn] = off
    expect("__consumer_offsets-%d holds the commits (key v1, value v3)" % part, last, got)


def mode_evict(b):
    kafka = kafka_python()
    create_topic(b, "ev", 4)
    c1 = consumer(kafka, b, "ge")
    c1.subscribe(["ev"])
    p1 = Poller(c1)
    p1.start()
    wait_for("consumer owns all 4 partitions", lambda: p1.assigned == {0, 1, 2, 3})

    # a raw member joins (v1: no MEMBER_ID_REQUIRED) and then says nothing more
    raw = Conn(b.port, timeout=40)
    j = join(raw, 1, "ge", session=2000, rebalance=10000,
             protos=(("range", subscription(["ev"])),))
    if j["error"]:
        fail("raw JoinGroup: %d" % j["error"])
    ok("raw member %s joined generation %d (leader %s)" % (j["member"], j["generation"],
                                                             j["leader"]))
    wait_for("partitions split with the silent member", lambda: len(p1.assigned) == 2)
    t0 = time.time()
    wait_for("silent member evicted; consumer owns all 4 again",
             lambda: p1.assigned == {0, 1, 2, 3})
    ok("reassigned %.1f s after the split (session timeout 2 s)" % (time.time() - t0))
    if "missed its 2000 ms session timeout" not in b.read_log():
        fail("no eviction in the broker log")
    raw.close()
    p1.stop()
    c1.close()
    if p1.error:
        fail("consumer thread: %r" % p1.error)


def mode_kcat(b):
    if not shutil.which("kcat"):
        it.skip("kcat not installed")
    create_topic(b, "kc", 4)
    produce_n(b, "kc", 4, 100)
    args = ["-G", "gk", "kc", "-e", "-q", "-f", "%s\\n", "-X", "session.timeout.ms=6000",
            "-X", "auto.offset.reset=earliest"]
    out = it.kcat(b, args, timeout=60).decode().split()
    expect("kcat -G reads every record", sorted(out), sorted("v%d" % i for i in range(100)))
    produce_n(b, "kc", 4, 20, start=100)
    out = it.kcat(b, args, timeout=60).decode().split()
    expect("kcat -G again resumes from its commits", sorted(out),
           sorted("v%d" % i for i in range(100, 120)))


def mode_internal(b):
    import test_broker_admin as adm
    c = adm.Client(b)
    co = "__consumer_offsets"
    for v in range(4):
        expect("DeleteTopics v%d %s" % (v, co), adm.delete_topics(c, v, [co]), {co: 17})
    for v in range(2):
        expect("CreatePartitions v%d %s" % (v, co),
               adm.create_partitions(c, v, [(co, 60, None)]), {co: 17})
    for v in range(2):
        for cfg in ({"cleanup.policy": "delete"}, {"cleanup.policy": "compact,delete"},
                    {"segment.bytes": "104857600"}, {}):
            expect("AlterConfigs v%d %s %r" % (v, co, cfg),
                   adm.alter_configs(c, v, [(2, co, cfg)]), {(2, co): 40})
    keep = {"cleanup.policy": "compact", "segment.bytes": "52428800"}
    expect("AlterConfigs %s keeping compact" % co, adm.alter_configs(c, 1, [(2, co, keep)]),
           {(2, co): 0})
    err, _, _, cfg = adm.describe_configs(c, 0, [(2, co, ["cleanup.policy", "segment.bytes"])])[0]
    expect("DescribeConfigs %s" % co, (err, cfg["cleanup.policy"][0], cfg["segment.bytes"][0]),
           (0, "compact", "52428800"))
    md = it.metadata(b.connect(), 1, 1, [co])
    expect("%s still there" % co, (md["topics"][co][0], len(md["topics"][co][1])), (0, 50))

    # retention follows cleanup.policy
    tiny = {"retention.ms": "1", "retention.bytes": "1", "segment.bytes": "100"}
    topics = {"ret-c": "compact", "ret-d": "delete", "ret-cd": "compact,delete"}
    expect("create retention topics",
           adm.create_topics(c, 1, [(t, 1, 1, dict(tiny, **{"cleanup.policy": pol}))
                                    for t, pol in topics.items()]),
           {t: 0 for t in topics})
    pc = Conn(b.port)
    expect("commit after the refusals", commit(pc, 2, "gi", -1, "", [("ret-c", 0, 1, "")]),
           {("ret-c", 0): 0})
    for t in topics:
        for i in range(5):
            # keyed: a compacted topic refuses keyless records (Kafka's LogValidator)
            expect("produce %s #%d" % (t, i),
                   it.produce(pc, t, 0, it.batch([b"x" * 10], keys=[b"k%d" % i]))[0], 0)
    deadline = time.time() + 10
    while time.time() < deadline:
        starts = {t: it.list_offsets(pc, t, 0, -2)[2] for t in topics}
        if starts["ret-d"] > 0 and starts["ret-cd"] > 0:
            break
        time.sleep(0.1)
    time.sleep(0.5)  # a few more retention checks
    starts = {t: it.list_offsets(pc, t, 0, -2)[2] for t in topics}
    if not (starts["ret-d"] > 0 and starts["ret-cd"] > 0):
        fail("retention did not run on the delete topics: %r" % starts)
    expect("compact topic keeps every segment", starts["ret-c"], 0)
    expect("compact topic records", len(it.read_all(pc, "ret-c", 0)), 5)
    pc.close()
    c.close()


def wait_until(what, cond, timeout):
    """Like wait_for, returning the time cond first held."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return time.time()
        time.sleep(0.1)
    fail("timed out waiting for %s" % what)


def mode_expire(b):
    create_topic(b, "ex", 2)
    create_topic(b, "old", 1)
    c = Conn(b.port)
    expect("commit v2 with a 500 ms retention", commit(c, 2, "gx", -1, "", [("ex", 0, 5, "m")],
                                                      retention=500), {("ex", 0): 0})
    expect("plain commit v7", commit(c, 7, "gy", -1, "", [("ex", 1, 7, None)]), {("ex", 1): 0})
    t_gy = time.time()
    expect("OffsetFetch gx before expiry", offset_fetch(c, 1, "gx", {"ex": [0]})[0][("ex", 0)][0], 5)
    expect("ListGroups before expiry", sorted(list_groups(c, 0)[1]), ["gx", "gy"])
    wait_until("gx's offset to expire",
             lambda: offset_fetch(c, 1, "gx", {"ex": [0]})[0][("ex", 0)][0] == -1, 10)
    wait_until("gx to leave ListGroups", lambda: "gx" not in list_groups(c, 0)[1], 5)
    expect("gy kept", offset_fetch(c, 1, "gy", {"ex": [1]})[0][("ex", 1)][0], 7)
    c.close()
    b.kill()
    b.start()
    log = b.read_log()
    if "loaded 1 committed offset(s) of 1 group(s)" not in log:
        fail("the restart did not load exactly gy's offset (gx's tombstone replayed)")
    c = Conn(b.port)
    expect("gx still gone after restart", offset_fetch(c, 1, "gx", {"ex": [0]})[0][("ex", 0)][0], -1)
    expect("ListGroups after restart", sorted(list_groups(c, 0)[1]), ["gy"])

    # a Stable consumer group (one member, 120 s session: no heartbeats needed) that
    # subscribes to ex and still has a commit for old, which it no longer reads: old's
    # offset expires 60 s after its commit while the group stays Stable; ex's never
    meta = subscription(["ex"])
    cs = Conn(b.port)
    sm = join(cs, 1, "gs", session=120000, rebalance=10000, protos=(("range", meta),))["member"]
    expect("SyncGroup gs", sync(cs, 1, "gs", 1, sm, [(sm, assignment({"ex": [0, 1]}))])[0], 0)
    expect("commit gs", commit(cs, 7, "gs", 1, sm, [("ex", 0, 21, None), ("old", 0, 22, None)]),
           {("ex", 0): 0, ("old", 0): 0})
    t_s = time.time()

    def gs_old():
        return offset_fetch(c, 1, "gs", {"old": [0]})[0][("old", 0)][0]

    # a consumer group: commit at t0, members stay 5 s, leave at t1
    j = join(c, 5, "gz", protos=(("range", meta),))
    mid = join(c, 5, "gz", member=j["member"], protos=(("range", meta),))["member"]
    expect("SyncGroup gz", sync(c, 3, "gz", 1, mid, [(mid, assignment({"ex": [0, 1]}))])[0], 0)
    expect("commit gz", commit(c, 7, "gz", 1, mid, [("ex", 0, 11, None)]), {("ex", 0): 0})
    t0 = time.time()
    while time.time() < t0 + 5:
        expect("Heartbeat gz", heartbeat(c, 3, "gz", 1, mid), 0)
        time.sleep(0.5)
    top, res = leave_v3(c, "gz", [mid])
    t1 = time.time()
    expect("gz left", (top, describe(c, 0, ["gz"])["gz"][1]), (0, "Empty"))
    # gy was committed before the restart: 60 s from its commit (it never had members)
    wait_until("gy to expire", lambda: "gy" not in list_groups(c, 0)[1], t_gy + 62 - time.time())
    ok("gy expired %.1f s after its commit" % (time.time() - t_gy))
    t_old = None
    while time.time() < t0 + 61:
        if t_old is None and gs_old() == -1:
            t_old = time.time()
        time.sleep(0.2)
    if t_old is None:
        t_old = wait_until("gs's offset of old to expire", lambda: gs_old() == -1, 5)
    if t_old < t_s + 59.5:
        fail("gs's offset of old expired %.1f s after its commit" % (t_old - t_s))
    ok("Stable gs: the offset of old (not subscribed) expired %.1f s after its commit" %
       (t_old - t_s))
    expect("gs keeps ex (subscribed) and stays Stable",
           (offset_fetch(c, 1, "gs", {"ex": [0]})[0][("ex", 0)][0],
            describe(c, 0, ["gs"])["gs"][1]), (21, "Stable"))
    expect("gz offset 61 s after the commit (Empty for 56 s)",
           offset_fetch(c, 1, "gz", {"ex": [0]})[0][("ex", 0)][0], 11)
    t = wait_until("gz's offset to expire",
                 lambda: offset_fetch(c, 1, "gz", {"ex": [0]})[0][("ex", 0)][0] == -1,
                 t1 + 63 - time.time())
    if t < t1 + 59.5:
        fail("gz's offset expired %.1f s after the group became Empty" % (t - t1))
    ok("gz's offset expired %.1f s after the group became Empty" % (t - t1))
    wait_until("gz to leave ListGroups", lambda: "gz" not in list_groups(c, 0)[1], 5)
    if "1 committed offset(s) expired (topics the group no longer subscribes to)" not in \
            b.read_log():
        fail("no Stable-group expiry in the broker log")
    cs.close()
    c.close()


MODES = {"raw": mode_raw, "split": mode_split, "restart": mode_restart, "evict": mode_evict,
         "kcat": mode_kcat, "internal": mode_internal, "expire": mode_expire,
         "static": mode_static, "delete": mode_delete}
EXTRA = {"internal": {"log.retention.check.interval.ms": 100},
         "delete": {"group.max.size": 2},
         "expire": {"offsets.retention.minutes": 1, "offsets.retention.check.interval.ms": 200}}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in MODES:
        print(__doc__)
        return 2
    exe, mode = it.stratad_arg(__doc__), sys.argv[2]

    def body(tmp):
        b = it.Broker(exe, tmp, overrides=dict(OVERRIDES, **EXTRA.get(mode, {})))
        MODES[mode](b)
        b.stop_ok()
    it.run("strata-groups-", body, keep_tmp_on_fail=True)
    print("PASS: %s" % mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
