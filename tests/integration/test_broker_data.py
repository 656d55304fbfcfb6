#!/usr/bin/python3
"""Integration test: stratad stores and serves data (Produce, Fetch, ListOffsets,
DeleteRecords), driven by unmodified clients and raw requests.

usage: test_broker_data.py STRATAD MODE

MODE is one of
  kcat        kcat -L; 100,000 keyed records with headers under each of
              -z none/gzip/snappy/lz4/zstd, consumed back byte-identical
              (kcat -C -e -f with key, headers, value); -o s@<timestamp>
  python      kafka-python KafkaProducer acks='all' (gzip, and snappy/lz4/zstd
              when the Debian module has the codec; skipped with a message
              otherwise) + KafkaConsumer assign/seek reading them back
  durability  raw acks=-1 producer with requests in flight while stratad is
              SIGKILLed; after a restart every acknowledged record is there
              exactly once, in order
  badinput    corrupt CRC -> CORRUPT_MESSAGE with the log unchanged,
              oversized batch -> MESSAGE_TOO_LARGE, two batches -> INVALID_RECORD,
              unknown topic -> UNKNOWN_TOPIC_OR_PARTITION, bad acks -> 21;
              fetch out of range; DeleteRecords; ListOffsets earliest/latest
  restart     produce (kcat), SIGTERM (exit 0), restart, consume everything
  idempotence raw idempotent batches (retry -> original offset, gap -> 45,
              stale epoch -> 47, new epoch from 0), state rebuilt after a
              restart; kcat -X enable.idempotence=true round trip

Each mode starts its own stratad on a free loopback port with a temp data
directory and stops it by pid. Exit 0 = pass, 1 = fail, 77 = skipped.
"""
import os
import shutil
import socket
import struct
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402
from strata_it import create_topic, fail, kcat, ok  # noqa: E402


# ---- kcat ----------------------------------------------------------------------

N_KCAT = 100000


def mode_kcat(b):
    if not shutil.which("kcat"):
        print("SKIP: kcat not installed")
        raise SystemExit(77)
    create_topic(b, "kc-meta", 3)
    out = kcat(b, ["-L", "-t", "kc-meta"]).decode()
    if "broker 0 at 127.0.0.1:%d" % b.port not in out or "3 partitions" not in out:
        fail("kcat -L: %s" % out)
    ok("kcat -L lists the broker and 3 partitions")

    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        topic = "kc-" + codec
        create_topic(b, topic)
        lines = [("k%06d\tv-%s-%d-%s" % (i, codec, i, "x" * (i % 97))) for i in range(N_KCAT)]
        data = ("\n".join(lines) + "\n").encode()
        t0 = time.time()
        kcat(b, ["-P", "-t", topic, "-p", "0", "-K", "\t", "-z", codec, "-H", "h1=one",
                 "-H", "h2=two", "-X", "acks=all"], stdin=data)
        t1 = time.time()
        got = kcat(b, ["-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
                       "-f", "%k\t%s\t%h\n"])
        t2 = time.time()
        want = ("\n".join(l + "\th1=one,h2=two" for l in lines) + "\n").encode()
        if got != want:
            gl = got.split(b"\n")
            wl = want.split(b"\n")
            first = next((i for i in range(min(len(gl), len(wl))) if gl[i] != wl[i]), None)
            fail("%s: consumed %d lines, want %d; first difference at %s: %r vs %r" %
                 (codec, len(gl), len(wl), first, gl[first] if first is not None else None,
                  wl[first] if first is not None else None))
        # and librdkafka really compressed them: every stored batch carries the
        # codec (it silently sends uncompressed when the broker's ApiVersions
        # ranges put a codec out of reach)
        want_codec = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[codec]
        stored = it.read_all_batches(it.Conn(b.port), topic, 0)
        codecs = {it.batch_header(bb)["attributes"] & 7 for _, bb in stored}
        plain = [bb for _, bb in stored if it.batch_header(bb)["attributes"] & 7 == 0]
        if want_codec and codecs == {0, want_codec} and \
                all(it.would_not_shrink(codec, bb) for bb in plain):
            # librdkafka sends a batch plain when compressing does not shrink it
            ok("-z %s: %d of %d batches plain (%s records): compression would not shrink them" %
               (codec, len(plain), len(stored), [it.batch_header(bb)["count"] for bb in plain]))
            codecs = {want_codec}
        if codecs != {want_codec}:
            fail("-z %s: stored batches carry codecs %s, want only %d" % (codec, codecs, want_codec))
        ok("-z %s: %d records with key and headers round-trip byte-identical, stored in %d "
           "batches of codec %d (produce %.0f rec/s, consume %.0f rec/s)" %
           (codec, N_KCAT, len(stored), want_codec, N_KCAT / (t1 - t0), N_KCAT / (t2 - t1)))

    # -o s@<timestamp>: the first record at or after the timestamp
    kcat(b, ["-P", "-t", "kc-time", "-p", "0"], stdin=b"".join(b"early-%d\n" % i for i in range(500)))
    time.sleep(0.3)
    ts = int(time.time() * 1000)
    time.sleep(0.3)
    kcat(b, ["-P", "-t", "kc-time", "-p", "0"], stdin=b"".join(b"late-%d\n" % i for i in range(500)))
    got = kcat(b, ["-C", "-t", "kc-time", "-p", "0", "-o", "s@%d" % ts, "-e", "-q", "-f", "%o %s\n"])
    want = b"".join(b"%d late-%d\n" % (500 + i, i) for i in range(500))
    if got != want:
        fail("-o s@%d: got %r..." % (ts, got[:200]))
    ok("kcat -o s@<ts> starts at the first record at or after it (offset 500)")


# ---- kafka-python ------------------------------------------------------------------

def mode_python(b):
    try:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition
        import kafka.codec as codec
    except ImportError:
        print("SKIP: python3 module kafka (Debian python3-kafka) is not installed")
        raise SystemExit(77)
    have = {"gzip": codec.has_gzip(), "snappy": codec.has_snappy(), "lz4": codec.has_lz4(),
            "zstd": codec.has_zstd()}
    n = 5000
    for name, present in have.items():
        if not present:
            print("skip: kafka-python has no %s codec library here (Debian python3-%s "
                  "not installed); not tested" % (name, name), flush=True)
            continue
        topic = "kp-" + name
        create_topic(b, topic)
        prod = KafkaProducer(bootstrap_servers="127.0.0.1:%d" % b.port, acks="all",
                             compression_type=name, linger_ms=5, request_timeout_ms=20000)
        futs = [prod.send(topic, key=b"k%d" % i, value=b"value-%d" % i, partition=0,
                          headers=[("h", b"%d" % i)]) for i in range(n)]
        prod.flush(30)
        offs = [f.get(timeout=30).offset for f in futs]
        prod.close(10)
        if offs != list(range(n)):
            fail("%s: acknowledged offsets %r..." % (name, offs[:10]))
        cons = KafkaConsumer(bootstrap_servers="127.0.0.1:%d" % b.port, enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=5000)
        tp = TopicPartition(topic, 0)
        cons.assign([tp])
        cons.seek(tp, 1000)
        got = []
        for m in cons:
            got.append(m)
            if len(got) == n - 1000:
                break
        cons.close()
        want = [(1000 + i, b"k%d" % (1000 + i), b"value-%d" % (1000 + i)) for i in range(n - 1000)]
        if [(m.offset, m.key, m.value) for m in got] != want:
            fail("%s: consumer read %d records, first %r" % (name, len(got), got[:2]))
        if got[0].headers != [("h", b"1000")]:
            fail("%s: headers %r" % (name, got[0].headers))
        ok("kafka-python acks=all %s: %d records acknowledged at 0..%d, read back "
           "from a seek to 1000 with keys and headers" % (name, n, n - 1))


# ---- durability ------------------------------------------------------------------

def mode_durability(b):
    create_topic(b, "dur")
    acked = {}  # base offset -> list of values
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def producer(worker):
        # each worker keeps up to 4 requests in flight on its own connection
        try:
            c = it.Conn(b.port, timeout=10)
        except OSError:
            return
        seq = 0
        inflight = []
        try:
            while not stop.is_set() or inflight:
                while len(inflight) < 4 and not stop.is_set():
                    vals = [b"w%d-%d" % (worker, seq + i) for i in range(20)]
                    seq += 20
                    c.send(0, 7, it.produce_body("dur", 0, it.batch(vals), acks=-1))
                    inflight.append(vals)
                if not inflight:
                    break
                _, body = c.recv()
                vals = inflight.pop(0)
                err, base, _ = it.parse_produce(body)
                if err:
                    errors.append(err)
                    continue
                with lock:
                    acked[base] = vals
        except (OSError, EOFError, struct.error):
            pass  # the broker died: whatever was not answered is not acknowledged

    threads = [threading.Thread(target=producer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    b.kill()
    stop.set()
    for t in threads:
        t.join(15)
    if errors:
        fail("produce errors before the kill: %r" % errors[:5])
    n_acked = sum(len(v) for v in acked.values())
    if n_acked < 100:
        fail("only %d records acknowledged before the kill" % n_acked)
    ok("%d records in %d batches acknowledged before SIGKILL" % (n_acked, len(acked)))

    b.start()
    c = it.Conn(b.port)
    recs = it.read_all(c, "dur", 0)
    c.close()
    offsets = [r[0] for r in recs]
    if offsets != list(range(len(recs))):
        fail("offsets after restart are not 0..n-1")
    by_off = {r[0]: r[2] for r in recs}
    values = [r[2] for r in recs]
    if len(set(values)) != len(values):
        fail("duplicate values after restart")
    for base, vals in acked.items():
        for i, v in enumerate(vals):
            if by_off.get(base + i) != v:
                fail("acknowledged record %r at offset %d is missing after restart (found %r)" %
                     (v, base + i, by_off.get(base + i)))
    # per-worker order: sequence numbers increase along the log
    last = {}
    for v in values:
        w, s = v.decode().lstrip("w").split("-")
        if int(s) <= last.get(w, -1):
            fail("worker %s records out of order at %r" % (w, v))
        last[w] = int(s)
    ok("after restart all %d acknowledged records are there exactly once, in order "
       "(%d records in the log)" % (n_acked, len(recs)))


# ---- bad input -------------------------------------------------------------------

def mode_badinput(b):
    create_topic(b, "bad")
    create_topic(b, "small")
    c = it.Conn(b.port)
    # max.message.bytes=1000 on "small" through AlterConfigs v0
    body = (struct.pack(">i", 1) + struct.pack(">b", 2) + it.kstr("small") + struct.pack(">i", 1) +
            it.kstr("max.message.bytes") + it.kstr("1000") + b"\x00")
    c.call(33, 0, body)

    err, base, ls = it.produce(c, "bad", 0, it.batch([b"a", b"b", b"c"]))
    if (err, base, ls) != (0, 0, 0):
        fail("good batch: %r" % ((err, base, ls),))
    before = it.list_offsets(c, "bad", 0, -1)
    good = bytearray(it.batch([b"d", b"e"]))
    good[30] ^= 0x01  # inside the CRC-covered area
    r = it.produce(c, "bad", 0, bytes(good))
    if r[0] != 2:
        fail("corrupt batch: %r, want CORRUPT_MESSAGE (2)" % (r,))
    after = it.list_offsets(c, "bad", 0, -1)
    if before != after or after[2] != 3:
        fail("log changed by a corrupt batch: %r -> %r" % (before, after))
    ok("flipped CRC -> CORRUPT_MESSAGE, latest offset stays %d" % after[2])

    r = it.produce(c, "small", 0, it.batch([b"x" * 2000]))
    if r[0] != 10:
        fail("oversized batch: %r, want MESSAGE_TOO_LARGE (10)" % (r,))
    r = it.produce(c, "bad", 0, it.batch([b"x" * 1100000]))
    if r[0] != 10:
        fail("batch over message.max.bytes: %r, want 10" % (r,))
    ok("batch over max.message.bytes (topic and broker default) -> MESSAGE_TOO_LARGE")
    r = it.produce(c, "bad", 0, it.batch([b"1"]) + it.batch([b"2"]))
    if r[0] != 87:
        fail("two batches: %r, want INVALID_RECORD (87)" % (r,))
    r = it.produce(c, "bad", 0, b"")
    if r[0] != 87:
        fail("empty records: %r, want 87" % (r,))
    r = it.produce(c, "nope", 0, it.batch([b"1"]))
    if r[0] != 3:
        fail("unknown topic: %r, want 3" % (r,))
    r = it.produce(c, "bad", 7, it.batch([b"1"]))
    if r[0] != 3:
        fail("unknown partition: %r, want 3" % (r,))
    r = it.parse_produce(c.call(0, 7, it.produce_body("bad", 0, it.batch([b"1"]), acks=2)))
    if r[0] != 21:
        fail("acks=2: %r, want INVALID_REQUIRED_ACKS (21)" % (r,))
    zstd = bytearray(it.batch([b"z"]))
    zstd[22] |= 4  # attributes low byte: codec zstd (header check happens before the CRC)
    r = it.parse_produce(c.call(0, 6, it.produce_body("bad", 0, bytes(zstd))), 6)
    if r[0] != 76:
        fail("zstd on Produce v6: %r, want 76" % (r,))
    ok("two batches / empty -> 87, unknown topic/partition -> 3, acks=2 -> 21, "
       "zstd below v7 -> 76")

    # Produce v0-v2 are advertised (librdkafka gates gzip/snappy/lz4 on the
    # range containing v0): a v0/v1 request with a MessageSet v0 record gets
    # UNSUPPORTED_FOR_MESSAGE_FORMAT in the v0/v1 response layout.
    value = b"old"
    msg = struct.pack(">bbi", 0, 0, -1) + struct.pack(">i", len(value)) + value  # magic 0
    msg = struct.pack(">I", zlib.crc32(msg)) + msg
    mset = struct.pack(">qi", 0, len(msg)) + msg
    for ver in (0, 1):
        rb = c.call(0, ver, it.produce_body("bad", 0, mset)[2:])  # v0-v2: no transactional_id
        p = 4 + 2 + len("bad") + 4
        _, err, base = struct.unpack_from(">ihq", rb, p)
        want_len = p + 14 + (4 if ver >= 1 else 0)  # v1 adds throttle_time_ms
        if err != 43 or len(rb) != want_len:
            fail("Produce v%d with a magic-0 MessageSet: error %d, %d bytes; want 43, %d bytes" %
                 (ver, err, len(rb), want_len))
    ok("Produce v0/v1 with a MessageSet v0 record -> 43 in the v0/v1 response layout")

    # acks=0: no response; the next request's response comes next
    c.send(0, 7, it.produce_body("bad", 0, it.batch([b"quiet"]), acks=0))
    e, ts, off = it.list_offsets(c, "bad", 0, -1)
    deadline = time.time() + 5
    while off != 4 and time.time() < deadline:
        time.sleep(0.05)
        e, ts, off = it.list_offsets(c, "bad", 0, -1)
    if off != 4:
        fail("acks=0 produce not stored: latest %d" % off)
    ok("acks=0 produce stored without a response")

    err, hw, recs = it.fetch(c, "bad", 0, 99)
    if err != 1:
        fail("fetch past the end: error %d, want OFFSET_OUT_OF_RANGE (1)" % err)
    err, hw, recs = it.fetch(c, "bad", 0, 4)
    if err or hw != 4 or recs:
        fail("fetch at the end: %r" % ((err, hw, recs),))
    t0 = time.time()
    err, hw, recs = it.fetch(c, "bad", 0, 4, max_wait=400)
    if err or recs or time.time() - t0 < 0.3:
        fail("long poll at the end answered early: %r after %.3f s" % ((err, hw), time.time() - t0))
    ok("fetch out of range -> 1; at the end empty; long poll waits max_wait_ms")

    # a parked fetch wakes when data arrives
    c2 = it.Conn(b.port)
    res = {}

    def waiter():
        t = time.time()
        res["r"] = it.fetch(c2, "bad", 0, 4, max_wait=10000)
        res["t"] = time.time() - t
    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(0.3)
    it.produce(c, "bad", 0, it.batch([b"wake"]))
    th.join(15)
    vals = [v for _, _, v in it.parse_batches(res["r"][2])]
    if vals != [b"wake"] or res["t"] > 5:
        fail("parked fetch: %r after %.2f s" % (res, res.get("t", -1)))
    ok("a parked fetch is answered when data arrives (%.2f s)" % res["t"])

    e, ts, off = it.list_offsets(c, "bad", 0, -2)
    if (e, off) != (0, 0):
        fail("earliest: %r" % ((e, ts, off),))
    # DeleteRecords v1 below offset 2, then past the high watermark
    def delete_records(offset):
        body = (struct.pack(">i", 1) + it.kstr("bad") + struct.pack(">iiq", 1, 0, offset) +
                struct.pack(">i", 5000))
        rb = c.call(21, 1, body)
        p = 4 + 4 + 2 + 3 + 4
        _, low, err = struct.unpack_from(">iqh", rb, p)
        return err, low
    if delete_records(2) != (0, 2):
        fail("DeleteRecords 2")
    if delete_records(99)[0] != 1:
        fail("DeleteRecords past the hw: want OFFSET_OUT_OF_RANGE")
    if it.list_offsets(c, "bad", 0, -2)[2] != 2:
        fail("earliest after DeleteRecords")
    if it.fetch(c, "bad", 0, 0)[0] != 1:
        fail("fetch below the log start: want 1")
    recs = it.read_all(c, "bad", 0, 2)
    if [r[0] for r in recs] != [2, 3, 4] or recs[0][2] != b"c":
        fail("records after DeleteRecords: %r" % recs)
    ok("DeleteRecords moves the log start (earliest = 2), past hw -> 1")
    c2.close()

    # a slow reader with a small receive buffer: the socket fills, so the
    # records go partly by sendfile and partly through the bounce path
    create_topic(b, "slow")
    vals = [(b"%06d" % i) * 10000 for i in range(64)]  # 60 KB records, ~3.8 MB
    for i in range(0, 64, 8):
        it.produce(c, "slow", 0, it.batch(vals[i:i + 8]))
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", b.port))
    slow.settimeout(30)
    sc = it.Conn.__new__(it.Conn)
    sc.s, sc.corr = slow, 0
    body = struct.pack(">iiiib", -1, 0, 1, 64 << 20, 0)
    body += struct.pack(">i", 1) + it.kstr("slow") + struct.pack(">iiqi", 1, 0, 0, 8 << 20)
    for _ in range(3):
        sc.send(1, 4, body)  # pipelined: later responses wait behind the first
    time.sleep(0.5)
    for _ in range(3):
        _, rb = sc.recv()
        got = [v for _, _, v in it.parse_batches(rb[4 + 4 + 2 + 4 + 4 + 4 + 2 + 8 + 8 + 4 + 4:])]
        if got != vals:
            fail("slow reader got %d records" % len(got))
        time.sleep(0.1)
    slow.close()
    ok("a slow reader with a 4 KiB receive buffer gets 3 pipelined 3.8 MB fetches intact")
    c.close()


# ---- restart -------------------------------------------------------------------

def mode_restart(b):
    if not shutil.which("kcat"):
        print("SKIP: kcat not installed")
        raise SystemExit(77)
    create_topic(b, "rs", 3)
    data = b"".join(b"%d:value-%d\n" % (i, i) for i in range(30000))
    kcat(b, ["-P", "-t", "rs", "-K", ":", "-z", "lz4"], stdin=data)
    # a small segment size would be the topic's; the broker default rolls at 1 GiB
    before = {}
    c = it.Conn(b.port)
    for p in range(3):
        before[p] = it.list_offsets(c, "rs", p, -1)[2]
    c.close()
    if sum(before.values()) != 30000:
        fail("latest offsets %r do not add up to 30000" % before)
    rc = b.stop()
    if rc != 0:
        b.dump()
        fail("SIGTERM exit status %d" % rc)
    ok("SIGTERM -> exit 0")
    b.start()
    got = kcat(b, ["-C", "-t", "rs", "-o", "beginning", "-e", "-q", "-f", "%k:%s\n"])
    lines = sorted(got.split(b"\n")[:-1], key=lambda l: int(l.split(b":")[0]))
    if lines != data.split(b"\n")[:-1]:
        fail("after restart consumed %d records" % len(lines))
    c = it.Conn(b.port)
    after = {p: it.list_offsets(c, "rs", p, -1)[2] for p in range(3)}
    c.close()
    if after != before:
        fail("latest offsets changed across the restart: %r -> %r" % (before, after))
    with open(b.log_path, "rb") as f:
        log = f.read().decode(errors="replace")
    if "full recovery" in log or "truncat" in log:
        fail("a clean stop was followed by recovery: see the log")
    ok("after restart all 30000 records (3 partitions) are consumed, offsets unchanged")


# ---- idempotence -----------------------------------------------------------------

def mode_idempotence(b):
    create_topic(b, "idem")
    c = it.Conn(b.port)
    pid = 4242

    def send(seq, vals, epoch=0):
        return it.produce(c, "idem", 0, it.batch(vals, pid=pid, epoch=epoch, seq=seq))[:2]

    if send(0, [b"a", b"b"]) != (0, 0) or send(2, [b"c"]) != (0, 2):
        fail("first idempotent batches")
    if send(0, [b"a", b"b"]) != (0, 0):
        fail("retry of an older cached batch must answer its original offset 0")
    if send(2, [b"c"]) != (0, 2):
        fail("retry of the newest batch must answer its original offset 2")
    if send(5, [b"gap"])[0] != 45:
        fail("sequence gap must be OUT_OF_ORDER_SEQUENCE_NUMBER (45)")
    if it.list_offsets(c, "idem", 0, -1)[2] != 3:
        fail("duplicates or rejected batches reached the log")
    ok("retries answer the original offset without appending; a gap -> 45")
    if send(3, [b"d"], epoch=1)[0] != 45:
        fail("a new epoch must start at sequence 0")
    if send(0, [b"d"], epoch=1) != (0, 3):
        fail("new epoch from 0")
    if send(4, [b"old"], epoch=0)[0] != 47:
        fail("stale epoch must be INVALID_PRODUCER_EPOCH (47)")
    ok("new epoch must start at 0; stale epoch -> 47")
    c.close()
    if b.stop() != 0:
        fail("SIGTERM exit status")
    b.start()
    c = it.Conn(b.port)
    if send(0, [b"d"], epoch=1) != (0, 3):
        fail("after restart a retry must still answer offset 3 (state rebuilt from the log)")
    if send(1, [b"e"], epoch=1) != (0, 4):
        fail("after restart the next sequence continues")
    c.close()
    ok("producer state rebuilt from the log after a restart")

    if shutil.which("kcat"):
        n = 20000
        data = b"".join(b"v%d\n" % i for i in range(n))
        kcat(b, ["-P", "-t", "idem-kcat", "-p", "0", "-X", "enable.idempotence=true", "-z", "lz4"],
             stdin=data)
        got = kcat(b, ["-C", "-t", "idem-kcat", "-p", "0", "-o", "beginning", "-e", "-q"])
        if got != data:
            fail("kcat idempotent round trip: %d bytes vs %d" % (len(got), len(data)))
        ok("kcat -X enable.idempotence=true: %d records round-trip" % n)


MODES = {"kcat": mode_kcat, "python": mode_python, "durability": mode_durability,
         "badinput": mode_badinput, "restart": mode_restart, "idempotence": mode_idempotence}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in MODES:
        print(__doc__)
        return 2
    exe, mode = sys.argv[1], sys.argv[2]

    def body(tmp):
        b = it.Broker(exe, tmp, overrides={"num.partitions": 1})
        MODES[mode](b)
        b.stop_ok()
    it.run("strata-data-", body, keep_tmp_on_fail=True)
    print("PASS: %s" % mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
