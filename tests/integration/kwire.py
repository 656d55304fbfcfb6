"""Minimal Kafka wire helpers for the integration tests (Python stdlib only).

RecordBatch v2 encoding/decoding (uncompressed), CRC-32C, and the Produce v7,
Fetch v4, ListOffsets v1, DeleteRecords v1 and Metadata v1 requests the tests
send over a raw socket. Layouts follow shared/kafka-protocol/reference.md.
"""
import socket
import struct
import time

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
    """Yields (offset, key, value) for every record of whole batches in data."""
    p = 0
    while p + 12 <= len(data):
        base, blen = struct.unpack_from(">qi", data, p)
        end = p + 12 + blen
        if end > len(data):
            break
        attrs = struct.unpack_from(">h", data, p + 21)[0]
        if attrs & 0x07:
            raise ValueError("compressed batch in parse_batches")
        count = struct.unpack_from(">i", data, p + 57)[0]
        q = p + 61
        for _ in range(count):
            ln, q = read_varint(data, q)
            rend = q + ln
            q += 1
            _, q = read_varint(data, q)
            od, q = read_varint(data, q)
            kl, q = read_varint(data, q)
            key = None if kl < 0 else data[q:q + kl]
            q += max(kl, 0)
            vl, q = read_varint(data, q)
            val = None if vl < 0 else data[q:q + vl]
            q = rend
            if not attrs & 0x20:
                yield base + od, key, val
        p = end


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class Conn:
    def __init__(self, port, timeout=30):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.corr = 0

    def close(self):
        self.s.close()

    def send(self, key, ver, body):
        self.corr += 1
        hdr = struct.pack(">hhih", key, ver, self.corr, 2) + b"it"
        msg = hdr + body
        self.s.sendall(struct.pack(">i", len(msg)) + msg)
        return self.corr

    def recv(self):
        n = struct.unpack(">i", self._exact(4))[0]
        b = self._exact(n)
        return struct.unpack_from(">i", b)[0], b[4:]

    def _exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            c = self.s.recv(n - len(buf))
            if not c:
                raise EOFError("connection closed")
            buf += c
        return bytes(buf)

    def call(self, key, ver, body):
        corr = self.send(key, ver, body)
        rc, b = self.recv()
        if rc != corr:
            raise AssertionError("correlation id %d, expected %d" % (rc, corr))
        return b


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
    """Every (offset, key, value) from start to the high watermark."""
    out = []
    off = start
    while True:
        err, hw, recs = fetch(conn, topic, partition, off)
        if err:
            raise AssertionError("fetch error %d at %d" % (err, off))
        got = [r for r in parse_batches(recs) if r[0] >= off]
        out += got
        if got:
            off = got[-1][0] + 1
        if off >= hw:
            return out
        if not got:
            raise AssertionError("fetch at %d below hw %d returned nothing" % (off, hw))


def metadata(conn, topics):
    """Metadata v1 for topics (auto-creates with the broker default)."""
    body = struct.pack(">i", len(topics)) + b"".join(kstr(t) for t in topics)
    return conn.call(3, 1, body)
