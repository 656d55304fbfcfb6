#!/usr/bin/python3
"""The modbus gateway plugin (strata_modbus.so) in stratad against Modbus/TCP
servers no one here wrote.

usage: test_plugin_modbus.py STRATAD PLUGIN_DIR MODE
  MODE pymodbus: Debian's python3-pymodbus 3.0.0 server (zero_mode=True, so
       protocol address N is block index N) with holding registers holding
       int16/uint16/int32 ABCD/uint32 CDAB/float32 ABCD, DCBA, BADC and a scaled
       value, coils, discrete inputs, input registers, and a point past the end
       (exception 2). Raw registers and one float are read independently with
       Debian's mbpoll and our decoded values are checked against them. Two
       instances (json, protobuf) poll it at once; several requests in flight.
       Then the server is killed (points go BAD "device offline") and restarted
       (the plugin reconnects with backoff and values come back).
  MODE libmodbus: libmodbus's own unit-test server, compiled here from
       libmodbus-dev's examples (port patched): its constant bit/register
       tables (cross-checked with mbpoll on a separate server run), its
       exception-replying address (exception 6), its wrong-TID reply, and its
       500 ms sleeping address against a 200 ms timeout.
  MODE reorder: a scripted peer (ours, in this file) that holds each burst of
       pipelined requests and answers it in reverse order: every point must
       still get its own value (responses matched by transaction id).
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

PYMODBUS_SERVER = r'''
import asyncio, sys
from pymodbus.server import StartAsyncTcpServer
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusSlaveContext, ModbusServerContext
port = int(sys.argv[1])
hr = [0] * 30
hr[0] = 0xFFFE                       # int16 -2 / uint16 65534
hr[1], hr[2] = 0xFFFE, 0x1DC0        # int32 -123456, ABCD
hr[3], hr[4] = 0x5E00, 0xB2D0        # uint32 3000000000, CDAB (word-swapped)
hr[5], hr[6] = 0x41AC, 0x0000        # float32 21.5, ABCD
hr[7], hr[8] = 0x0000, 0x50C0        # float32 -3.25, DCBA (little-endian)
hr[9], hr[10] = 0xC03F, 0x0000       # float32 1.5, BADC (bytes swapped in words)
hr[20] = 1234                        # uint16, scale 0.1 offset -10 -> 113.4
store = ModbusSlaveContext(di=ModbusSequentialDataBlock(0, [0, 1, 1, 0, 1]),
                           co=ModbusSequentialDataBlock(0, [1, 0, 1, 1, 0, 0, 0, 1, 1, 0]),
                           hr=ModbusSequentialDataBlock(0, hr),
                           ir=ModbusSequentialDataBlock(0, [555, 7]), zero_mode=True)
ctx = ModbusServerContext(slaves=store, single=True)
print("serving", flush=True)
# allow_reuse_address: restarted on the same port while old connections linger
asyncio.run(StartAsyncTcpServer(context=ctx, address=("127.0.0.1", port), allow_reuse_address=True))
'''

PY_POINTS = """
group.fast.device=plc
group.fast.interval.ms=200
point.i16.group=fast
point.i16.table=holding
point.i16.address=0
point.i16.type=int16
point.u16.group=fast
point.u16.table=holding
point.u16.address=0
point.i32.group=fast
point.i32.table=holding
point.i32.address=1
point.i32.type=int32
point.u32.group=fast
point.u32.table=holding
point.u32.address=3
point.u32.type=uint32
point.u32.order=CDAB
point.f_abcd.group=fast
point.f_abcd.table=holding
point.f_abcd.address=5
point.f_abcd.type=float32
point.f_abcd.unit=degC
point.f_dcba.group=fast
point.f_dcba.table=holding
point.f_dcba.address=7
point.f_dcba.type=float32
point.f_dcba.order=DCBA
point.f_badc.group=fast
point.f_badc.table=holding
point.f_badc.address=9
point.f_badc.type=float32
point.f_badc.order=BADC
point.scaled.group=fast
point.scaled.table=holding
point.scaled.address=20
point.scaled.scale=0.1
point.scaled.offset=-10
point.missing.group=fast
point.missing.table=holding
point.missing.address=100
point.edge.group=fast
point.edge.table=holding
point.edge.address=29
point.edge.type=float32
point.c0.group=fast
point.c0.table=coil
point.c0.address=0
point.c1.group=fast
point.c1.table=coil
point.c1.address=1
point.c7.group=fast
point.c7.table=coil
point.c7.address=7
point.d1.group=fast
point.d1.table=discrete
point.d1.address=1
point.d3.group=fast
point.d3.table=discrete
point.d3.address=3
point.ir0.group=fast
point.ir0.table=input
point.ir0.address=0
point.ir1.group=fast
point.ir1.table=input
point.ir1.address=1
"""


def wait_for(what, cond, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    it.fail("timed out waiting for " + what)


def inst_status(tmp, name):
    try:
        with open(os.path.join(tmp, "data", ".plugins", "status.json")) as f:
            for i in json.load(f)["instances"]:
                if i["name"] == name:
                    return i
    except (OSError, ValueError):
        pass
    return None


def plugin_dir(tmp, build):
    d = os.path.join(tmp, "plugins")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    shutil.copy(os.path.join(build, "strata_modbus.so"), d)
    os.chmod(os.path.join(d, "strata_modbus.so"), 0o644)
    return d


def read_topic(b, topic):
    conn = it.Conn(b.port)
    try:
        err, _, _ = it.fetch(conn, topic, 0, 0, max_bytes=1)
        if err:
            return []
        out = []
        for _, bb in it.read_all_batches(conn, topic, 0):
            out += list(it.batch_records(bb))
        return out
    finally:
        conn.close()


def pb_decode(b):
    """Minimal protobuf decoder for telemetry.proto's Point."""
    out, p = {}, 0
    names = {1: "device_id", 2: "point", 3: "timestamp_ms", 4: "bool_value", 5: "int_value",
             6: "double_value", 7: "string_value", 8: "bytes_value", 9: "quality", 10: "unit",
             11: "status"}

    def uv():
        nonlocal p
        v, s = 0, 0
        while True:
            c = b[p]
            p += 1
            v |= (c & 0x7F) << s
            s += 7
            if not c & 0x80:
                return v
    while p < len(b):
        tag = uv()
        f, wt = tag >> 3, tag & 7
        if wt == 0:
            v = uv()
            if f in (3, 5) and v >= 1 << 63:
                v -= 1 << 64
            out[names[f]] = v
        elif wt == 1:
            out[names[f]] = struct.unpack_from("<d", b, p)[0]
            p += 8
        elif wt == 2:
            ln = uv()
            out[names[f]] = bytes(b[p:p + ln])
            p += ln
        else:
            raise ValueError("wire type %d" % wt)
    return out


def latest_points(recs, protobuf=False):
    """point name -> last record (decoded)."""
    last = {}
    for r in recs:
        if protobuf:
            v = pb_decode(r["value"])
            v = {k: (x.decode() if isinstance(x, bytes) and k != "bytes_value" else x)
                 for k, x in v.items()}
            last[v["point"]] = (r["key"], v)
        else:
            v = json.loads(r["value"])
            last[v["point"]] = (r["key"], v)
    return last


def mbpoll(port, unit, ref, count, typ, extra=()):
    args = ["mbpoll", "-m", "tcp", "-a", str(unit), "-0", "-r", str(ref), "-c", str(count),
            "-t", typ, "-1", "-p", str(port)] + list(extra) + ["127.0.0.1"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=30)
    vals = {}
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("[") and "]:" in line:
            a, v = line.split("]:", 1)
            vals[int(a[1:], 0)] = v.strip()
    if not vals:
        it.fail("mbpoll %s: %s %s" % (" ".join(args), p.stdout[-500:], p.stderr[-500:]))
    return vals


def start_pymodbus(port, tmp):
    log = open(os.path.join(tmp, "pymodbus.log"), "ab")
    p = subprocess.Popen(["/usr/bin/python3", "-c", PYMODBUS_SERVER, str(port)], stdout=log,
                         stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    import socket
    while time.time() < deadline:
        if p.poll() is not None:
            it.fail("pymodbus server exited: see %s" % os.path.join(tmp, "pymodbus.log"))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p
        except OSError:
            time.sleep(0.1)
    it.fail("pymodbus server did not listen")


def stop_proc(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)


def close(a, b, eps=1e-6):
    return abs(a - b) <= eps * max(1.0, abs(a), abs(b))


def check_values(last, mb_raw, tag):
    """Our decoded values against the raw registers mbpoll read."""
    raw = {a: int(v, 16) for a, v in mb_raw["hr"].items()}

    def val(name):
        if name not in last:
            it.fail("%s: no record for point %s (have %s)" % (tag, name, sorted(last)))
        key, v = last[name]
        it.expect("%s %s key" % (tag, name), key, b"plc-1")
        if v.get("quality", 0) not in ("GOOD", 0):
            it.fail("%s %s: quality %r status %r" % (tag, name, v.get("quality"), v.get("status")))
        for k in ("value", "int_value", "double_value", "bool_value"):
            if k in v:
                return v[k]
        return False  # protobuf omits a false bool / zero

    def u32(hi, lo):
        return raw[hi] << 16 | raw[lo]

    def f32(u):
        return struct.unpack(">f", struct.pack(">I", u))[0]

    def swap16(x):
        return ((x & 0xFF) << 8) | (x >> 8)
    it.expect("%s i16" % tag, val("i16"), struct.unpack(">h", struct.pack(">H", raw[0]))[0])
    it.expect("%s u16" % tag, val("u16"), raw[0])
    it.expect("%s i32 ABCD" % tag, val("i32"), struct.unpack(">i", struct.pack(">I", u32(1, 2)))[0])
    it.expect("%s u32 CDAB" % tag, val("u32"), u32(4, 3))
    if not close(val("f_abcd"), f32(u32(5, 6))):
        it.fail("%s f_abcd %r vs mbpoll raw %r" % (tag, val("f_abcd"), f32(u32(5, 6))))
    if not close(float(mb_raw["float"]), val("f_abcd")):
        it.fail("%s f_abcd %r vs mbpoll -t 4:float -B %r" % (tag, val("f_abcd"), mb_raw["float"]))
    # DCBA: the 4 bytes reversed; BADC: bytes swapped within each word
    dcba = swap16(raw[8]) << 16 | swap16(raw[7])
    badc = swap16(raw[9]) << 16 | swap16(raw[10])
    if not close(val("f_dcba"), f32(dcba)) or not close(val("f_badc"), f32(badc)):
        it.fail("%s f_dcba/f_badc %r %r vs %r %r" % (tag, val("f_dcba"), val("f_badc"), f32(dcba), f32(badc)))
    if not close(val("scaled"), raw[20] * 0.1 - 10):
        it.fail("%s scaled %r vs %r" % (tag, val("scaled"), raw[20] * 0.1 - 10))
    for a in (0, 1, 7):
        it.expect("%s coil %d" % (tag, a), bool(val("c%d" % a)), mb_raw["co"][a] == "1")
    for a in (1, 3):
        it.expect("%s discrete %d" % (tag, a), bool(val("d%d" % a)), mb_raw["di"][a] == "1")
    for a in (0, 1):
        it.expect("%s input %d" % (tag, a), val("ir%d" % a), int(mb_raw["ir"][a]))
    # "missing" (address 100) has a read of its own; "edge" (29-30, past the
    # 30-register block) made the group's big read fail with exception 2 until
    # the plugin split that read point by point: only "edge" stays BAD
    for name in ("missing", "edge"):
        key, miss = last[name]
        q = miss.get("quality")
        if q not in ("BAD", 2) or "exception 2: illegal data address" not in miss.get("status", ""):
            it.fail("%s %s point: %r" % (tag, name, miss))


def expect_refused(exe, tmp, ov, needle):
    args = [exe, "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % it.free_port(),
            "--override", "log.dirs=%s" % os.path.join(tmp, "data")]
    for k, v in ov.items():
        args += ["--override", "%s=%s" % (k, v)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    if p.returncode == 0 or needle not in out:
        print(out[-3000:])
        it.fail("want a refusal containing %r (exit %d)" % (needle, p.returncode))


def bad_configs(exe, tmp, pd):
    """Garbage modbus config stops the broker with the instance and key named."""
    base = {"plugin.dir": pd, "plugins": "plc", "plugin.plc.library": "strata_modbus.so",
            "plugin.plc.topic": "plant", "plugin.plc.device.d.host": "127.0.0.1",
            "plugin.plc.group.g.device": "d", "plugin.plc.point.p.group": "g",
            "plugin.plc.point.p.table": "coil", "plugin.plc.point.p.address": "3"}
    cases = [({"plugin.plc.device.d.port": "70000"},
              "plugin instance 'plc': key 'device.d.port': 70000 is out of range [1, 65535]"),
             ({"plugin.plc.point.p.type": "float32"},
              "plugin instance 'plc': key 'point.p.type': float32 does not fit table coil"),
             ({"plugin.plc.point.p.table": "register"},
              "plugin instance 'plc': key 'point.p.table': 'register' is not one of coil|discrete|holding|input"),
             ({"plugin.plc.group.g.device": "nope"},
              "plugin instance 'plc': key 'group.g.device': no device 'nope'"),
             ({"plugin.plc.point.q.group": "g"},
              "plugin instance 'plc': missing required key 'point.q.table'"),
             ({"plugin.plc.point.p.adress": "3"},
              "plugin instance 'plc': unknown key 'point.p.adress' for plugin modbus")]
    for extra, needle in cases:
        expect_refused(exe, tmp, dict(base, **extra), needle)
        it.ok("refused: " + needle)


def pymodbus_mode(exe, build):
    def body(tmp):
        bad_configs(exe, tmp, plugin_dir(tmp, build))
        port = it.free_port()
        srv = start_pymodbus(port, tmp)
        # independent reads with mbpoll: raw registers, bits, one float
        mb = {"hr": mbpoll(port, 1, 0, 21, "4:hex"), "co": mbpoll(port, 1, 0, 10, "0"),
              "di": mbpoll(port, 1, 0, 5, "1"), "ir": mbpoll(port, 1, 0, 2, "3"),
              "float": mbpoll(port, 1, 5, 1, "4:float", ["-B"])[5]}
        it.ok("mbpoll read hr[0..20], coils, discrete inputs, input registers; float %s" % mb["float"])
        pd = plugin_dir(tmp, build)
        cf = os.path.join(tmp, "plc.properties")
        with open(cf, "w") as f:
            f.write("device.plc.host=127.0.0.1\ndevice.plc.port=%d\ndevice.plc.unit=1\n"
                    "device.plc.id=plc-1\ndevice.plc.max.inflight=4\n"
                    "device.plc.reconnect.backoff.ms=100\ndevice.plc.reconnect.backoff.max.ms=500\n"
                    % port + PY_POINTS)
        ov = {"plugin.dir": pd, "plugins": "plc,plcpb", "num.partitions": "1",
              "plugin.plc.library": "strata_modbus.so", "plugin.plc.topic": "plant",
              "plugin.plc.config.file": cf,
              "plugin.plcpb.library": "strata_modbus.so", "plugin.plcpb.topic": "plantpb",
              "plugin.plcpb.format": "protobuf", "plugin.plcpb.config.file": cf}
        b = it.Broker(exe, tmp, ov)
        # the points (18 of them) over a few polls
        wait_for("records", lambda: len(read_topic(b, "plant")) >= 18 * 3)
        wait_for("protobuf records", lambda: len(read_topic(b, "plantpb")) >= 18 * 3)
        recs = read_topic(b, "plant")
        check_values(latest_points(recs), mb, "json")
        check_values(latest_points(read_topic(b, "plantpb"), protobuf=True), mb, "protobuf")
        it.ok("json and protobuf values agree with mbpoll's raw reads (%d json records)" % len(recs))
        # status.json is rewritten every second from the plugin's describe()
        st = wait_for("status with requests", lambda: (lambda s: s if s and s["details"].get(
            "devices", {}).get("plc", {}).get("exceptions", 0) >= 1 else None)(inst_status(tmp, "plc")))
        dev = st["details"]["devices"]["plc"]
        if dev["state"] != "up" or dev["exceptions"] < 1 or dev["unmatched"] or dev["bad_frames"]:
            it.fail("device status %r" % dev)
        if dev["inflight_max"] < 2:
            it.fail("never more than one request in flight: %r" % dev)
        if st["metrics"].get("modbus.requests", 0) < 10:
            it.fail("metrics %r" % st["metrics"])
        it.ok("status: device up, %d requests, %d exception responses, 0 unmatched tids"
              % (dev["requests"], dev["exceptions"]))

        # device down: BAD "device offline" records; back up: values again
        stop_proc(srv)
        n0 = len(read_topic(b, "plant"))

        def offline():
            last = latest_points(read_topic(b, "plant")[n0:])
            v = last.get("f_abcd", (None, {}))[1]
            return v.get("quality") == "BAD" and "device offline" in v.get("status", "")
        wait_for("offline records", offline)
        wait_for("link down in status", lambda: (inst_status(tmp, "plc") or {}).get("link") == "down")
        it.ok("server killed: points BAD 'device offline', link down")
        srv = start_pymodbus(port, tmp)
        n1 = len(read_topic(b, "plant"))

        def good_again():
            last = latest_points(read_topic(b, "plant")[n1:])
            v = last.get("f_abcd", (None, {}))[1]
            return v.get("quality") == "GOOD" and close(v.get("value", 0), 21.5)
        wait_for("values after the server restarted", good_again)
        st = inst_status(tmp, "plc")
        it.ok("server restarted: reconnected (%d reconnects), values GOOD again"
              % st["details"]["devices"]["plc"]["reconnects"])
        b.stop_ok()
        stop_proc(srv)
    return it.run("strata-modbus-", body)


UT_SRC = "/usr/share/doc/libmodbus-dev/examples"


def build_ut_server(tmp):
    if not os.path.exists(os.path.join(UT_SRC, "unit-test-server.c")):
        it.skip("libmodbus-dev examples (unit-test-server.c) not installed")
    d = os.path.join(tmp, "ut")
    os.makedirs(d)
    for f in ("unit-test-server.c", "unit-test.h"):
        shutil.copy(os.path.join(UT_SRC, f), d)
    src = os.path.join(d, "unit-test-server.c")
    with open(src) as f:
        text = f.read()
    old = 'modbus_new_tcp("127.0.0.1", 1502)'
    if old not in text:
        it.skip("unit-test-server.c does not listen where expected; cannot patch its port")
    with open(src, "w") as f:
        f.write(text.replace(old, 'modbus_new_tcp("127.0.0.1", atoi(getenv("UT_PORT")))'))
    cflags = subprocess.run(["pkg-config", "--cflags", "--libs", "libmodbus"], capture_output=True,
                            text=True)
    if cflags.returncode:
        it.skip("pkg-config libmodbus failed")
    exe = os.path.join(d, "unit-test-server")
    cc = shutil.which("cc") or shutil.which("gcc")
    r = subprocess.run([cc, "-o", exe, src] + cflags.stdout.split(), capture_output=True, text=True)
    if r.returncode:
        it.fail("building unit-test-server: " + r.stderr[-2000:])
    return exe


def start_ut(exe, port, tmp, tag):
    import socket
    log = open(os.path.join(tmp, "ut-%s.log" % tag), "ab")
    p = subprocess.Popen([exe, "tcp"], stdout=log, stderr=subprocess.STDOUT,
                         env=dict(os.environ, UT_PORT=str(port)))
    # it accepts exactly one connection, so probe with a plain connect only
    # when nothing else will connect: wait for the listen socket in /proc instead
    deadline = time.time() + 10
    hexport = ":%04X" % port
    while time.time() < deadline:
        with open("/proc/net/tcp") as f:
            if any(hexport in l.split()[1] and l.split()[3] == "0A" for l in f.readlines()[1:]):
                return p
        if p.poll() is not None:
            it.fail("unit-test-server exited")
        time.sleep(0.05)
    it.fail("unit-test-server did not listen")


def libmodbus_mode(exe, build):
    def body(tmp):
        ut = build_ut_server(tmp)
        port, slow_port = it.free_port(), it.free_port()
        # cross-check the server's constant tables with mbpoll (the server
        # serves one connection, then exits)
        p = start_ut(ut, port, tmp, "mbpoll")
        mbc = mbpoll(port, 17, 0x130, 3, "0")
        p.wait(timeout=10)
        p = start_ut(ut, port, tmp, "mbpoll2")
        mbd = mbpoll(port, 17, 0x1C4, 4, "1")
        p.wait(timeout=10)
        p = start_ut(ut, port, tmp, "mbpoll3")
        mbi = mbpoll(port, 17, 0x108, 1, "3")
        p.wait(timeout=10)
        it.ok("mbpoll: coils 0x130.. %s, discrete 0x1C4.. %s, input 0x108 %s" %
              ([mbc[k] for k in sorted(mbc)], [mbd[k] for k in sorted(mbd)], mbi[0x108]))
        srv = start_ut(ut, port, tmp, "a")
        slow = start_ut(ut, slow_port, tmp, "slow")
        pd = plugin_dir(tmp, build)
        ov = {"plugin.dir": pd, "plugins": "ut", "num.partitions": "1",
              "plugin.ut.library": "strata_modbus.so", "plugin.ut.topic": "ut",
              "plugin.ut.device.a.host": "127.0.0.1", "plugin.ut.device.a.port": str(port),
              "plugin.ut.device.a.unit": "17", "plugin.ut.device.a.timeout.ms": "1000",
              "plugin.ut.device.a.reconnect.backoff.ms": "100",
              "plugin.ut.device.a.reconnect.backoff.max.ms": "400",
              "plugin.ut.device.s.host": "127.0.0.1", "plugin.ut.device.s.port": str(slow_port),
              "plugin.ut.device.s.unit": "17", "plugin.ut.device.s.timeout.ms": "200",
              "plugin.ut.device.s.reconnect.backoff.ms": "5000",
              "plugin.ut.group.g.device": "a", "plugin.ut.group.g.interval.ms": "200",
              "plugin.ut.group.busy.device": "a", "plugin.ut.group.busy.interval.ms": "300",
              "plugin.ut.group.badtid.device": "a", "plugin.ut.group.badtid.interval.ms": "2000",
              "plugin.ut.group.slow.device": "s", "plugin.ut.group.slow.interval.ms": "1000"}
        pts = [("c0", "g", "coil", 0x130), ("c1", "g", "coil", 0x131), ("c2", "g", "coil", 0x132),
               ("d0", "g", "discrete", 0x1C4), ("d2", "g", "discrete", 0x1C6),
               ("d3", "g", "discrete", 0x1C7), ("ir", "g", "input", 0x108),
               ("hr", "g", "holding", 0x160), ("busy", "busy", "holding", 0x170),
               ("badtid", "badtid", "holding", 0x171), ("sleepy", "slow", "holding", 0x172)]
        for name, g, table, addr in pts:
            ov["plugin.ut.point.%s.group" % name] = g
            ov["plugin.ut.point.%s.table" % name] = table
            ov["plugin.ut.point.%s.address" % name] = str(addr)
        b = it.Broker(exe, tmp, ov)

        def have_all():
            last = latest_points(read_topic(b, "ut"))
            ok = all(n in last for n, *_ in pts) and last["c0"][1]["quality"] == "GOOD"
            return last if ok else None
        last = wait_for("a record for every point", have_all)

        def v(name):
            return last[name][1]
        for i, name in enumerate(("c0", "c1", "c2")):
            it.expect("coil 0x%x" % (0x130 + i), v(name)["value"], mbc[0x130 + i] == "1")
        for name, a in (("d0", 0x1C4), ("d2", 0x1C6), ("d3", 0x1C7)):
            it.expect("discrete 0x%x" % a, v(name)["value"], mbd.get(a, "0") == "1"
                      if a in mbd else bool(0xAC >> (a - 0x1C4) & 1))
        it.expect("input 0x108", v("ir")["value"], int(mbi[0x108]))
        it.expect("holding 0x160", v("hr")["value"], 0)
        it.expect("busy status", v("busy")["status"], "exception 6: server device busy")
        it.expect("busy quality", v("busy")["quality"], "BAD")
        it.ok("values match mbpoll / unit-test.h; 0x170 answered exception 6 per point")

        def slow_timed_out():
            last = latest_points(read_topic(b, "ut"))
            s = last.get("sleepy", (None, {}))[1]
            return s.get("status") in ("timeout",) or "device offline" in s.get("status", "")
        wait_for("the 500 ms address to time out", slow_timed_out)
        st = wait_for("status with a timeout",
                      lambda: (lambda s: s if s and s["details"]["devices"]["s"]["timeouts"] >= 1 else None)(inst_status(tmp, "ut")))
        it.ok("0x172 (server sleeps 500 ms) timed out at 200 ms: %d timeout(s)" %
              st["details"]["devices"]["s"]["timeouts"])

        def badtid():
            s = inst_status(tmp, "ut")
            if not s:
                return None
            d = s["details"]["devices"]["a"]
            return s if d["unmatched"] + d["bad_frames"] >= 1 else None
        st = wait_for("the wrong-TID reply to be rejected", badtid)
        d = st["details"]["devices"]["a"]
        it.ok("0x171 (reply with another TID / unit): %d unmatched, %d bad frames; no crash"
              % (d["unmatched"], d["bad_frames"]))
        # the peer goes away (it serves one connection); a new one comes up
        stop_proc(srv)
        wait_for("device a down", lambda: (inst_status(tmp, "ut") or {}).get("details", {})
                 .get("devices", {}).get("a", {}).get("state") != "up")
        srv = start_ut(ut, port, tmp, "a2")
        n = len(read_topic(b, "ut"))

        def back():
            last = latest_points(read_topic(b, "ut")[n:])
            return last.get("ir", (None, {}))[1].get("quality") == "GOOD"
        wait_for("values after the peer came back", back)
        it.ok("peer restarted: reconnected, GOOD values again")
        b.stop_ok()
        stop_proc(srv)
        stop_proc(slow)
    return it.run("strata-modbus-", body)


REORDER_SERVER = r'''
import socket, struct, sys, select
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1]))); ls.listen(4)
print("serving", flush=True)
while True:
    c, _ = ls.accept()
    buf = b""
    while True:
        r, _, _ = select.select([c], [], [], 5)
        if not r:
            break
        d = c.recv(4096)
        if not d:
            break
        buf += d
        # gather the burst: everything that arrives within 30 ms
        while select.select([c], [], [], 0.03)[0]:
            d = c.recv(4096)
            if not d:
                break
            buf += d
        reqs = []
        while len(buf) >= 12:
            tid, proto, ln, unit, fc, start, qty = struct.unpack(">HHHBBHH", buf[:12])
            buf = buf[12:]
            reqs.append((tid, unit, fc, start, qty))
        out = b""
        for tid, unit, fc, start, qty in reversed(reqs):
            if fc in (3, 4):
                data = b"".join(struct.pack(">H", (start + i) * 3 + 1) for i in range(qty))
            else:
                bits = [(start + i) % 2 for i in range(qty)]
                data = bytes(sum(b << k for k, b in enumerate(bits[j:j + 8])) for j in range(0, qty, 8))
            pdu = bytes([fc, len(data)]) + data
            out += struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu
        c.sendall(out)
    c.close()
'''


def reorder_mode(exe, build):
    def body(tmp):
        import socket
        port = it.free_port()
        log = open(os.path.join(tmp, "reorder.log"), "ab")
        srv = subprocess.Popen(["/usr/bin/python3", "-c", REORDER_SERVER, str(port)], stdout=log,
                               stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    it.fail("reorder peer did not listen")
                time.sleep(0.05)
        pd = plugin_dir(tmp, build)
        ov = {"plugin.dir": pd, "plugins": "r", "num.partitions": "1",
              "plugin.r.library": "strata_modbus.so", "plugin.r.topic": "r",
              "plugin.r.request.gap": "0",
              "plugin.r.device.d.host": "127.0.0.1", "plugin.r.device.d.port": str(port),
              "plugin.r.device.d.max.inflight": "8",
              "plugin.r.group.g.device": "d", "plugin.r.group.g.interval.ms": "200"}
        addrs = [0, 100, 200, 300, 400, 500]
        for a in addrs:
            ov["plugin.r.point.h%d.group" % a] = "g"
            ov["plugin.r.point.h%d.table" % a] = "holding"
            ov["plugin.r.point.h%d.address" % a] = str(a)
        for a in (7, 8):
            ov["plugin.r.point.c%d.group" % a] = "g"
            ov["plugin.r.point.c%d.table" % a] = "coil"
            ov["plugin.r.point.c%d.address" % a] = str(a)
        b = it.Broker(exe, tmp, ov)

        def polls():
            recs = read_topic(b, "r")
            return recs if len(recs) >= 8 * 5 else None
        recs = polls() or wait_for("5 polls", polls)
        bad = []
        for r in recs:
            v = json.loads(r["value"])
            name = v["point"]
            a = int(name[1:])
            want = a * 3 + 1 if name[0] == "h" else bool(a % 2)
            if v["quality"] != "GOOD" or v["value"] != want:
                bad.append(v)
        if bad:
            it.fail("%d of %d records mismatched, e.g. %r" % (len(bad), len(recs), bad[:3]))
        st = wait_for("status", lambda: (lambda s: s if s and s["details"]["devices"]["d"]
                                         ["inflight_max"] >= 2 else None)(inst_status(tmp, "r")))
        it.ok("%d records, every point its own value with responses reversed (up to %d in flight)"
              % (len(recs), st["details"]["devices"]["d"]["inflight_max"]))
        b.stop_ok()
        stop_proc(srv)
    return it.run("strata-modbus-", body)


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    exe = it.stratad_arg(__doc__)
    build = os.path.abspath(sys.argv[2])
    if not os.path.exists(os.path.join(build, "strata_modbus.so")):
        it.fail("%s/strata_modbus.so missing (build first)" % build)
    mode = sys.argv[3]
    if not shutil.which("mbpoll"):
        it.skip("mbpoll not installed (scripts/deps.sh)")
    if mode == "reorder":
        return reorder_mode(exe, build)
    if mode == "pymodbus":
        r = subprocess.run(["/usr/bin/python3", "-c", "import pymodbus.server"], capture_output=True)
        if r.returncode:
            it.skip("python3-pymodbus (with python3-serial, python3-serial-asyncio) not importable")
        return pymodbus_mode(exe, build)
    return libmodbus_mode(exe, build)


if __name__ == "__main__":
    sys.exit(main())
