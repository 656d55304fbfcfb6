"""Shared pieces of the integration tests (Python stdlib only).

Every test in this folder imports it after putting its own directory first on
sys.path:

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import strata_it as it  # noqa: E402

What is here:
  reporting   fail(), ok(), expect()
  the broker  free_port(), Broker (start on a free loopback port with a temp
              data dir and --override settings, wait for the port, stop by pid
              with SIGTERM, SIGKILL, read/dump the log), run() (temp dir, clean
              up, log on failure), kcat()
  cluster     ZooKeeper (a standalone server on a free port, skip 77 without
              java; stop() / start() restart it on the same port and data),
              cluster_overrides() (metadata.store=zookeeper keys), start_cluster(),
              bootstrap(), create_topic_rf(), partition_states(), wait_until(),
              partition_log_bytes()
  raw wire    frame(), request(), read_response(), Rd, expect_closed(),
              Conn; RecordBatch v2 encode/decode (CRC-32C, varints, gzip
              batches in records()); Produce v7, Fetch v4, ListOffsets v1,
              Metadata v0-6, CreateTopics v0
Layouts follow shared/kafka-protocol/reference.md.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

# What ApiVersions must advertise (key: (min, max)).
EXPECTED_APIS = {0: (0, 7), 1: (4, 11), 2: (1, 3), 3: (0, 6), 8: (2, 7), 9: (1, 5), 10: (0, 2),
                 11: (0, 5), 12: (0, 3), 13: (0, 3), 14: (0, 3), 15: (0, 4), 16: (0, 2),
                 18: (0, 3), 19: (0, 4), 20: (0, 3), 21: (0, 1), 22: (0, 1), 23: (2, 3),
                 32: (0, 2), 33: (0, 1), 37: (0, 1), 42: (0, 1), 47: (0, 0)}


# ---- reporting -------------------------------------------------------------------

def fail(msg):
    print("FAIL: " + msg, flush=True)
    raise SystemExit(1)


def ok(*parts):
    """Prints 'ok: <parts>' (print() spacing) and flushes."""
    print("ok:", *parts, flush=True)


def expect(what, got, want):
    if got != want:
        fail("%s: got %r, want %r" % (what, got, want))
    text = repr(got)
    ok("%s -> %s" % (what, text if len(text) < 160 else text[:150] + "..."))


def skip(msg):
    """Prints 'SKIP: msg' and exits 77 (ctest SKIP_RETURN_CODE)."""
    print("SKIP: " + msg, flush=True)
    raise SystemExit(77)


# ---- the broker ------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


_started = []  # every Broker made, for run()'s clean-up


class Broker:
    """stratad on 127.0.0.1:<free port>, data in <tmp>/data, log in <tmp>/stratad.log
    (appended across restarts). overrides: dict or (key, value) pairs given as
    --override key=value after listeners and log.dirs."""

    def __init__(self, exe, tmp, overrides=(), port=None):
        self.exe, self.tmp = exe, tmp
        self.overrides = list(overrides.items()) if isinstance(overrides, dict) else list(overrides)
        self.port = port or free_port()
        self.log_path = os.path.join(tmp, "stratad.log")
        self.log = None
        self.proc = None
        self.dumped = False
        _started.append(self)
        self.start()

    def start(self):
        self.log = open(self.log_path, "ab")
        args = [self.exe,
                "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
                "--override", "log.dirs=%s" % os.path.join(self.tmp, "data")]
        for k, v in self.overrides:
            args += ["--override", "%s=%s" % (k, v)]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.dump()
                fail("stratad exited early with %d" % self.proc.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.dump()
        fail("stratad did not start listening")

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def read_log(self):
        if self.log and not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def dump(self, limit=20000):
        """Writes the last `limit` characters of the log to stdout."""
        self.dumped = True
        sys.stdout.write(self.read_log()[-limit:])
        sys.stdout.flush()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM by pid; returns the exit status (fails after 20 s)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.dump()
            fail("stratad did not stop within 20 s of SIGTERM")
        self.log.close()
        return rc

    def stop_ok(self, what="stratad"):
        """stop(), failing unless the exit status is 0."""
        rc = self.stop()
        if rc != 0:
            self.dump()
            fail("%s exited %d after SIGTERM (want 0)" % (what, rc))

    def kill(self):
        """SIGKILL by pid and reap."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=15)
        self.log.close()


ZK_CLASSPATH = "/usr/share/java/zookeeper.jar:/usr/share/java/*"
ZK_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"


class ZooKeeper:
    """A standalone ZooKeeper server (Debian's `zookeeper` package, run with
    java ... ZooKeeperServerMain <port> <dir>) on 127.0.0.1:<free port>, data
    in <tmp>/zk, log in <tmp>/zk.log. Exits 77 (skip) when java or the jar is
    missing or the server does not come up within 30 s. Stopped by pid;
    run() kills it like a Broker."""

    def __init__(self, tmp):
        java = shutil.which("java")
        if not java or not os.path.exists("/usr/share/java/zookeeper.jar"):
            skip("needs java and /usr/share/java/zookeeper.jar (Debian's zookeeper package: "
                 "bash scripts/deps.sh)")
        self.java = java
        self.port = free_port()
        self.dir = os.path.join(tmp, "zk")
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(tmp, "zk.log")
        self.dumped = False
        self.start()
        _started.insert(0, self)

    def start(self):
        """Starts the server (same port and data dir after a stop) and waits for ruok."""
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.java, "-Xmx256m", "-Dzookeeper.admin.enableServer=false",
             "-Dzookeeper.4lw.commands.whitelist=ruok", "-cp", ZK_CLASSPATH, ZK_MAIN,
             str(self.port), self.dir],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                skip("ZooKeeper exited with %d at start: %s" % (self.proc.returncode,
                                                               self.read_log()[-500:]))
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                s.sendall(b"ruok")
                answer = s.recv(4)
                s.close()
                if answer == b"imok":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.proc.kill()
        skip("ZooKeeper did not answer ruok within 30 s")

    @property
    def connect(self):
        return "127.0.0.1:%d" % self.port

    def read_log(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def dump(self, limit=5000):
        self.dumped = True
        sys.stdout.write(self.read_log()[-limit:])

    def running(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGKILL by pid (ZooKeeper's data is fsynced per transaction) and reap."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=15)
        self.log.close()


def cluster_overrides(zk, node_id, rack=None, chroot="", extra=()):
    """--override pairs for a cluster-mode broker (metadata.store=zookeeper)."""
    o = [("metadata.store", "zookeeper"), ("zookeeper.connect", zk.connect + chroot),
         ("broker.id", str(node_id)), ("admin.listener", "127.0.0.1:%d" % free_port()),
         ("zookeeper.session.timeout.ms", "6000")]
    if rack:
        o.append(("broker.rack", rack))
    return o + list(extra)


def start_cluster(exe, tmp, zk, chroot, ids=(1, 2, 3), extra=()):
    """Brokers with the given ids in <tmp>/b<id> (data in <tmp>/b<id>/data),
    cluster_overrides() + extra; returns {id: Broker}."""
    brokers = {}
    for i in ids:
        d = os.path.join(tmp, "b%d" % i)
        os.makedirs(d, exist_ok=True)
        brokers[i] = Broker(exe, d, cluster_overrides(zk, i, chroot=chroot, extra=extra))
    return brokers


def bootstrap(brokers):
    """"host:port,..." of every broker of {id: Broker}."""
    return ",".join(b.addr for b in brokers.values())


def create_topic_rf(b, name, partitions, rf, configs=()):
    """CreateTopics v0 on broker b with a replication factor and (key, value)
    configs; returns the topic's error code."""
    body = (struct.pack(">i", 1) + kstr(name) + struct.pack(">ihi", partitions, rf, 0) +
            struct.pack(">i", len(configs)) +
            b"".join(kstr(k) + kstr(v) for k, v in configs) + struct.pack(">i", 20000))
    c = Conn(b.port)
    try:
        r = Rd(c.call(19, 0, body))
    finally:
        c.close()
    if r.i32() != 1:
        fail("CreateTopics v0: not one topic in the answer")
    r.string()
    return r.i16()


def partition_states(brokers, topic):
    """{partition: (leader, sorted ISR, replicas in assignment order)} of
    topic as the first answering live broker of {id: Broker} sees it
    (Metadata v5), or None when none answers with the topic."""
    for b in brokers.values():
        if not b.running():
            continue
        try:
            s = b.connect()
            try:
                t = metadata(s, 5, 1, [topic], allow_auto=False)["topics"].get(topic)
            finally:
                s.close()
        except OSError:
            continue
        if t and t[0] == 0 and t[1]:
            return {p[1]: (p[2], sorted(p[4]), p[3]) for p in t[1]}
    return None


def wait_until(what, fn, timeout=40, step=0.2):
    """Calls fn() every step s until it returns something true (an OSError
    counts as not yet); returns that and prints how long it took. fail()s
    after timeout s."""
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        try:
            last = fn()
        except OSError as e:
            last = e
        if last and not isinstance(last, OSError):
            print("  (%s: %.1f s)" % (what, time.time() - t0), flush=True)
            return last
        time.sleep(step)
    fail("%s: not within %d s (last: %r)" % (what, timeout, last))


def partition_log_bytes(tmp, broker_id, topic, partition=0):
    """The concatenated segment files (.log) of topic-partition on the broker
    start_cluster() made in <tmp>/b<broker_id>."""
    d = os.path.join(tmp, "b%d" % broker_id, "data", "%s-%d" % (topic, partition))
    out = b""
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if name.endswith(".log"):
            with open(os.path.join(d, name), "rb") as f:
                out += f.read()
    return out


def run(prefix, body, keep_tmp_on_fail=False):
    """Makes a temp dir, returns body(tmp) (None counts as 0). Whatever happens,
    SIGKILLs every Broker still running; on failure prints the log of the last
    one started (unless already printed) and, with keep_tmp_on_fail, keeps the
    temp dir; otherwise removes it."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    del _started[:]
    passed = False
    try:
        rc = body(tmp)
        passed = True
        return rc or 0
    finally:
        for b in _started:
            if b.running():
                b.proc.kill()
                b.proc.wait(timeout=15)
        if not passed and _started and not _started[-1].dumped:
            print("---- stratad log ----")
            _started[-1].dump()
        if passed or not keep_tmp_on_fail:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("data kept in %s" % tmp)


def stratad_arg(usage):
    """The STRATAD path from argv[1] (prints usage and exits 2 without it)."""
    if len(sys.argv) < 2:
        print(usage)
        raise SystemExit(2)
    exe = os.path.abspath(sys.argv[1])
    if not os.access(exe, os.X_OK):
        fail("%s is not executable (build first)" % exe)
    return exe


def kcat(b, args, stdin=None, timeout=120):
    """kcat -b <broker> args...; fails (with the log) on timeout or a non-zero exit."""
    cmd = ["kcat", "-b", b.addr] + args
    try:
        r = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        b.dump()
        fail("%s timed out" % " ".join(cmd))
    if r.returncode != 0:
        b.dump()
        fail("%s exited %d: %s" % (" ".join(cmd), r.returncode, r.stderr.decode(errors="replace")))
    return r.stdout


# ---- raw frames ------------------------------------------------------------------

def frame(body):
    return struct.pack(">i", len(body)) + body


def request(key, ver, corr, body=b"", client_id=b"it", flexible=False):
    hdr = struct.pack(">hhih", key, ver, corr, len(client_id)) + client_id
    if flexible:
        hdr += b"\x00"  # empty header tag buffer
    return frame(hdr + body)


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def read_response(sock):
    (n,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, n)


class Rd:
    """Reads a response body; fail()s on truncation."""

    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, n):
        if self.p + n > len(self.b):
            fail("response truncated: wanted %d at %d of %d" % (n, self.p, len(self.b)))
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def i8(self): return struct.unpack(">b", self.take(1))[0]
    def i16(self): return struct.unpack(">h", self.take(2))[0]
    def i32(self): return struct.unpack(">i", self.take(4))[0]
    def i64(self): return struct.unpack(">q", self.take(8))[0]
    def boolean(self): return self.take(1)[0] != 0

    def uvarint(self):
        v = shift = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7f) << shift
            shift += 7
            if not b & 0x80:
                return v

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def done(self):
        if self.p != len(self.b):
            fail("%d trailing bytes in response" % (len(self.b) - self.p))


def expect_closed(sock, what, timeout=5.0):
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        data = b""
    except socket.timeout:
        fail("%s: broker kept the connection open" % what)
    if data:
        fail("%s: expected the connection closed, got %r" % (what, data[:40]))
    sock.close()
    ok("%s -> connection closed" % what)


class Conn:
    """A client connection with correlation ids: call() = send() + recv()."""

    def __init__(self, port, timeout=30):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.corr = 0

    def close(self):
        self.s.close()

    def send(self, key, ver, body):
        self.corr += 1
        self.s.sendall(request(key, ver, self.corr, body))
        return self.corr

    def recv(self):
        b = read_response(self.s)
        return struct.unpack_from(">i", b)[0], b[4:]

    def call(self, key, ver, body):
        corr = self.send(key, ver, body)
        rc, b = self.recv()
        if rc != corr:
            raise AssertionError("correlation id %d, expected %d" % (rc, corr))
        return b


# ---- Metadata ----------------------------------------------------------------------

def parse_metadata(v, body):
    r = Rd(body)
    out = {}
    if v >= 3:
        r.i32()
    brokers = []
    for _ in range(r.i32()):
        node, host, port = r.i32(), r.string(), r.i32()
        if v >= 1:
            r.string()
        brokers.append((node, host, port))
    out["brokers"] = brokers
    if v >= 2:
        out["cluster"] = r.string()
    if v >= 1:
        out["controller"] = r.i32()
    topics = {}
    for _ in range(r.i32()):
        err, name = r.i16(), r.string()
        if v >= 1:
            r.i8()
        parts = []
        for _ in range(r.i32()):
            perr, idx, leader = r.i16(), r.i32(), r.i32()
            reps = [r.i32() for _ in range(r.i32())]
            isr = [r.i32() for _ in range(r.i32())]
            if v >= 5:
                [r.i32() for _ in range(r.i32())]
            parts.append((perr, idx, leader, reps, isr))
        topics[name] = (err, parts)
    out["topics"] = topics
    r.done()
    return out


def metadata(s, v, corr, topics, allow_auto=True):
    """Metadata vN on socket s; topics None = all. Returns parse_metadata()'s dict."""
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics)) + b"".join(kstr(t) for t in topics)
    if v >= 4:
        body += b"\x01" if allow_auto else b"\x00"
    s.sendall(request(3, v, corr, body))
    resp = read_response(s)
    (c,) = struct.unpack(">i", resp[:4])
    if c != corr:
        fail("Metadata v%d: correlation id %d != %d" % (v, c, corr))
    return parse_metadata(v, resp[4:])


def create_topic(b, name, partitions=1):
    """CreateTopics v0, replication factor 1 (the response is not checked)."""
    c = Conn(b.port)
    body = (struct.pack(">i", 1) + kstr(name) + struct.pack(">ihi", partitions, 1, 0) +
            struct.pack(">i", 0) + struct.pack(">i", 10000))
    c.call(19, 0, body)
    c.close()


# ---- RecordBatch v2 ----------------------------------------------------------------

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def varint(n):
    n = zigzag(n) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(b, p):
    v = shift = 0
    while True:
        x = b[p]
        p += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            break
    return (v >> 1) ^ -(v & 1), p


def record(i, key, value, ts_delta=0):
    body = b"\x00" + varint(ts_delta) + varint(i)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(0)  # headers
    return varint(len(body)) + body


def batch(values, keys=None, ts=None, attributes=0, pid=-1, epoch=-1, seq=-1):
    """One uncompressed RecordBatch v2 (baseOffset 0; pid -1 unless given)."""
    ts = int(time.time() * 1000) if ts is None else ts
    recs = b"".join(record(i, keys[i] if keys else None, v) for i, v in enumerate(values))
    after_crc = struct.pack(">hiqqqhii", attributes, len(values) - 1, ts, ts, pid, epoch, seq,
                            len(values)) + recs
    crc = crc32c(after_crc)
    head = struct.pack(">ibI", 0, 2, crc)  # partitionLeaderEpoch, magic, crc
    body = head + after_crc
    return struct.pack(">qi", 0, len(body)) + body


def parse_batches(data):
    """Yields (offset, key, value) for every record of whole uncompressed batches in data."""
    for base, bb in split_batches(data):
        if batch_header(bb)["attributes"] & 0x07:
            raise ValueError("compressed batch in parse_batches")
        for r in batch_records(bb, check_crc=False):
            yield r["offset"], r["key"], r["value"]


def split_batches(data):
    """Yields (base_offset, whole batch bytes) for every complete batch in data."""
    p = 0
    while p + 12 <= len(data):
        base, blen = struct.unpack_from(">qi", data, p)
        end = p + 12 + blen
        if end > len(data):
            break
        yield base, data[p:end]
        p = end


def batch_header(bb):
    """The fields of a RecordBatch v2 header as a dict."""
    (base, blen, ple, magic, crc, attrs, lod, fts, mts, pid, epoch, seq,
     count) = struct.unpack_from(">qiibIhiqqqhii", bb, 0)
    return {"base_offset": base, "length": blen, "magic": magic, "crc": crc,
            "attributes": attrs, "last_offset_delta": lod, "first_timestamp": fts,
            "producer_id": pid, "producer_epoch": epoch, "base_sequence": seq,
            "count": count}


def records(data):
    """Yields batch_records() of every complete batch in data."""
    for _, bb in split_batches(data):
        yield from batch_records(bb)


def batch_records(bb, check_crc=True):
    """Yields one dict per record of one batch (uncompressed or gzip; other codecs
    raise): offset, timestamp, key, value, headers [(str, bytes)], and the batch's
    codec, producer_id, producer_epoch, base_sequence. Control batches yield nothing."""
    h = batch_header(bb)
    base = h["base_offset"]
    if h["magic"] != 2:
        raise ValueError("batch at %d: magic %d" % (base, h["magic"]))
    if check_crc and crc32c(bb[21:]) != h["crc"]:
        raise ValueError("batch at %d: bad CRC" % base)
    codec = h["attributes"] & 0x07
    body = bb[61:]
    if codec == 1:
        body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
    elif codec != 0:
        raise ValueError("batch at %d: codec %d not decoded here" % (base, codec))
    q = 0
    for _ in range(h["count"]):
        ln, q = read_varint(body, q)
        rend = q + ln
        q += 1  # attributes
        tsd, q = read_varint(body, q)
        od, q = read_varint(body, q)
        kl, q = read_varint(body, q)
        key = None if kl < 0 else bytes(body[q:q + kl])
        q += max(kl, 0)
        vl, q = read_varint(body, q)
        val = None if vl < 0 else bytes(body[q:q + vl])
        q += max(vl, 0)
        nh, q = read_varint(body, q)
        headers = []
        for _ in range(nh):
            hkl, q = read_varint(body, q)
            hk = bytes(body[q:q + hkl]).decode()
            q += hkl
            hvl, q = read_varint(body, q)
            hv = None if hvl < 0 else bytes(body[q:q + hvl])
            q += max(hvl, 0)
            headers.append((hk, hv))
        if q != rend:
            raise ValueError("record at %d: length %d, parsed %d" % (base + od, ln, q - rend + ln))
        if not h["attributes"] & 0x20:
            yield {"offset": base + od, "timestamp": h["first_timestamp"] + tsd, "key": key,
                   "value": val, "headers": headers, "codec": codec,
                   "producer_id": h["producer_id"], "producer_epoch": h["producer_epoch"],
                   "base_sequence": h["base_sequence"]}


# ---- Produce / Fetch / ListOffsets -------------------------------------------------

def produce_body(topic, partition, records, acks=-1, timeout_ms=30000):
    return (struct.pack(">hhi", -1, acks, timeout_ms) + struct.pack(">i", 1) + kstr(topic) +
            struct.pack(">ii", 1, partition) + struct.pack(">i", len(records)) + records)


def parse_produce(b, ver=7):
    """-> (error, base_offset, log_start) of the single partition."""
    p = 0
    nt = struct.unpack_from(">i", b, p)[0]
    p += 4
    assert nt == 1, nt
    ln = struct.unpack_from(">h", b, p)[0]
    p += 2 + ln
    np_ = struct.unpack_from(">i", b, p)[0]
    p += 4
    assert np_ == 1, np_
    _, err, base, _lat = struct.unpack_from(">ihqq", b, p)
    p += 22
    ls = -1
    if ver >= 5:
        ls = struct.unpack_from(">q", b, p)[0]
    return err, base, ls


def produce(conn, topic, partition, records, acks=-1):
    return parse_produce(conn.call(0, 7, produce_body(topic, partition, records, acks)))


def list_offsets(conn, topic, partition, ts):
    """ListOffsets v1 -> (error, timestamp, offset)."""
    body = struct.pack(">i", -1) + struct.pack(">i", 1) + kstr(topic) + struct.pack(">iiq", 1, partition, ts)
    b = conn.call(2, 1, body)
    p = 4
    ln = struct.unpack_from(">h", b, p)[0]
    p += 2 + ln + 4
    _, err, rts, off = struct.unpack_from(">ihqq", b, p)
    return err, rts, off


def fetch(conn, topic, partition, offset, max_bytes=1 << 20, max_wait=0, min_bytes=1):
    """Fetch v4 -> (error, high_watermark, records bytes)."""
    body = struct.pack(">iiiib", -1, max_wait, min_bytes, 64 << 20, 0)
    body += struct.pack(">i", 1) + kstr(topic) + struct.pack(">iiqi", 1, partition, offset, max_bytes)
    b = conn.call(1, 4, body)
    p = 4  # throttle
    nt = struct.unpack_from(">i", b, p)[0]
    p += 4
    assert nt == 1
    ln = struct.unpack_from(">h", b, p)[0]
    p += 2 + ln
    p += 4  # partitions count (1)
    _, err, hw, _lso = struct.unpack_from(">ihqq", b, p)
    p += 22
    na = struct.unpack_from(">i", b, p)[0]
    p += 4 + max(na, 0) * 16
    rl = struct.unpack_from(">i", b, p)[0]
    p += 4
    recs = b[p:p + rl] if rl > 0 else b""
    return err, hw, recs


def read_all(conn, topic, partition, start=0):
    """Every (offset, key, value) from start to the high watermark (uncompressed)."""
    out = []
    for _, bb in read_all_batches(conn, topic, partition, start):
        out += [r for r in parse_batches(bb) if r[0] >= start]
    return out


def read_all_batches(conn, topic, partition, start=0):
    """Every whole batch from start to the high watermark: [(base_offset, bytes)]."""
    out = []
    off = start
    while True:
        err, hw, recs = fetch(conn, topic, partition, off)
        if err:
            raise AssertionError("fetch error %d at %d" % (err, off))
        got = [(base, bb) for base, bb in split_batches(recs)
               if base + batch_header(bb)["last_offset_delta"] >= off]
        out += got
        if got:
            off = got[-1][0] + batch_header(got[-1][1])["last_offset_delta"] + 1
        if off >= hw:
            return out
        if not got:
            raise AssertionError("fetch at %d below hw %d returned nothing" % (off, hw))


def would_not_shrink(codec, bb):
    """kafka-python (DefaultRecordBatchBuilder._maybe_compress) and librdkafka
    (rd_kafka_msgset_writer_compress) send a batch uncompressed when
    compressing does not make it smaller. Is that why this stored plain batch
    is plain? Compressed with kafka-python's encoder, allowing 32 bytes for the
    writers' different frame options (content size, checksums): a batch worth
    compressing saves far more (a silent fallback on a real batch still fails)."""
    import kafka.codec as kcodec
    fn = {"gzip": kcodec.gzip_encode, "snappy": kcodec.snappy_encode,
          "lz4": kcodec.lz4_encode, "zstd": kcodec.zstd_encode}[codec]
    data = bb[61:]
    return len(fn(data)) + 32 >= len(data)
