#!/usr/bin/python3
"""The plugin host inside stratad, with the scripted testsrc plugin.

usage: test_plugin_host.py STRATAD PLUGIN_BUILD_DIR MODE
  MODE durability: records reach the topic through the append path, with their
           source offsets as headers; SIGKILL + restart: the plugin resumes from
           the checkpoint, nothing committed is lost (every source offset from 0
           to the last one is in the log), duplicates only from the window
           between durable append and checkpoint; status.json is written.
  MODE refusals: config errors name instance and key; world-writable plugin.dir
           refused; Ed25519 signature required: unsigned / wrongly signed refused,
           signed (openssl CLI) accepted; a plugin blocking in stop does not
           keep the broker from stopping.
"""
import json
import os
import shutil
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402


def wait_for(what, cond, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    it.fail("timed out waiting for " + what)


def status(tmp):
    try:
        with open(os.path.join(tmp, "data", ".plugins", "status.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def inst(tmp, name):
    s = status(tmp)
    if not s:
        return None
    for i in s["instances"]:
        if i["name"] == name:
            return i
    return None


def plugin_dir(tmp, build, libs=("testsrc.so",)):
    d = os.path.join(tmp, "plugins")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    for lib in libs:
        shutil.copy(os.path.join(build, lib), os.path.join(d, lib))
        os.chmod(os.path.join(d, lib), 0o644)
    return d


def read_topic(b, topic):
    conn = it.Conn(b.port)
    try:
        err, hw, _ = it.fetch(conn, topic, 0, 0, max_bytes=1)
        if err:
            return []
        out = []
        for _, bb in it.read_all_batches(conn, topic, 0):
            out += list(it.batch_records(bb))
        return out
    finally:
        conn.close()


def src_offsets(recs):
    out = []
    for r in recs:
        h = dict(r["headers"])
        out.append(int(h["strata.source.offset"]))
        if h.get("strata.source.partition") != b"sp0":
            it.fail("record %d: source partition header %r" % (r["offset"], h))
    return out


def durability(exe, build):
    def body(tmp):
        pd = plugin_dir(tmp, build)
        ov = {"plugin.dir": pd, "plugins": "a", "plugin.a.library": "testsrc.so",
              "plugin.a.topic": "tele", "plugin.a.records": "0", "plugin.a.interval.ms": "2",
              "plugin.a.mode": "raw", "num.partitions": "1"}
        b = it.Broker(exe, tmp, ov)
        wait_for("200 durable records", lambda: (inst(tmp, "a") or {}).get("records_durable", 0) >= 200)
        a = inst(tmp, "a")
        it.expect("state", a["state"], "running")
        it.expect("plugin", a["plugin"], "testsrc")
        it.expect("append errors", a["append_errors"], 0)
        recs = read_topic(b, "tele")
        if len(recs) < 200:
            it.fail("only %d records in tele" % len(recs))
        r0 = recs[0]
        it.expect("key", r0["key"], b"dev1")
        it.expect("value", r0["value"], b"value-0")
        it.expect("plugin header", dict(r0["headers"]).get("testsrc"), b"yes")
        offs = src_offsets(recs)
        it.expect("source offsets in order", offs, list(range(len(offs))))
        it.ok("%d records through the append path, source offsets 0..%d in headers" %
              (len(recs), offs[-1]))

        # the strata CLI reads the same status file
        cli = os.path.join(os.path.dirname(exe), "strata")
        if os.access(cli, os.X_OK):
            out = subprocess.run([cli, "plugin", "list", "-d", os.path.join(tmp, "data")],
                                 capture_output=True, text=True, timeout=30)
            row = [l.split() for l in out.stdout.splitlines() if l.startswith("a ")]
            if out.returncode or not row or row[0][1:5] != ["testsrc", "1.0.0", "running", "up"]:
                it.fail("strata plugin list: rc %d\n%s%s" % (out.returncode, out.stdout, out.stderr))
            out = subprocess.run([cli, "--format", "json", "plugin", "status", "-d",
                                  os.path.join(tmp, "data"), "a"], capture_output=True, text=True,
                                 timeout=30)
            st = json.loads(out.stdout)
            it.expect("strata plugin status a: name", st[0]["name"], "a")
            if "testsrc.sent" not in st[0]["metrics"]:
                it.fail("strata plugin status: no plugin metrics: %r" % st[0]["metrics"])
            out = subprocess.run([cli, "plugin", "status", "-d", os.path.join(tmp, "data"), "zz"],
                                 capture_output=True, text=True, timeout=30)
            it.expect("strata plugin status of an unknown instance: exit", out.returncode, 1)
            it.ok("strata plugin list / status show the instance")
        else:
            print("note: %s not built; the CLI part is skipped" % cli)

        # SIGKILL mid-stream; the checkpoint says what was committed
        b.kill()
        with open(os.path.join(tmp, "data", ".plugins", "a", "offsets")) as f:
            ckpt = int(f.read().split("\t")[0])
        b.start()
        wait_for("records after restart", lambda: len(read_topic(b, "tele")) > len(recs) + 100, 60)
        log = b.read_log()
        want = "testsrc starting at source offset %d" % (ckpt + 1)
        if want not in log:
            it.fail("after restart the plugin did not resume at %d (checkpoint %d)" % (ckpt + 1, ckpt))
        recs2 = read_topic(b, "tele")
        offs2 = src_offsets(recs2)
        # nothing lost: every source offset 0..max is in the log
        missing = set(range(max(offs2) + 1)) - set(offs2)
        if missing:
            it.fail("source offsets missing after kill -9: %s" % sorted(missing)[:20])
        # duplicates only for offsets after the checkpoint (the at-least-once window)
        seen, dups = set(), []
        for o in offs2:
            if o in seen:
                dups.append(o)
            seen.add(o)
        bad = [d for d in dups if d <= ckpt]
        if bad:
            it.fail("offsets at or before the checkpoint %d were produced twice: %s" % (ckpt, bad[:10]))
        it.ok("kill -9 at checkpoint %d: resumed at %d, no source offset lost, %d re-produced "
              "from the unchecked window" % (ckpt, ckpt + 1, len(dups)))
        # status.json is rewritten every second: the committed offset moves past the checkpoint
        wait_for("status source offset past the checkpoint",
                 lambda: (inst(tmp, "a") or {}).get("source_offsets", {}).get("sp0", -1) > ckpt)
        b.stop_ok()
    return it.run("strata-plugin-", body)


def expect_refused(exe, tmp, ov, needle, what):
    args = [exe, "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % it.free_port(),
            "--override", "log.dirs=%s" % os.path.join(tmp, "data")]
    for k, v in ov.items():
        args += ["--override", "%s=%s" % (k, v)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    if p.returncode == 0 or needle not in out:
        print(out[-3000:])
        it.fail("%s: want a refusal containing %r (exit %d)" % (what, needle, p.returncode))
    it.ok("%s refused: %s" % (what, [l for l in out.splitlines() if needle in l][0].strip()))


def refusals(exe, build):
    if not shutil.which("openssl"):
        it.skip("openssl CLI not installed")

    def body(tmp):
        pd = plugin_dir(tmp, build)
        base = {"plugin.dir": pd, "plugins": "a", "plugin.a.library": "testsrc.so",
                "plugin.a.topic": "tele"}
        expect_refused(exe, tmp, dict(base, **{"plugin.a.bogus": "1"}),
                       "plugin instance 'a': unknown key 'bogus' for plugin testsrc", "unknown key")
        expect_refused(exe, tmp, dict(base, **{"plugin.a.interval.ms": "-5"}),
                       "plugin instance 'a': key 'interval.ms': -5 is out of range", "out of range")
        expect_refused(exe, tmp, dict(base, **{"plugin.b.topic": "x"}),
                       "instance 'b' is not listed in plugins", "unlisted instance")
        # ABI: wrong major / unknown required host capability, refused by stratad
        for lib in ("abi_bad_major.so", "abi_bad_cap.so"):
            shutil.copy(os.path.join(build, lib), os.path.join(pd, lib))
            os.chmod(os.path.join(pd, lib), 0o644)
        expect_refused(exe, tmp, dict(base, **{"plugin.a.library": "abi_bad_major.so"}),
                       "major version differs; refusing it", "plugin built for ABI major 2")
        expect_refused(exe, tmp, dict(base, **{"plugin.a.library": "abi_bad_cap.so"}),
                       "requires host capabilities 0x10000000000 that this host lacks",
                       "plugin requiring an unknown host capability")
        os.chmod(pd, 0o777)
        expect_refused(exe, tmp, base, "is world-writable; refusing", "world-writable plugin.dir")
        os.chmod(pd, 0o755)

        # signatures (keys and signatures made with the openssl CLI)
        key, pub, other = (os.path.join(tmp, n) for n in ("k.pem", "pub.pem", "o.pem"))
        lib = os.path.join(pd, "testsrc.so")
        for k in (key, other):
            subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", k], check=True)
        subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True)
        sig = dict(base, **{"plugin.signature.required": "true",
                            "plugin.signature.public.key": pub})
        expect_refused(exe, tmp, sig, "testsrc.so.sig cannot be read", "unsigned library")
        subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", other, "-in", lib,
                        "-out", lib + ".sig"], check=True)
        expect_refused(exe, tmp, sig, "does not verify", "library signed by another key")
        subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", lib,
                        "-out", lib + ".sig"], check=True)
        b = it.Broker(exe, tmp, dict(sig, **{"plugin.a.records": "5", "plugin.a.block.stop.ms": "30000",
                                             "plugin.a.stop.timeout.ms": "300"}))
        wait_for("signed plugin running",
                 lambda: (inst(tmp, "a") or {}).get("records_durable", 0) >= 5)
        it.ok("library signed with the configured key loads and runs")
        # blocks 30 s in stop: abandoned after 300 ms, the broker still stops cleanly
        t0 = time.time()
        b.stop_ok()
        log = b.read_log()
        if "abandoning its thread" not in log:
            it.fail("no abandon line in the log")
        it.ok("plugin blocking in stop abandoned; broker stopped in %.1f s" % (time.time() - t0))
    return it.run("strata-plugin-", body)


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    exe = it.stratad_arg(__doc__)
    build = os.path.abspath(sys.argv[2])
    if not os.path.exists(os.path.join(build, "testsrc.so")):
        it.fail("%s/testsrc.so missing (build first)" % build)
    mode = sys.argv[3]
    return {"durability": durability, "refusals": refusals}[mode](exe, build)


if __name__ == "__main__":
    sys.exit(main())
