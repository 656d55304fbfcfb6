#!/usr/bin/python3
"""Integration test: the admin APIs and the persistent metadata store.

usage: test_broker_admin.py STRATAD

Starts STRATAD on a free loopback port with its own data directory and
drives CreateTopics v0-4, DeleteTopics v0-3, CreatePartitions v0-1,
DescribeConfigs v0-2, AlterConfigs v0-1 and InitProducerId v0-1 over raw
sockets, checking every error code the handlers return. Then checks that
topics, partition counts, configs, the cluster id and producer-id uniqueness
survive a SIGTERM restart and a kill -9 restart, that a malformed admin
request changes nothing, and that a corrupt metadata file stops the broker
with a message naming the file.

Python stdlib only. Exit 0 = pass, 1 = fail.
"""
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402
from strata_it import EXPECTED_APIS, Rd, expect, fail, kstr, ok, read_response, request  # noqa: E402

META_FILE = "__cluster_metadata.bin"
NULL_STR = struct.pack(">h", -1)


def i8(v): return struct.pack(">b", v)
def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def boolean(v): return b"\x01" if v else b"\x00"
def nstr(s): return NULL_STR if s is None else kstr(s)


def arr(items):
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(items)


class Client:
    def __init__(self, broker):
        self.s = broker.connect()
        self.corr = 100

    def call(self, key, ver, body):
        self.corr += 1
        self.s.sendall(request(key, ver, self.corr, body))
        r = Rd(read_response(self.s))
        if r.i32() != self.corr:
            fail("api %d v%d: correlation id mismatch" % (key, ver))
        return r

    def close(self):
        self.s.close()


# ---- request encoders / response decoders ----------------------------------------

def create_topics(c, v, topics, validate_only=False):
    """topics: list of (name, partitions, rf, configs dict, assignments list|None)."""
    body = b""
    for t in topics:
        name, parts, rf = t[0], t[1], t[2]
        configs = t[3] if len(t) > 3 else {}
        assign = t[4] if len(t) > 4 else []
        body_t = kstr(name) + i32(parts) + i16(rf)
        body_t += arr([i32(p) + arr([i32(b) for b in brokers]) for p, brokers in assign])
        body_t += arr([kstr(k) + nstr(val) for k, val in configs.items()])
        body += body_t
    body = i32(len(topics)) + body + i32(5000)
    if v >= 1:
        body += boolean(validate_only)
    r = c.call(19, v, body)
    if v >= 2 and r.i32() != 0:
        fail("CreateTopics throttle")
    out = {}
    for _ in range(r.i32()):
        name, err = r.string(), r.i16()
        msg = r.string() if v >= 1 else None
        if v >= 1 and (err == 0) != (msg is None):
            fail("CreateTopics v%d %s: error %d with message %r" % (v, name, err, msg))
        out.setdefault(name, []).append(err)
    r.done()
    return {k: (e[0] if len(e) == 1 else e) for k, e in out.items()}


def delete_topics(c, v, names):
    r = c.call(20, v, arr([kstr(n) for n in names]) + i32(5000))
    if v >= 1:
        r.i32()
    out = {}
    for _ in range(r.i32()):
        name, err = r.string(), r.i16()
        out[name] = err
    r.done()
    return out


def create_partitions(c, v, topics, validate_only=False):
    """topics: list of (name, count, assignments list-of-broker-lists | None)."""
    body = arr([kstr(n) + i32(cnt) + (arr(None) if a is None else arr([arr([i32(b) for b in bl]) for bl in a]))
                for n, cnt, a in topics]) + i32(5000) + boolean(validate_only)
    r = c.call(37, v, body)
    r.i32()
    out = {}
    for _ in range(r.i32()):
        name, err, msg = r.string(), r.i16(), r.string()
        if (err == 0) != (msg is None):
            fail("CreatePartitions %s: error %d with message %r" % (name, err, msg))
        out.setdefault(name, []).append(err)
    r.done()
    return {k: (e[0] if len(e) == 1 else e) for k, e in out.items()}


def describe_configs(c, v, resources, synonyms=False):
    """resources: list of (type, name, keys list | None). Returns list of
    (err, type, name, {key: (value, read_only, source_or_isdefault, sensitive, synonyms)})."""
    body = arr([i8(t) + kstr(n) + arr(None if keys is None else [kstr(k) for k in keys])
                for t, n, keys in resources])
    if v >= 1:
        body += boolean(synonyms)
    r = c.call(32, v, body)
    r.i32()
    out = []
    for _ in range(r.i32()):
        err, msg, typ, name = r.i16(), r.string(), r.i8(), r.string()
        if (err == 0) != (msg is None):
            fail("DescribeConfigs %s: error %d with message %r" % (name, err, msg))
        configs = {}
        for _ in range(r.i32()):
            key, val, ro = r.string(), r.string(), r.boolean()
            src = r.boolean() if v == 0 else r.i8()
            sens = r.boolean()
            syn = []
            if v >= 1:
                for _ in range(r.i32()):
                    syn.append((r.string(), r.string(), r.i8()))
            configs[key] = (val, ro, src, sens, syn)
        out.append((err, typ, name, configs))
    r.done()
    return out


def alter_configs(c, v, resources, validate_only=False):
    """resources: list of (type, name, {key: value})."""
    body = arr([i8(t) + kstr(n) + arr([kstr(k) + nstr(val) for k, val in cfg.items()])
                for t, n, cfg in resources]) + boolean(validate_only)
    r = c.call(33, v, body)
    r.i32()
    out = {}
    for _ in range(r.i32()):
        err, msg, typ, name = r.i16(), r.string(), r.i8(), r.string()
        if (err == 0) != (msg is None):
            fail("AlterConfigs %s: error %d with message %r" % (name, err, msg))
        out[(typ, name)] = err
    r.done()
    return out


def init_producer_id(c, v, tid=None):
    r = c.call(22, v, nstr(tid) + i32(-1))
    r.i32()
    err, pid, epoch = r.i16(), r.i64(), r.i16()
    r.done()
    return err, pid, epoch


def topics_in_metadata(c):
    c.corr += 1
    m = it.metadata(c.s, 1, c.corr, None)
    return {name: len(parts) for name, (err, parts) in m["topics"].items()}


# ---- checks ---------------------------------------------------------------------


def check_api_versions(c):
    r = c.call(18, 0, b"")
    if r.i16() != 0:
        fail("ApiVersions error")
    apis = {}
    for _ in range(r.i32()):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        apis[k] = (lo, hi)
    expect("ApiVersions advertises the admin APIs", apis, EXPECTED_APIS)


def check_create_topics(c):
    expect("CreateTopics v0 new topic", create_topics(c, 0, [("orders", 3, 1)]), {"orders": 0})
    expect("CreateTopics v1 existing topic -> 36", create_topics(c, 1, [("orders", 3, 1)]),
           {"orders": 36})
    for bad in ["bad/name", "", ".", "..", "a" * 250, "sp ace", "\u00e9"]:
        expect("CreateTopics invalid name %r -> 17" % bad[:20],
               create_topics(c, 2, [(bad, 1, 1)]), {bad: 17})
    long_ok = "L" * 249
    expect("CreateTopics 249-char name", create_topics(c, 2, [(long_ok, 1, 1)]), {long_ok: 0})
    expect("CreateTopics 0 partitions -> 37", create_topics(c, 3, [("p0", 0, 1)]), {"p0": 37})
    expect("CreateTopics -5 partitions -> 37", create_topics(c, 4, [("p0", -5, 1)]), {"p0": 37})
    expect("CreateTopics rf 2 on one node -> 38", create_topics(c, 3, [("rf2", 1, 2)]), {"rf2": 38})
    expect("CreateTopics rf 0 -> 38", create_topics(c, 3, [("rf0", 1, 0)]), {"rf0": 38})
    expect("CreateTopics unknown config -> 40",
           create_topics(c, 3, [("cfg", 1, 1, {"foo.bar": "1"})]), {"cfg": 40})
    expect("CreateTopics bad config value -> 40",
           create_topics(c, 3, [("cfg", 1, 1, {"retention.ms": "soon"})]), {"cfg": 40})
    expect("CreateTopics bad enum value -> 40",
           create_topics(c, 3, [("cfg", 1, 1, {"cleanup.policy": "shred"})]), {"cfg": 40})
    expect("CreateTopics null config value -> 40",
           create_topics(c, 3, [("cfg", 1, 1, {"retention.ms": None})]), {"cfg": 40})
    expect("CreateTopics segment.bytes below minimum -> 40",
           create_topics(c, 3, [("cfg", 1, 1, {"segment.bytes": "13"})]), {"cfg": 40})
    expect("CreateTopics validate_only", create_topics(c, 1, [("dry", 2, 1)], validate_only=True),
           {"dry": 0})
    expect("CreateTopics validate_only still reports errors",
           create_topics(c, 1, [("dry", 2, 3)], validate_only=True), {"dry": 38})
    if "dry" in topics_in_metadata(c):
        fail("validate_only created the topic")
    expect("CreateTopics twice in one request -> 42 for both",
           create_topics(c, 3, [("twice", 1, 1), ("twice", 1, 1)]), {"twice": [42, 42]})
    # -1 = broker default in every version, as Kafka's broker (kafkajs sends rf -1 with v3)
    expect("CreateTopics v3 with rf -1 (kafkajs default)", create_topics(c, 3, [("dflt3", 2, -1)]),
           {"dflt3": 0})
    expect("CreateTopics v4 with -1/-1 uses broker defaults",
           create_topics(c, 4, [("dflt", -1, -1)]), {"dflt": 0})
    expect("CreateTopics manual assignment", create_topics(c, 4, [("manual", -1, -1, {}, [(0, [0]), (1, [0])])]),
           {"manual": 0})
    expect("CreateTopics assignment to another broker -> 39",
           create_topics(c, 4, [("manual2", -1, -1, {}, [(0, [5])])]), {"manual2": 39})
    expect("CreateTopics assignment plus counts -> 42",
           create_topics(c, 4, [("manual3", 1, 1, {}, [(0, [0])])]), {"manual3": 42})
    expect("CreateTopics with configs",
           create_topics(c, 4, [("compacted", 2, 1, {"cleanup.policy": "compact",
                                                     "retention.ms": "-1"})]), {"compacted": 0})
    got = topics_in_metadata(c)
    want = {"orders": 3, long_ok: 1, "dflt3": 2, "dflt": 4, "manual": 2, "compacted": 2}
    expect("Metadata lists the created topics", got, want)


def check_create_partitions(c):
    expect("CreatePartitions 3 -> 5", create_partitions(c, 0, [("orders", 5, None)]), {"orders": 0})
    expect("CreatePartitions decrease -> 37", create_partitions(c, 1, [("orders", 4, None)]),
           {"orders": 37})
    expect("CreatePartitions same count -> 37", create_partitions(c, 1, [("orders", 5, None)]),
           {"orders": 37})
    expect("CreatePartitions unknown topic -> 3", create_partitions(c, 1, [("nope", 5, None)]),
           {"nope": 3})
    expect("CreatePartitions validate_only",
           create_partitions(c, 1, [("orders", 9, None)], validate_only=True), {"orders": 0})
    expect("CreatePartitions wrong assignment count -> 39",
           create_partitions(c, 1, [("orders", 7, [[0]])]), {"orders": 39})
    expect("CreatePartitions with assignments", create_partitions(c, 1, [("orders", 7, [[0], [0]])]),
           {"orders": 0})
    expect("CreatePartitions duplicate -> 42",
           create_partitions(c, 1, [("manual", 9, None), ("manual", 9, None)]), {"manual": [42, 42]})
    expect("Metadata partition count after CreatePartitions", topics_in_metadata(c)["orders"], 7)


def check_describe_configs(c):
    res = describe_configs(c, 1, [(2, "compacted", None)], synonyms=True)
    err, typ, name, cfg = res[0]
    if err != 0 or typ != 2 or name != "compacted":
        fail("DescribeConfigs topic: %r" % (res[0][:3],))
    want_keys = {"cleanup.policy", "compression.type", "delete.retention.ms", "flush.messages",
                 "flush.ms", "index.interval.bytes", "max.message.bytes",
                 "message.timestamp.type", "min.cleanable.dirty.ratio", "min.compaction.lag.ms",
                 "min.insync.replicas", "retention.bytes", "retention.ms", "segment.bytes",
                 "segment.index.bytes", "segment.ms", "unclean.leader.election.enable"}
    expect("DescribeConfigs v1 lists every topic key", set(cfg), want_keys)
    expect("DescribeConfigs unclean.leader.election.enable default",
           cfg["unclean.leader.election.enable"][:3], ("false", False, 5))
    expect("DescribeConfigs override cleanup.policy", cfg["cleanup.policy"][:3], ("compact", False, 1))
    expect("DescribeConfigs override synonyms", cfg["cleanup.policy"][4],
           [("cleanup.policy", "compact", 1), ("log.cleanup.policy", "delete", 5)])
    expect("DescribeConfigs default segment.bytes", cfg["segment.bytes"][:3], ("1073741824", False, 5))
    # log.retention.bytes is set with --override: STATIC_BROKER_CONFIG (4)
    expect("DescribeConfigs broker-set default retention.bytes", cfg["retention.bytes"][:3],
           ("123456789", False, 4))
    expect("DescribeConfigs broker-set synonyms", cfg["retention.bytes"][4],
           [("log.retention.bytes", "123456789", 4), ("log.retention.bytes", "-1", 5)])

    res = describe_configs(c, 0, [(2, "compacted", ["retention.ms", "segment.ms", "no.such"])])
    err, _, _, cfg = res[0]
    expect("DescribeConfigs v0 selected keys", {k: v[:3] for k, v in cfg.items()},
           {"retention.ms": ("-1", False, False), "segment.ms": ("604800000", False, True)})

    res = describe_configs(c, 2, [(2, "nope", None), (2, "bad/name", None), (4, "0", None),
                                  (4, "7", None), (8, "0", None)])
    expect("DescribeConfigs v2 per-resource errors", [x[0] for x in res], [3, 17, 0, 42, 42])
    broker = res[2][3]
    if broker.get("listeners", (None,))[0] is None or not broker["listeners"][1]:
        fail("DescribeConfigs broker: listeners missing or not read-only: %r" % broker.get("listeners"))
    expect("DescribeConfigs broker log.retention.bytes", broker["log.retention.bytes"][:3],
           ("123456789", True, 4))
    expect("DescribeConfigs broker num.partitions", broker["num.partitions"][:3], ("4", True, 4))
    expect("DescribeConfigs broker default key", broker["log.segment.bytes"][:3],
           ("1073741824", True, 5))
    if "broker.id" in broker:
        fail("DescribeConfigs broker lists the alias broker.id")


def describe_topic(c, name):
    return {k: (v[0], v[2]) for k, v in describe_configs(c, 1, [(2, name, None)])[0][3].items()}


def check_alter_configs(c):
    expect("AlterConfigs v0 set two keys",
           alter_configs(c, 0, [(2, "orders", {"retention.ms": "1000", "cleanup.policy": "compact,delete"})]),
           {(2, "orders"): 0})
    d = describe_topic(c, "orders")
    expect("AlterConfigs values visible", (d["retention.ms"], d["cleanup.policy"]),
           (("1000", 1), ("compact,delete", 1)))
    expect("AlterConfigs v1 replaces the whole set",
           alter_configs(c, 1, [(2, "orders", {"segment.bytes": "1048576"})]), {(2, "orders"): 0})
    d = describe_topic(c, "orders")
    expect("AlterConfigs old overrides gone", (d["retention.ms"], d["segment.bytes"]),
           (("604800000", 5), ("1048576", 1)))
    expect("AlterConfigs unknown key -> 40",
           alter_configs(c, 1, [(2, "orders", {"retention.mins": "5"})]), {(2, "orders"): 40})
    expect("AlterConfigs bad value -> 40",
           alter_configs(c, 1, [(2, "orders", {"min.insync.replicas": "0"})]), {(2, "orders"): 40})
    expect("AlterConfigs bad timestamp type -> 40",
           alter_configs(c, 1, [(2, "orders", {"message.timestamp.type": "Now"})]), {(2, "orders"): 40})
    expect("AlterConfigs validate_only",
           alter_configs(c, 1, [(2, "orders", {"retention.ms": "5"})], validate_only=True),
           {(2, "orders"): 0})
    expect("AlterConfigs failures and validate_only left the set alone",
           describe_topic(c, "orders")["segment.bytes"], ("1048576", 1))
    expect("AlterConfigs unknown topic -> 3", alter_configs(c, 1, [(2, "nope", {})]), {(2, "nope"): 3})
    expect("AlterConfigs broker -> 42",
           alter_configs(c, 1, [(4, "0", {"log.retention.ms": "1"})]), {(4, "0"): 42})
    expect("AlterConfigs other type -> 42", alter_configs(c, 1, [(1, "x", {})]), {(1, "x"): 42})
    expect("AlterConfigs clear", alter_configs(c, 1, [(2, "manual", {"flush.ms": "1000"})]),
           {(2, "manual"): 0})


def check_delete_topics(c):
    expect("CreateTopics doomed", create_topics(c, 0, [("doomed", 2, 1)]), {"doomed": 0})
    expect("DeleteTopics v0", delete_topics(c, 0, ["doomed"]), {"doomed": 0})
    expect("DeleteTopics again -> 3", delete_topics(c, 3, ["doomed"]), {"doomed": 3})
    expect("DeleteTopics unknown / invalid -> 3", delete_topics(c, 1, ["nope", "bad/name"]),
           {"nope": 3, "bad/name": 3})
    if "doomed" in topics_in_metadata(c):
        fail("deleted topic still in Metadata")
    expect("CreateTopics after delete", create_topics(c, 0, [("doomed", 1, 1)]), {"doomed": 0})
    expect("DeleteTopics v3", delete_topics(c, 3, ["doomed"]), {"doomed": 0})


def check_init_producer_id(c, seen):
    for v in (0, 1):
        for _ in range(3):
            err, pid, epoch = init_producer_id(c, v)
            if err != 0 or pid < 0 or epoch != 0:
                fail("InitProducerId v%d: %r" % (v, (err, pid, epoch)))
            if pid in seen:
                fail("InitProducerId returned %d twice" % pid)
            seen.add(pid)
    expect("InitProducerId transactional -> 53", init_producer_id(c, 1, "txn-1"), (53, -1, -1))
    ok("InitProducerId gave %d unique ids, epoch 0" % len(seen))


def check_malformed_changes_nothing(b):
    s = b.connect()
    # two topics announced, only the first present: must not create "half"
    body = i32(2) + kstr("half") + i32(1) + i16(1) + i32(0) + i32(0)
    s.sendall(request(19, 0, 1, body))
    it.expect_closed(s, "truncated CreateTopics")
    s = b.connect()
    body = arr([i8(2) + kstr("orders") + i32(1) + kstr("retention.ms")])  # value missing
    s.sendall(request(33, 0, 2, body))
    it.expect_closed(s, "truncated AlterConfigs")
    c = Client(b)
    if "half" in topics_in_metadata(c):
        fail("a malformed CreateTopics created a topic")
    expect("truncated AlterConfigs left orders alone",
           describe_topic(c, "orders")["segment.bytes"], ("1048576", 1))
    c.close()


def snapshot(c):
    topics = topics_in_metadata(c)
    configs = {t: {k: v for k, v in describe_topic(c, t).items() if v[1] == 1} for t in sorted(topics)}
    c.corr += 1
    cluster = it.metadata(c.s, 2, c.corr, [])["cluster"]
    return topics, configs, cluster


def start(exe, tmp):
    return it.Broker(exe, tmp, overrides=[("connections.max.idle.ms", 2000),
                                          ("num.partitions", 4),
                                          ("log.retention.bytes", 123456789),
                                          ("auto.create.topics.enable", "false")])


def restart_check(exe, tmp, b, how, before, seen):
    if how == "SIGTERM":
        b.stop_ok()
    else:
        b.kill()
    b = start(exe, tmp)
    c = Client(b)
    expect("topics, partitions, configs and cluster id after %s restart" % how, snapshot(c), before)
    check_init_producer_id(c, seen)
    c.close()
    return b


def check_corrupt_store_refused(exe, tmp):
    path = os.path.join(tmp, "data", META_FILE)
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        data[len(data) // 2] ^= 0x40
        f.seek(0)
        f.write(data)
    log = os.path.join(tmp, "corrupt.log")
    with open(log, "wb") as lf:
        p = subprocess.Popen([exe, "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % it.free_port(),
                              "--override", "log.dirs=%s" % os.path.join(tmp, "data")],
                             stdout=lf, stderr=subprocess.STDOUT)
        try:
            rc = p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            fail("stratad started on a corrupt metadata file")
    text = open(log, "rb").read().decode(errors="replace")
    if rc == 0 or path not in text or "corrupt" not in text:
        print(text)
        fail("corrupt metadata: want a non-zero exit naming %s (rc %d)" % (path, rc))
    with open(path, "rb") as f:
        if bytearray(f.read()) != data:
            fail("the corrupt metadata file was rewritten")
    ok("corrupt %s -> stratad exits %d naming the file, file untouched" % (META_FILE, rc))


def main():
    exe = it.stratad_arg(__doc__)
    return it.run("strata-admin-", lambda tmp: run(exe, tmp))


def run(exe, tmp):
    seen = set()
    b = start(exe, tmp)
    c = Client(b)
    check_api_versions(c)
    check_create_topics(c)
    check_create_partitions(c)
    check_describe_configs(c)
    check_alter_configs(c)
    check_delete_topics(c)
    check_init_producer_id(c, seen)
    c.close()
    check_malformed_changes_nothing(b)

    c = Client(b)
    before = snapshot(c)
    c.close()
    b = restart_check(exe, tmp, b, "SIGTERM", before, seen)

    # change things, then kill -9 right after the acknowledgements
    c = Client(b)
    expect("CreateTopics before kill -9", create_topics(c, 0, [("after-kill", 2, 1)]),
           {"after-kill": 0})
    expect("CreatePartitions before kill -9", create_partitions(c, 0, [("manual", 3, None)]),
           {"manual": 0})
    expect("AlterConfigs before kill -9",
           alter_configs(c, 0, [(2, "after-kill", {"max.message.bytes": "2048"})]),
           {(2, "after-kill"): 0})
    expect("DeleteTopics before kill -9", delete_topics(c, 0, ["dflt"]), {"dflt": 0})
    check_init_producer_id(c, seen)
    before = snapshot(c)
    c.close()
    b = restart_check(exe, tmp, b, "kill -9", before, seen)

    b.stop_ok("final stop")
    check_corrupt_store_refused(exe, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
