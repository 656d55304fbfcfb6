#!/usr/bin/env python3
"""Produce edge cases on one stratad (metadata.store=local), raw protocol.

usage: test_produce.py STRATAD durable SYNC_GATE_SO
       test_produce.py STRATAD compact
       test_produce.py STRATAD plugin KEYLESS_SRC_SO

durable: a retried idempotent batch (the same producer id, epoch and
  sequences as one already appended) is answered with the original's offset,
  but never before the original's own answer could have been. The broker runs
  with the sync_gate.c shim (LD_PRELOAD): the thread-pool io backend, and the
  fdatasync of the topic's segment held while a gate file exists -- so the
  original stays written-but-not-durable for as long as the test wants, with
  no timing involved.
    - original acks=1 (answered: written); the retry with acks=all on another
      connection is NOT answered while the gate holds the sync (the high
      watermark stays before the original), a retry with acks=1 is; the gate
      opens -> the acks=all retry is answered with the original's offset, the
      high watermark already past it; one copy in the log
    - original acks=all and its retry on another connection, both held; the
      sync then fails (EIO): the original answers KAFKA_STORAGE_ERROR (56) and
      so does the retry (before: 0 at once, for a batch that never became
      durable)
compact: records without a key on a topic whose cleanup.policy contains
  compact are refused (Kafka's LogValidator): CORRUPT_MESSAGE (2) for Produce
  v3-v7 -- INVALID_RECORD (87) would be v8+, which stratad does not serve --
  keyed batches are accepted, a gzip batch with one keyless record among
  keyed ones is refused, nothing is appended on refusal; keyless records on a
  delete-policy topic are accepted; AlterConfigs to compact takes effect.
  kcat and kafka-python (every codec) see the error for a keyless record and
  deliver keyed ones.
plugin: the keyless_src.c plugin produces 20 records into a compacted topic,
  every other one without a key: the 10 keyless ones fail (append_errors 10,
  the reason in last_error), the 10 keyed ones (one with an empty key) land,
  in order.
"""
import os
import select
import struct
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

TOPIC = "dur"


def readable(conn, timeout):
    r, _, _ = select.select([conn.s], [], [], timeout)
    return bool(r)


def hw(conn, topic=TOPIC):
    err, _, off = it.list_offsets(conn, topic, 0, -1)
    if err:
        it.fail("ListOffsets latest: error %d" % err)
    return off


def asan_runtime(exe):
    """The libasan a sanitized stratad links (it must come first in LD_PRELOAD)."""
    out = subprocess.run(["ldd", exe], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    for line in out.decode(errors="replace").splitlines():
        if "libasan" in line and "=>" in line:
            return line.split("=>")[1].split()[0]
    return None


def durable(exe, shim):
    def body(tmp):
        gate = os.path.join(tmp, "gate")
        failf = os.path.join(tmp, "fail")
        pre = [p for p in (asan_runtime(exe), os.path.abspath(shim)) if p]
        saved = dict(os.environ)
        # only the segment's syncs: the leader-epoch checkpoint is synced on
        # the shard thread, which a held sync there would stop altogether
        os.environ.update({"LD_PRELOAD": ":".join(pre),
                           "SYNC_GATE_MATCH": "/%s-0/00000000000000000000.log" % TOPIC,
                           "SYNC_GATE_FILE": gate, "SYNC_GATE_FAIL": failf})
        try:
            b = it.Broker(exe, tmp, {"log.level": "debug"})
        finally:
            os.environ.clear()
            os.environ.update(saved)
        if "thread-pool io backend" not in b.read_log():
            b.dump()
            it.fail("the sync_gate shim is not in effect (stratad still uses io_uring)")
        it.ok("stratad runs with the sync gate (thread-pool io backend)")
        it.create_topic(b, TOPIC)
        c0 = it.Conn(b.port)
        it.expect("plain batch, gate open: (error, base)",
                  it.produce(c0, TOPIC, 0, it.batch([b"v0"]))[:2], (0, 0))
        it.expect("high watermark", hw(c0), 1)

        pid = 4242
        orig = it.batch([b"a1", b"a2"], pid=pid, epoch=0, seq=0)
        # -- 1: original acks=1 written, not durable; retries acks=all / acks=1
        open(gate, "w").close()
        c1, c2, c3 = it.Conn(b.port), it.Conn(b.port), it.Conn(b.port)
        it.expect("original acks=1 (written, sync held): (error, base)",
                  it.produce(c1, TOPIC, 0, orig, acks=1)[:2], (0, 1))
        it.expect("high watermark while the sync is held", hw(c0), 1)
        c2.send(0, 7, it.produce_body(TOPIC, 0, orig, acks=-1))
        it.expect("retry acks=1 (the original is written): (error, base)",
                  it.produce(c3, TOPIC, 0, orig, acks=1)[:2], (0, 1))
        if readable(c2, 1.0):
            it.fail("the acks=all retry was answered while the original is not durable: %r"
                    % (it.parse_produce(c2.recv()[1]),))
        it.ok("acks=all retry not answered while the original's sync is held")
        it.expect("high watermark still", hw(c0), 1)
        os.unlink(gate)
        it.expect("acks=all retry once the sync ran: (error, base)",
                  it.parse_produce(c2.recv()[1])[:2], (0, 1))
        it.expect("high watermark right after the retry's answer", hw(c0) >= 3, True)
        recs = it.read_all(c0, TOPIC, 0)
        it.expect("log: one copy of the batch", [(o, v) for o, _, v in recs],
                  [(0, b"v0"), (1, b"a1"), (2, b"a2")])

        # -- 2: original acks=all and its retry held, then the sync fails
        nxt = it.batch([b"b1"], pid=pid, epoch=0, seq=2)
        open(gate, "w").close()
        c1.send(0, 7, it.produce_body(TOPIC, 0, nxt, acks=-1))
        c2.send(0, 7, it.produce_body(TOPIC, 0, nxt, acks=-1))
        it.expect("retry acks=1 of the held batch: (error, base)",
                  it.produce(c3, TOPIC, 0, nxt, acks=1)[:2], (0, 3))
        if readable(c2, 1.0):
            it.fail("the acks=all retry was answered while the original is not durable: %r"
                    % (it.parse_produce(c2.recv()[1]),))
        it.ok("acks=all original and retry both held")
        open(failf, "w").close()
        os.unlink(gate)
        it.expect("original after a failed sync: error", it.parse_produce(c1.recv()[1])[0], 56)
        it.expect("retry after the original's failed sync: error",
                  it.parse_produce(c2.recv()[1])[0], 56)
        for c in (c0, c1, c2, c3):
            c.close()
        b.kill()  # the log is failed until reopened
        return 0

    return it.run("strata-produce-durable-", body)


# ---- compacted topics: keys required -------------------------------------------------

def create_topic_cfg(b, name, configs):
    c = it.Conn(b.port)
    body = (struct.pack(">i", 1) + it.kstr(name) + struct.pack(">ihi", 1, 1, 0) +
            struct.pack(">i", len(configs)) +
            b"".join(it.kstr(k) + it.kstr(v) for k, v in configs) + struct.pack(">i", 10000))
    r = it.Rd(c.call(19, 0, body))
    c.close()
    r.i32()
    r.string()
    it.expect("create %s %r" % (name, configs), r.i16(), 0)


def alter_topic(b, name, configs):
    """AlterConfigs v0 of a topic (resource type 2)."""
    c = it.Conn(b.port)
    body = (struct.pack(">i", 1) + struct.pack(">b", 2) + it.kstr(name) +
            struct.pack(">i", len(configs)) +
            b"".join(it.kstr(k) + it.kstr(v) for k, v in configs) + b"\x00")
    r = it.Rd(c.call(33, 0, body))
    c.close()
    r.i32()
    r.i32()
    it.expect("alter %s %r" % (name, configs), r.i16(), 0)


def gzip_batch(values, keys, codec=1, encode=None):
    """One compressed RecordBatch v2 of the given records (keys: None = no
    key): gzip, or codec with encode(bytes) -> bytes."""
    import time as _t
    ts = int(_t.time() * 1000)
    recs = b"".join(it.record(i, keys[i], v) for i, v in enumerate(values))
    if encode is None:
        co = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        z = co.compress(recs) + co.flush()
    else:
        z = encode(recs)
    after_crc = struct.pack(">hiqqqhii", codec, len(values) - 1, ts, ts, -1, -1, -1,
                            len(values)) + z
    head = struct.pack(">ibI", 0, 2, it.crc32c(after_crc))
    return struct.pack(">qi", 0, len(head + after_crc)) + head + after_crc


def produce_v(conn, ver, topic, records, acks=-1):
    return it.parse_produce(conn.call(0, ver, it.produce_body(topic, 0, records, acks)), ver)


def compact(exe):
    def body(tmp):
        b = it.Broker(exe, tmp)
        create_topic_cfg(b, "cmp", [("cleanup.policy", "compact")])
        create_topic_cfg(b, "cmpdel", [("cleanup.policy", "compact,delete")])
        create_topic_cfg(b, "plain", [])
        create_topic_cfg(b, "cmpz", [("cleanup.policy", "compact")])
        c = it.Conn(b.port)
        for v in (3, 5, 7):
            it.expect("v%d keyless record on a compacted topic: error" % v,
                      produce_v(c, v, "cmp", it.batch([b"x"]))[0], 2)
        it.expect("acks=1 keyless: error", produce_v(c, 7, "cmp", it.batch([b"x"]), acks=1)[0], 2)
        it.expect("one keyless among keyed: error",
                  produce_v(c, 7, "cmp",
                            it.batch([b"a", b"b", b"c"], keys=[b"k1", None, b"k3"]))[0], 2)
        it.expect("keyed batch: (error, base)",
                  produce_v(c, 7, "cmp", it.batch([b"a", b"b"], keys=[b"k1", b"k2"]))[:2], (0, 0))
        it.expect("empty key (not null) accepted: (error, base)",
                  produce_v(c, 7, "cmp", it.batch([b"e"], keys=[b""]))[:2], (0, 2))
        it.expect("gzip, one keyless among keyed: error",
                  produce_v(c, 7, "cmp",
                            gzip_batch([b"g1", b"g2", b"g3"], [b"k1", b"k2", None]))[0], 2)
        it.expect("gzip, all keyed: (error, base)",
                  produce_v(c, 7, "cmp", gzip_batch([b"g1", b"g2"], [b"k1", b"k2"]))[:2], (0, 3))
        try:
            import kafka.codec as kc
            encoders = [(2, "snappy", kc.has_snappy(), lambda b: kc.snappy_encode(b)),
                        (3, "lz4", kc.has_lz4(), lambda b: kc.lz4_encode(b)),
                        (4, "zstd", kc.has_zstd(), lambda b: kc.zstd_encode(b))]
        except ImportError:
            encoders = []
            print("kafka-python not found: snappy/lz4/zstd raw batches skipped")
        for cid, cname, have, enc in encoders:
            if not have:
                print("no %s encoder in kafka-python: skipped" % cname)
                continue
            vals = [b"%s-%d" % (cname.encode(), i) * 20 for i in range(3)]
            it.expect("%s, one keyless among keyed: error" % cname,
                      produce_v(c, 7, "cmp", gzip_batch(vals, [b"k1", None, b"k3"], cid, enc))[0],
                      2)
            it.expect("%s, all keyed (elsewhere): error" % cname,
                      produce_v(c, 7, "cmpz", gzip_batch(vals, [b"k1", b"k2", b"k3"], cid, enc))[0],
                      0)
        it.expect("compact,delete keyless: error",
                  produce_v(c, 7, "cmpdel", it.batch([b"x"]))[0], 2)
        it.expect("delete-policy keyless: (error, base)",
                  produce_v(c, 7, "plain", it.batch([b"x"]))[:2], (0, 0))
        # nothing of the refused batches was appended
        got = []
        for _, bb in it.read_all_batches(c, "cmp", 0):
            got += [(r["offset"], r["key"], r["value"]) for r in it.batch_records(bb)]
        it.expect("cmp holds exactly the accepted records", got,
                  [(0, b"k1", b"a"), (1, b"k2", b"b"), (2, b"", b"e"), (3, b"k1", b"g1"),
                   (4, b"k2", b"g2")])
        it.expect("cmpdel high watermark", hw(c, "cmpdel"), 0)
        # idempotent keyless batch: refused, and the sequence is not consumed
        it.expect("idempotent keyless: error",
                  produce_v(c, 7, "cmp", it.batch([b"i"], pid=77, epoch=0, seq=0))[0], 2)
        it.expect("idempotent keyed at seq 0 after it: (error, base)",
                  produce_v(c, 7, "cmp", it.batch([b"i"], keys=[b"ki"], pid=77, epoch=0,
                                                  seq=0))[:2], (0, 5))
        # the policy is read per produce: alter plain -> compact and back
        alter_topic(b, "plain", [("cleanup.policy", "compact")])
        it.expect("after AlterConfigs compact, keyless: error",
                  produce_v(c, 7, "plain", it.batch([b"x"]))[0], 2)
        alter_topic(b, "plain", [("cleanup.policy", "delete")])
        it.expect("after AlterConfigs delete, keyless: (error, base)",
                  produce_v(c, 7, "plain", it.batch([b"x"]))[:2], (0, 1))
        clients(b, c)
        c.close()
        b.stop_ok()
        return 0

    return it.run("strata-produce-compact-", body)


def clients(b, c):
    """kcat (librdkafka) and kafka-python against a compacted topic: keyless
    records fail with the broker's error, keyed ones land, under every codec."""
    import shutil
    create_topic_cfg(b, "cmpc", [("cleanup.policy", "compact")])
    want = []
    if shutil.which("kcat"):
        for z in ("none", "lz4", "zstd"):
            r = subprocess.run(["kcat", "-b", b.addr, "-P", "-t", "cmpc", "-p", "0", "-z", z,
                                "-X", "message.send.max.retries=0"],
                               input=b"nokey-%s\n" % z.encode(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
            err = r.stderr.decode(errors="replace")
            # librdkafka names error 2 (CORRUPT_MESSAGE) "Broker: Invalid message"
            if r.returncode == 0 or "Broker: Invalid message" not in err:
                it.fail("kcat -z %s keyless: want a CORRUPT_MESSAGE delivery failure, got "
                        "exit %d: %s" % (z, r.returncode, err))
            it.ok("kcat -z %s keyless refused (exit %d)" % (z, r.returncode))
            it.kcat(b, ["-P", "-t", "cmpc", "-p", "0", "-z", z, "-K", ":"],
                    stdin=b"k-%s:v-%s\n" % (z.encode(), z.encode()))
            want.append(("k-%s" % z, "v-%s" % z))
    else:
        print("kcat not found: its part skipped")
    try:
        import kafka
        from kafka.errors import KafkaError
    except ImportError:
        kafka = None
        print("kafka-python not found: its part skipped")
    if kafka:
        import kafka.codec as kc
        codecs = [z for z, have in (("gzip", kc.has_gzip()), ("snappy", kc.has_snappy()),
                                    ("lz4", kc.has_lz4()), ("zstd", kc.has_zstd())) if have]
        for z in codecs:
            pr = kafka.KafkaProducer(bootstrap_servers=b.addr, compression_type=z, retries=0,
                                     linger_ms=50, acks="all")
            try:
                bad = pr.send("cmpc", value=b"py-nokey-" + z.encode(), partition=0)
                pr.flush(30)
                try:
                    bad.get(timeout=30)
                    it.fail("kafka-python %s keyless: accepted" % z)
                except KafkaError as e:
                    if "CorruptRecord" not in type(e).__name__ and "Corrupt" not in str(e):
                        it.fail("kafka-python %s keyless: %r" % (z, e))
                    it.ok("kafka-python %s keyless refused: %s" % (z, type(e).__name__))
                good = pr.send("cmpc", key=b"py-" + z.encode(), value=b"pv-" + z.encode(),
                               partition=0)
                good.get(timeout=30)
                want.append(("py-%s" % z, "pv-%s" % z))
            finally:
                pr.close(5)
        it.ok("kafka-python codecs tried: %s" % ",".join(codecs))
    got = []
    if shutil.which("kcat"):
        out = it.kcat(b, ["-C", "-t", "cmpc", "-p", "0", "-o", "beginning", "-e", "-f", "%k=%s\n"])
        got = [tuple(line.split("=", 1)) for line in out.decode().splitlines() if line]
        it.expect("cmpc holds exactly the keyed records, in order", got, want)


def plugin(exe, lib):
    import json
    import shutil

    def inst(tmp):
        try:
            with open(os.path.join(tmp, "data", ".plugins", "status.json")) as f:
                s = json.load(f)
        except (OSError, ValueError):
            return None
        return next((i for i in s["instances"] if i["name"] == "k"), None)

    def body(tmp):
        b = it.Broker(exe, tmp)
        create_topic_cfg(b, "plk", [("cleanup.policy", "compact")])
        b.stop_ok()
        d = os.path.join(tmp, "plugins")
        os.makedirs(d)
        os.chmod(d, 0o755)
        shutil.copy(lib, os.path.join(d, "keyless_src.so"))
        os.chmod(os.path.join(d, "keyless_src.so"), 0o644)
        b.overrides += [("plugin.dir", d), ("plugins", "k"),
                        ("plugin.k.library", "keyless_src.so"), ("plugin.k.topic", "plk"),
                        ("plugin.k.records", "20")]
        b.start()
        done = it.wait_until("20 plugin records answered", lambda: (
            lambda i: i if i and i["records_durable"] + i["append_errors"] >= 20 else None)(
                inst(tmp)), 30, 0.1)
        it.expect("plugin records durable", done["records_durable"], 10)
        it.expect("plugin records refused", done["append_errors"], 10)
        if "without a key" not in done.get("last_error", ""):
            it.fail("last_error does not say why: %r" % done.get("last_error"))
        it.ok("last_error: %s" % done["last_error"])
        c = it.Conn(b.port)
        got = [(r["key"], r["value"]) for _, bb in it.read_all_batches(c, "plk", 0)
               for r in it.batch_records(bb)]
        c.close()
        want = [(b"" if n == 0 else b"k%d" % n, b"v%d" % n) for n in range(0, 20, 2)]
        it.expect("plk holds the keyed plugin records, in order", got, want)
        b.stop_ok()
        return 0

    return it.run("strata-produce-plugin-", body)


def main():
    exe = it.stratad_arg(__doc__)
    mode = sys.argv[2] if len(sys.argv) > 2 else ""
    if mode == "durable":
        if len(sys.argv) < 4:
            it.fail("durable needs the sync_gate shim path")
        return durable(exe, sys.argv[3])
    if mode == "compact":
        return compact(exe)
    if mode == "plugin":
        if len(sys.argv) < 4:
            it.fail("plugin needs the keyless_src plugin path")
        return plugin(exe, sys.argv[3])
    it.fail("unknown mode %r" % mode)


if __name__ == "__main__":
    sys.exit(main())
