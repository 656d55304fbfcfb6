#!/usr/bin/python3
"""docs/plugins.md's example plugin builds against the installed header alone
and runs in stratad.

usage: test_plugin_example.py STRATAD BUILD_DIR SOURCE_DIR
  Extracts the ```c block starting with "/* heartbeat.c" from docs/plugins.md,
  runs `cmake --install BUILD_DIR --prefix <tmp>/prefix`, compiles the example
  with -I<tmp>/prefix/include only (no source tree, no broker headers), loads
  it in stratad and reads its points back from the topic.
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    exe = it.stratad_arg(__doc__)
    build, src = os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        it.skip("no C compiler")
    with open(os.path.join(src, "docs", "plugins.md")) as f:
        md = f.read()
    start = md.find("```c\n/* heartbeat.c")
    if start < 0:
        it.fail("docs/plugins.md has no ```c block starting with /* heartbeat.c")
    code = md[start + 5:md.find("```", start + 5)]

    def body(tmp):
        prefix = os.path.join(tmp, "prefix")
        r = subprocess.run(["cmake", "--install", build, "--prefix", prefix], capture_output=True,
                           text=True)
        if r.returncode:
            it.fail("cmake --install: " + r.stdout[-1000:] + r.stderr[-1000:])
        inc = os.path.join(prefix, "include")
        it.expect("installed headers", sorted(os.listdir(os.path.join(inc, "strata"))),
                  ["client.h", "plugin.h"])
        cfile = os.path.join(tmp, "heartbeat.c")
        with open(cfile, "w") as f:
            f.write(code)
        pd = os.path.join(tmp, "plugins")
        os.makedirs(pd)
        os.chmod(pd, 0o755)
        lib = os.path.join(pd, "heartbeat.so")
        r = subprocess.run([cc, "-std=c11", "-Wall", "-Werror", "-shared", "-fPIC",
                            "-fvisibility=hidden", "-I", inc, "-o", lib, cfile],
                           capture_output=True, text=True)
        if r.returncode:
            it.fail("the example does not compile against the installed header:\n" + r.stderr)
        os.chmod(lib, 0o644)
        it.ok("docs example compiled with -I%s only" % inc)
        b = it.Broker(exe, tmp, {"plugin.dir": pd, "plugins": "hb", "plugin.hb.library": "heartbeat.so",
                                 "plugin.hb.topic": "heartbeats", "plugin.hb.interval.ms": "50",
                                 "num.partitions": "1",
                                 # plugin batches honour LogAppendTime like Produce does
                                 "log.message.timestamp.type": "LogAppendTime"})
        deadline = time.time() + 30
        recs = []
        while time.time() < deadline and len(recs) < 5:
            conn = it.Conn(b.port)
            err, _, _ = it.fetch(conn, "heartbeats", 0, 0, max_bytes=1)
            recs = [] if err else it.read_all(conn, "heartbeats", 0)
            conn.close()
            time.sleep(0.1)
        if len(recs) < 5:
            it.fail("only %d heartbeat records" % len(recs))
        vals = [json.loads(v) for _, _, v in recs]
        it.expect("keys", {k for _, k, _ in recs}, {b"heartbeat"})
        it.expect("beats", [v["value"] for v in vals[:5]], [0, 1, 2, 3, 4])
        conn = it.Conn(b.port)
        attrs = [it.batch_header(bb)["attributes"] for _, bb in it.read_all_batches(conn, "heartbeats", 0)]
        conn.close()
        if not attrs or any(not a & 0x08 for a in attrs):
            it.fail("plugin batches without the LogAppendTime attribute: %r" % attrs)
        it.ok("example plugin loaded by stratad produced %d points (LogAppendTime batches)" % len(recs))
        b.stop_ok()
    return it.run("strata-plugin-example-", body)


if __name__ == "__main__":
    sys.exit(main())
