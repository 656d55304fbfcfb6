#!/usr/bin/python3
"""The LoRaWAN gateway plugin inside stratad, fed by a scripted packet forwarder.

usage: test_plugin_lorawan.py STRATAD PLUGIN_BUILD_DIR NODE_DIR

Installs tests/integration/lorawan/package.json + package-lock.json (lora-packet
0.9.3) into NODE_DIR with `npm ci` (skipped when it is already there), and has
lorawan_frames.js build this run's frames with lora-packet: sensor-1 counters
1..3, sensor-2 across the 16-bit rollover (0xfffe, 0xffff, 0x10000, 0x10001),
a frame with a flipped MIC bit, and two frames for after the restart.

stratad runs with plugin.dir holding lorawan.so and one instance listening on
a free loopback UDP port (dedup.window.ms 5000: a frame's copies only need to
arrive within it, so a slow machine cannot split them). A gateway script (a UDP
socket per gateway EUI, GWMP v2 per Semtech's PROTOCOL.TXT) then:
  - sends PULL_DATA from both gateways: PULL_ACK with the same token;
  - sends every uplink from gateway A and again from gateway B (other RSSI /
    SNR), each PUSH_DATA answered by a PUSH_ACK carrying its token;
  - sends the bad-MIC frame, a frame from an unknown DevAddr, an rxpk with
    stat -1, a PUSH_DATA with broken JSON (still PUSH_ACKed), garbage
    datagrams (none answered: the next PULL_DATA's ACK is the next datagram
    the gateway receives), an older frame after a newer one (replay), and a
    frame of a finished window again (late duplicate).
The topic is read with kafka-python (raw Fetch when it is not installed):
exactly one record per uplink, keyed by device id, the payload lora-packet
encrypted, both gateways' metadata, the 32-bit counter, and the source offset
headers (<DevAddr>/<device id>, FCnt32). The instance's status (status.json)
counts every kind of bad input. A second instance with format=protobuf turns
an uplink into a telemetry Point (decoded here by hand: device_id, point,
bytes_value = the decrypted payload). Then one more uplink and SIGTERM while it is
inside its window (kept in the host's kv store, produced first after the
restart), restart: the plugin resumes above the last durable counters -- the
old frames re-sent are replays, the two new ones are produced, nothing twice. The broker is alive throughout and stops
with exit 0.

Exit 0 = pass, 1 = fail, 77 = skipped (node/npm missing, npm registry
unreachable, lorawan.so not built).
"""
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_DIR = os.path.join(HERE, "lorawan")
LORA_PACKET_VERSION = "0.9.3"
GW_A = bytes.fromhex("aa555a0000000001")
GW_B = bytes.fromhex("aa555a00000000b2")
TOPIC = "uplinks"
WINDOW_MS = 5000


def installed_version(node_dir):
    try:
        with open(os.path.join(node_dir, "node_modules", "lora-packet", "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def install(node_dir):
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        it.skip("node and npm are needed for lora-packet (the frame builder)")
    os.makedirs(node_dir, exist_ok=True)
    fresh = True
    for name in ("package.json", "package-lock.json"):
        src, dst = os.path.join(PKG_DIR, name), os.path.join(node_dir, name)
        with open(src, "rb") as f:
            want = f.read()
        if not os.path.exists(dst) or open(dst, "rb").read() != want:
            fresh = False
            shutil.copyfile(src, dst)
    if not (fresh and installed_version(node_dir) == LORA_PACKET_VERSION):
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=node_dir,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        out = r.stdout.decode(errors="replace")
        if r.returncode != 0:
            print(out)
            if any(s in out for s in ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT",
                                      "ENETUNREACH", "network", "fetch failed")):
                it.skip("npm ci could not reach the npm registry (lora-packet not installed)")
            it.fail("npm ci in %s exited %d" % (node_dir, r.returncode))
        if installed_version(node_dir) != LORA_PACKET_VERSION:
            it.fail("npm ci did not install lora-packet %s" % LORA_PACKET_VERSION)
    return node


def scenario(node, node_dir):
    env = dict(os.environ, NODE_PATH=os.path.join(node_dir, "node_modules"))
    r = subprocess.run([node, os.path.join(PKG_DIR, "lorawan_frames.js"), "scenario"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
    if r.returncode != 0:
        print(r.stderr.decode(errors="replace"))
        it.fail("lorawan_frames.js scenario exited %d" % r.returncode)
    return json.loads(r.stdout)


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Gateway:
    """One packet forwarder: its own UDP socket, GWMP v2."""

    def __init__(self, eui, port):
        self.eui, self.port = eui, port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.token = 0x1000 + eui[-1]

    def next_token(self):
        self.token = (self.token + 1) & 0xffff
        return struct.pack(">H", self.token)

    def send(self, data):
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def expect(self, token, ident, what):
        try:
            data, _ = self.sock.recvfrom(100)
        except socket.timeout:
            it.fail("%s: no answer from the plugin" % what)
        want = b"\x02" + token + bytes([ident])
        if data != want:
            it.fail("%s: got %s, want %s" % (what, data.hex(), want.hex()))

    def pull(self):
        tok = self.next_token()
        self.send(b"\x02" + tok + b"\x02" + self.eui)
        self.expect(tok, 0x04, "PULL_DATA %s" % self.eui.hex())

    def push(self, rxpk, what):
        tok = self.next_token()
        self.send(b"\x02" + tok + b"\x00" + self.eui + json.dumps({"rxpk": rxpk}).encode())
        self.expect(tok, 0x01, what)

    def push_raw_json(self, js, what):
        tok = self.next_token()
        self.send(b"\x02" + tok + b"\x00" + self.eui + js)
        self.expect(tok, 0x01, what)


def rxpk(phy_hex, rssi, lsnr, stat=1, tmst=1000):
    phy = bytes.fromhex(phy_hex)
    return {"time": "2026-11-26T10:00:00.000000Z", "tmst": tmst, "chan": 2, "rfch": 0,
            "freq": 868.3, "stat": stat, "modu": "LORA", "datr": "SF9BW125", "codr": "4/5",
            "rssi": rssi, "lsnr": lsnr, "size": len(phy),
            "data": base64.b64encode(phy).decode()}


def status(tmp, name="lora"):
    try:
        with open(os.path.join(tmp, "data", ".plugins", "status.json")) as f:
            for i in json.load(f)["instances"]:
                if i["name"] == name:
                    return i
    except (OSError, ValueError, KeyError):
        pass
    return None


def metric(tmp, name):
    s = status(tmp)
    return (s or {}).get("metrics", {}).get("lorawan." + name, -1)


def wait_for(what, cond, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    it.fail("timed out waiting for " + what)


def pb_fields(buf):
    """A protobuf message's fields as {number: [values]} (varint and
    length-delimited only: what telemetry.Point uses)."""
    out, p = {}, 0

    def varint():
        nonlocal p
        v, shift = 0, 0
        while True:
            c = buf[p]
            p += 1
            v |= (c & 0x7f) << shift
            shift += 7
            if not c & 0x80:
                return v
    while p < len(buf):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            out.setdefault(num, []).append(varint())
        elif wt == 2:
            n = varint()
            out.setdefault(num, []).append(bytes(buf[p:p + n]))
            p += n
        else:
            it.fail("unexpected protobuf wire type %d" % wt)
    return out


def read_topic(b, want, topic=TOPIC):
    """Every record of topic partition 0 as dicts (key, value, headers)."""
    try:
        from kafka import KafkaConsumer, TopicPartition
    except ImportError:
        KafkaConsumer = None
    if KafkaConsumer is None:
        conn = it.Conn(b.port)
        try:
            out = []
            for _, bb in it.read_all_batches(conn, topic, 0):
                out += [{"key": r["key"], "value": r["value"], "headers": dict(r["headers"])}
                        for r in it.batch_records(bb)]
            return out
        finally:
            conn.close()
    c = KafkaConsumer(bootstrap_servers=b.addr, enable_auto_commit=False, group_id=None,
                      consumer_timeout_ms=3000)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    out = []
    deadline = time.time() + 20
    while len(out) < want and time.time() < deadline:
        for recs in c.poll(timeout_ms=500).values():
            out += [{"key": r.key, "value": r.value, "headers": dict(r.headers)} for r in recs]
    # anything beyond `want` would be a duplicate: read on a little to see it
    for recs in c.poll(timeout_ms=500).values():
        out += [{"key": r.key, "value": r.value, "headers": dict(r.headers)} for r in recs]
    c.close()
    return out


def check_records(recs, frames, gws_by_name):
    it.expect("records (one per deduplicated uplink)", len(recs), len(frames))
    for r, f in zip(recs, frames):
        v = json.loads(r["value"])
        what = "record %s" % f["name"]
        it.expect(what + " key", r["key"], f["device"].encode())
        it.expect(what + " device_id", v["device_id"], f["device"])
        it.expect(what + " dev_addr", v["dev_addr"], f["dev_addr"])
        it.expect(what + " fcnt", v["fcnt"], f["fcnt32"])
        it.expect(what + " fport", v["fport"], f["fport"])
        it.expect(what + " payload (decrypted)", base64.b64decode(v["payload"]).hex(), f["payload"])
        it.expect(what + " source partition", r["headers"].get("strata.source.partition"),
                  ("%s/%s" % (f["dev_addr"], f["device"])).encode())
        it.expect(what + " source offset", r["headers"].get("strata.source.offset"),
                  str(f["fcnt32"]).encode())
        got = sorted((g["gw_eui"], g["rssi"], g["lsnr"]) for g in v["gateways"])
        it.expect(what + " gateways", got, sorted(gws_by_name[f["name"]]))
        for g in v["gateways"]:
            it.expect(what + " freq", g["freq"], 868.3)
            it.expect(what + " datr", g["datr"], "SF9BW125")


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        sys.exit(2)
    exe, build, node_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    lib = os.path.join(build, "lorawan.so")
    if not os.path.exists(lib):
        it.skip("%s not built" % lib)
    node = install(node_dir)
    sc = scenario(node, node_dir)
    it.ok("lora-packet %s built %d uplinks" % (LORA_PACKET_VERSION, len(sc["uplinks"])))

    def body(tmp):
        pd = os.path.join(tmp, "plugins")
        os.makedirs(pd)
        os.chmod(pd, 0o755)
        shutil.copy(lib, os.path.join(pd, "lorawan.so"))
        os.chmod(os.path.join(pd, "lorawan.so"), 0o644)
        port, pb_port = free_udp_port(), free_udp_port()
        ov = {"plugin.dir": pd, "plugins": "lora,lorapb", "plugin.lora.library": "lorawan.so",
              "plugin.lora.topic": TOPIC, "plugin.lora.listen.address": "127.0.0.1",
              "plugin.lora.listen.port": str(port),
              "plugin.lora.dedup.window.ms": str(WINDOW_MS), "num.partitions": "1"}
        # a second instance with format=protobuf: telemetry Points
        ov.update({"plugin.lorapb.library": "lorawan.so", "plugin.lorapb.topic": "uplinks-pb",
                   "plugin.lorapb.format": "protobuf", "plugin.lorapb.listen.address": "127.0.0.1",
                   "plugin.lorapb.listen.port": str(pb_port), "plugin.lorapb.dedup.window.ms": "0",
                   "plugin.lorapb.device.s1.id": "sensor-1"})
        for k, sk in (("dev_addr", "addr"), ("nwk_skey", "nwk"), ("app_skey", "app")):
            ov["plugin.lorapb.device.s1." + k] = sc["devices"]["sensor-1"][sk]
        for name, d in sc["devices"].items():
            ov["plugin.lora.device.%s.dev_addr" % name] = d["addr"]
            ov["plugin.lora.device.%s.nwk_skey" % name] = d["nwk"]
            ov["plugin.lora.device.%s.app_skey" % name] = d["app"]
        # garbage config: refused at startup, naming the instance and the key
        for k, v, needle in (
                ("plugin.lora.device.sensor-1.nwk_skey", "00112233", "key 'device.sensor-1.nwk_skey'"),
                ("plugin.lora.device.sensor-2.dev_addr", "xyz", "key 'device.sensor-2.dev_addr'"),
                ("plugin.lora.listen.port", "70000", "listen.port"),
                ("plugin.lora.device.x.id", "x", "missing required key 'device.x.dev_addr'")):
            args = [exe, "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % it.free_port(),
                    "--override", "log.dirs=%s" % os.path.join(tmp, "refused")]
            for kk, vv in dict(ov, **{k: v}).items():
                args += ["--override", "%s=%s" % (kk, vv)]
            p = subprocess.run(args, capture_output=True, text=True, timeout=60)
            out = p.stdout + p.stderr
            if p.returncode == 0 or needle not in out or "plugin instance 'lora'" not in out:
                print(out[-2000:])
                it.fail("%s=%s: want a refusal naming %r (exit %d)" % (k, v, needle, p.returncode))
        it.ok("bad keys, addresses, ports and incomplete devices refused with the key named")

        b = it.Broker(exe, tmp, ov)
        wait_for("the lorawan instance running", lambda: (status(tmp) or {}).get("state") == "running")
        a, g2 = Gateway(GW_A, port), Gateway(GW_B, port)
        a.pull()
        g2.pull()
        it.ok("PULL_DATA -> PULL_ACK (token echoed) from both gateways")

        # every uplink from both gateways, inside one dedup window
        gws = {}
        for i, f in enumerate(sc["uplinks"]):
            a.push([rxpk(f["phy"], -40 - i, 9.5)], "PUSH_DATA %s via A" % f["name"])
            g2.push([rxpk(f["phy"], -100 - i, -3.25)], "PUSH_DATA %s via B" % f["name"])
            gws[f["name"]] = [(GW_A.hex(), -40 - i, 9.5), (GW_B.hex(), -100 - i, -3.25)]
        it.ok("%d PUSH_DATA -> PUSH_ACK with their tokens" % (2 * len(sc["uplinks"])))

        # bad input: none of it becomes a record
        a.push([rxpk(sc["bad_mic"]["phy"], -50, 1.0)], "PUSH_DATA bad MIC")
        unknown = bytearray.fromhex(sc["uplinks"][0]["phy"])
        unknown[1] ^= 0x5a  # another DevAddr
        a.push([rxpk(unknown.hex(), -50, 1.0)], "PUSH_DATA unknown DevAddr")
        a.push([rxpk(sc["uplinks"][0]["phy"], -50, 1.0, stat=-1)], "PUSH_DATA CRC failed")
        a.push_raw_json(b'{"rxpk":[{"stat":1,"data":', "PUSH_DATA broken JSON")
        for junk in (b"", b"\x02", b"\x02\x00\x00", b"\x03\x01\x02\x00" + GW_A + b"{}",
                     b"\x02\x01\x02\x07" + GW_A, b"\x02\x01\x02\x02" + GW_A + b"x",
                     b"\x02\x01\x02\x00" + GW_A, b"\xff" + os.urandom(63), b"GET / HTTP/1.0\r\n\r\n"):
            a.send(junk)
        a.pull()  # the next datagram A gets is this PULL_ACK: no garbage was answered
        it.ok("garbage datagrams unanswered; bad MIC, unknown DevAddr, stat -1, bad JSON sent")

        n = len(sc["uplinks"])
        wait_for("%d uplinks" % n, lambda: metric(tmp, "uplinks") >= n)
        # after the windows: the newest sensor-1 frame again (late duplicate),
        # and an older one (replay)
        s1 = [f for f in sc["uplinks"] if f["device"] == "sensor-1"]
        a.push([rxpk(s1[-1]["phy"], -50, 1.0)], "PUSH_DATA late copy")
        a.push([rxpk(s1[0]["phy"], -50, 1.0)], "PUSH_DATA replay")
        wait_for("the replay counted", lambda: metric(tmp, "replay") >= 1)
        wait_for("records durable", lambda: (status(tmp) or {}).get("records_durable", 0) >= n)

        recs = read_topic(b, n)
        order = sc["uplinks"]  # emitted in acceptance order
        check_records(recs, order, gws)
        it.ok("%d records: keyed by device, decrypted as lora-packet encrypted them, both "
              "gateways' RSSI/SNR/freq/datr, FCnt32 across 0xffff -> 0x10000, source offsets" % n)

        st = status(tmp)
        m = st["metrics"]
        want = {"bad_mic": 1, "unknown_device": 1, "crc_bad": 1, "bad_json": 1,
                "bad_datagrams": 9, "replay": 1, "late_duplicates": 1, "duplicates": n,
                "uplinks": n, "pull_data": 3, "records_produced": n, "produce_errors": 0}
        for k, v in want.items():
            it.expect("counter " + k, m["lorawan." + k], v)
        it.expect("health link", st["health"]["link"], "up")
        if st["health"]["errors"] < 13:
            it.fail("health errors %d: want the 13 bad inputs counted" % st["health"]["errors"])
        devs = {d["id"]: d for d in st["details"]["devices"]}
        it.expect("sensor-2 fcnt in status", devs["sensor-2"]["fcnt"], 0x10001)
        it.expect("gateways in status", sorted(g["gw_eui"] for g in st["details"]["gateways"]),
                  sorted([GW_A.hex(), GW_B.hex()]))
        it.expect("source offsets", st["source_offsets"],
                  {"26011bda/sensor-1": 3, "00abcdef/sensor-2": 0x10001})
        it.ok("status counts every bad input: %s" % ", ".join("%s=%d" % kv for kv in want.items()))
        # the protobuf instance: one Point per uplink (device_id, point, bytes)
        pb = Gateway(GW_A, pb_port)
        f1 = sc["uplinks"][0]
        pb.push([rxpk(f1["phy"], -44, 6.0)], "PUSH_DATA to the protobuf instance")
        wait_for("the Point durable", lambda: (status(tmp, "lorapb") or {}).get("records_durable", 0) >= 1)
        pts = read_topic(b, 1, "uplinks-pb")
        it.expect("Points in uplinks-pb", len(pts), 1)
        pt = pb_fields(pts[0]["value"])
        it.expect("Point key", pts[0]["key"], b"sensor-1")
        it.expect("Point device_id", pt.get(1), [b"sensor-1"])
        it.expect("Point point", pt.get(2), [b"uplink"])
        it.expect("Point bytes_value (decrypted)", [v.hex() for v in pt.get(8, [])], [f1["payload"]])
        it.expect("Point source offset", pts[0]["headers"].get("strata.source.offset"), b"1")
        it.ok("format=protobuf: a telemetry Point with the decrypted payload as bytes_value")
        if not b.running():
            it.fail("stratad died")

        # one more uplink, then SIGTERM while it is still inside its window: the
        # host refuses records while stopping, so the plugin keeps it (kv store)
        iw = sc["in_window"]
        a.push([rxpk(iw["phy"], -55, 4.0)], "PUSH_DATA %s" % iw["name"])
        gws[iw["name"]] = [(GW_A.hex(), -55, 4.0)]

        # restart: resumes above the durable counters
        b.stop_ok()
        b.start()
        wait_for("the lorawan instance running again",
                 lambda: (status(tmp) or {}).get("state") == "running" and
                 metric(tmp, "datagrams") == 0)
        log = b.read_log()
        for dev, fc in (("sensor-1", 3), ("sensor-2", 0x10001)):
            if "device %s: resuming above frame counter %d" % (dev, fc) not in log:
                it.fail("no 'resuming above frame counter %d' for %s in the log" % (fc, dev))
        if "1 accepted uplinks kept for the next start" not in log or \
                "1 uplinks kept over the last stop restored" not in log:
            it.fail("the uplink inside the window at SIGTERM was not kept and restored")
        for f in sc["uplinks"] + [iw]:
            a.push([rxpk(f["phy"], -60, 2.0)], "PUSH_DATA %s after restart" % f["name"])
        for f in sc["after_restart"]:
            a.push([rxpk(f["phy"], -61, 2.5)], "PUSH_DATA %s" % f["name"])
        wait_for("2 uplinks after the restart", lambda: metric(tmp, "uplinks") >= 2)
        wait_for("records durable after the restart",
                 lambda: (status(tmp) or {}).get("records_durable", 0) >= 3)
        it.expect("replays after the restart", metric(tmp, "replay"), len(sc["uplinks"]) + 1)
        recs = read_topic(b, n + 3)
        gws.update({f["name"]: [(GW_A.hex(), -61, 2.5)] for f in sc["after_restart"]})
        check_records(recs, order + [iw] + sc["after_restart"], gws)
        it.ok("after SIGTERM + restart: the uplink inside its window at SIGTERM produced "
              "first, %d old frames refused as replays, the 2 new ones produced once; nothing "
              "lost, nothing twice" % (len(sc["uplinks"]) + 1))
        b.stop_ok()

    return it.run("strata-lorawan-", body)


if __name__ == "__main__":
    sys.exit(main())
