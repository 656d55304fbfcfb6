#!/usr/bin/python3
"""Integration test: kafkajs 2.2.4 (npm) against the real stratad.

usage: test_kafkajs.py STRATAD NODE_DIR [group]

Installs tests/integration/kafkajs/package.json + package-lock.json into
NODE_DIR (the CMake build tree's kafkajs/; `npm ci` is skipped when
node_modules already holds kafkajs 2.2.4), starts STRATAD on a free loopback
port that advertises a second port, and runs kafkajs/test_kafkajs.js, which
proxies kafkajs through that second port: admin createTopics / listTopics /
fetchTopicMetadata / describeConfigs / deleteTopics, an idempotent producer
(maxInFlightRequests 1, acks -1) sending 6,700 keyed records with headers,
uncompressed and GZIP, one of whose Produce responses is lost so kafkajs
retries the batch, and a plain producer (acks 1, producer id -1 with base
sequence 0). The read-back is here: Fetch v4 of every partition, compared record by
record (offset, timestamp, key, value, headers) with what kafkajs had
acknowledged; count == sent; one producer id, epoch 0, contiguous sequence
numbers; and kafkajs's own batches re-sent raw answer their original offsets
without appending. Then SIGTERM by pid, exit 0.

With "group": kafkajs/test_kafkajs_group.js instead -- kafkajs consumer
groups (eachMessage, autoCommit): a consumer reads a 4-partition topic,
commits and stops, more records are produced and a restarted consumer in
the same group reads exactly the new ones; two consumers in one group split
the partitions 2/2 and read everything between them; admin.deleteGroups is
refused (68) while the group has a member and deletes it once empty.
Afterwards raw OffsetFetch v1: kjs-resume's committed offsets add up to the
records read, kjs-split has none.

Exit 0 = pass, 1 = fail, 77 = skipped (node or npm missing, npm registry
unreachable).
"""
import base64
import json
import os
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402
from strata_it import expect, fail, ok  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_DIR = os.path.join(HERE, "kafkajs")
KAFKAJS_VERSION = "2.2.4"


def installed_version(node_dir):
    pkg = os.path.join(node_dir, "node_modules", "kafkajs", "package.json")
    try:
        with open(pkg) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def install(node_dir):
    """npm ci into node_dir (skipped when kafkajs 2.2.4 is already there); exit 77 when
    node/npm are missing or the registry cannot be reached."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        it.skip("%s not on PATH (kafkajs needs Node.js >= 14 with npm)" %
                " and ".join(n for n, p in (("node", node), ("npm", npm)) if not p))
    os.makedirs(node_dir, exist_ok=True)
    fresh = True
    for name in ("package.json", "package-lock.json"):
        src, dst = os.path.join(PKG_DIR, name), os.path.join(node_dir, name)
        with open(src, "rb") as f:
            want = f.read()
        if not os.path.exists(dst) or open(dst, "rb").read() != want:
            fresh = False
            shutil.copyfile(src, dst)
    if fresh and installed_version(node_dir) == KAFKAJS_VERSION:
        ok("kafkajs %s already installed in %s (npm ci skipped)" % (KAFKAJS_VERSION, node_dir))
        return node
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=node_dir,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        print(out)
        if any(s in out for s in ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT",
                                  "ENETUNREACH", "network", "fetch failed")):
            it.skip("npm ci could not reach the npm registry (kafkajs %s not installed)" %
                    KAFKAJS_VERSION)
        fail("npm ci in %s exited %d" % (node_dir, r.returncode))
    if installed_version(node_dir) != KAFKAJS_VERSION:
        fail("npm ci did not install kafkajs %s" % KAFKAJS_VERSION)
    ok("npm ci: kafkajs %s installed in %s" % (KAFKAJS_VERSION, node_dir))
    return node


def b64(s):
    return base64.b64decode(s)


def read_back(b, manifest):
    sent = manifest["records"]
    want = {}
    for r in sent:
        want.setdefault((r["topic"], r["partition"]), []).append(
            (r["offset"], r["timestamp"], b64(r["key"]), b64(r["value"]),
             [(k, b64(v)) for k, v in r["headers"]]))
    c = it.Conn(b.port)
    total = 0
    pids = set()
    retried = []
    for (topic, part), recs in sorted(want.items()):
        batches = it.read_all_batches(c, topic, part)
        got = []
        next_seq = 0
        for base, bb in batches:
            h = it.batch_header(bb)
            if topic == "kjs-nonidem":  # kafkajs: pid -1 (epoch 0) with base sequence 0
                if (h["producer_id"], h["base_sequence"]) != (-1, 0):
                    fail("%s batch at %d: %r" % (topic, base, h))
                next_seq += h["count"]
                for r in it.batch_records(bb):
                    got.append((r["offset"], r["timestamp"], r["key"], r["value"], r["headers"]))
                continue
            pids.add((h["producer_id"], h["producer_epoch"]))
            if h["base_sequence"] != next_seq:
                fail("%s/%d batch at %d: base sequence %d, want %d" %
                     (topic, part, base, h["base_sequence"], next_seq))
            next_seq += h["count"]
            for r in it.batch_records(bb):
                got.append((r["offset"], r["timestamp"], r["key"], r["value"], r["headers"]))
        if got != recs:
            first = next((i for i in range(min(len(got), len(recs))) if got[i] != recs[i]), None)
            fail("%s/%d: read %d records, kafkajs sent %d; first difference at %r: %r vs %r" %
                 (topic, part, len(got), len(recs), first,
                  got[first] if first is not None else None,
                  recs[first] if first is not None else None))
        err, _, latest = it.list_offsets(c, topic, part, -1)
        if err or latest != len(recs):
            fail("%s/%d: latest offset %d (error %d), sent %d" % (topic, part, latest, err, len(recs)))
        codecs = sorted({it.batch_header(bb)["attributes"] & 7 for _, bb in batches})
        ok("%s/%d: %d records in %d batches (codec %s) read back byte-identical "
           "(offsets, timestamps, keys, values, headers); count == sent, %s"
           % (topic, part, len(got), len(batches), "/".join(map(str, codecs)),
              "producer id -1, base sequence 0" if topic == "kjs-nonidem" else
              "sequences 0..%d" % (next_seq - 1)))
        total += len(got)
        if topic != "kjs-nonidem":
            retried.append((topic, part, batches[-1]))
    if len(pids) != 1 or next(iter(pids))[0] < 0 or next(iter(pids))[1] != 0:
        fail("producer id/epoch of the batches: %r, want one id with epoch 0" % pids)
    expect("every record kafkajs sent is stored exactly once", total, len(sent))
    ok("one idempotent producer id %d, epoch 0, on every batch" % next(iter(pids))[0])

    # kafkajs's own last batches, re-sent byte for byte: duplicates answer the
    # original offset and append nothing
    for topic, part, (base, bb) in retried:
        before = it.list_offsets(c, topic, part, -1)[2]
        err, got_base, _ = it.produce(c, topic, part, bb)
        after = it.list_offsets(c, topic, part, -1)[2]
        if (err, got_base, after) != (0, base, before):
            fail("%s/%d: re-sent batch at %d -> error %d offset %d, latest %d -> %d" %
                 (topic, part, base, err, got_base, before, after))
    ok("each partition's last kafkajs batch re-sent raw -> its original offset, nothing appended")
    c.close()


def offsets_committed(b, group, topic, parts):
    """Raw OffsetFetch v1 -> {partition: offset}."""
    body = it.kstr(group) + struct.pack(">i", 1) + it.kstr(topic) + struct.pack(">i", parts) + \
        b"".join(struct.pack(">i", p) for p in range(parts))
    c = it.Conn(b.port)
    r = it.Rd(c.call(9, 1, body))
    c.close()
    out = {}
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            p, off = r.i32(), r.i64()
            r.string()
            if r.i16():
                fail("OffsetFetch %s partition %d: error" % (group, p))
            out[p] = off
    return out


def run_group(exe, node, node_dir):
    def body(tmp):
        b = it.Broker(exe, tmp, overrides=[("auto.create.topics.enable", "false")])
        env = dict(os.environ, NODE_PATH=os.path.join(node_dir, "node_modules"))
        cmd = [node, os.path.join(PKG_DIR, "test_kafkajs_group.js"), "--broker", b.addr]
        try:
            r = subprocess.run(cmd, cwd=node_dir, env=env, timeout=240)
        except subprocess.TimeoutExpired:
            fail("test_kafkajs_group.js timed out")
        if r.returncode != 0:
            fail("test_kafkajs_group.js exited %d" % r.returncode)
        got = {g: offsets_committed(b, g, "kjs-grp", 4) for g in ("kjs-resume", "kjs-split")}
        expect("committed offsets: kjs-resume (sum over kjs-grp's 4 partitions), kjs-split "
               "(deleted)", (sum(got["kjs-resume"].values()), got["kjs-split"]),
               (300, {0: -1, 1: -1, 2: -1, 3: -1}))
        b.stop_ok()
        ok("SIGTERM -> exit 0")
    return it.run("strata-kafkajs-group-", body)


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    exe = it.stratad_arg(__doc__)
    node_dir = os.path.abspath(sys.argv[2])
    node = install(node_dir)
    if len(sys.argv) > 3 and sys.argv[3] == "group":
        return run_group(exe, node, node_dir)

    def body(tmp):
        proxy_port = it.free_port()
        b = it.Broker(exe, tmp, overrides=[
            ("advertised.listeners", "PLAINTEXT://127.0.0.1:%d" % proxy_port),
            ("num.partitions", 2), ("auto.create.topics.enable", "false")])
        out = os.path.join(tmp, "kafkajs-sent.json")
        env = dict(os.environ, NODE_PATH=os.path.join(node_dir, "node_modules"))
        cmd = [node, os.path.join(PKG_DIR, "test_kafkajs.js"), "--broker", b.addr,
               "--proxy-port", str(proxy_port), "--num-partitions", "2", "--out", out]
        try:
            r = subprocess.run(cmd, cwd=node_dir, env=env, timeout=300)
        except subprocess.TimeoutExpired:
            fail("test_kafkajs.js timed out")
        if r.returncode != 0:
            fail("test_kafkajs.js exited %d" % r.returncode)
        with open(out) as f:
            read_back(b, json.load(f))
        b.stop_ok()
        ok("SIGTERM -> exit 0")
    return it.run("strata-kafkajs-", body)


if __name__ == "__main__":
    sys.exit(main())
