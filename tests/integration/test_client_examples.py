#!/usr/bin/python3
"""docs/client.md's complete producer and consumer examples build against the
installed header and libstrata.so alone, and do what the page says.

usage: test_client_examples.py STRATAD BUILD_DIR SOURCE_DIR
  Extracts the ```c blocks starting with "/* producer.c" and "/* consumer.c"
  from docs/client.md, runs `cmake --install BUILD_DIR --prefix <tmp>/prefix`,
  compiles each with -I<prefix>/include -L<prefix>/lib -lstrata only, then
  against stratad: the producer writes keyed lines, a group consumer reads
  every one of them, more lines are produced, and a restarted consumer of the
  same group reads exactly the new ones (its commits held).
"""
import collections
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402


def block(md, first_line):
    start = md.find("```c\n" + first_line)
    if start < 0:
        it.fail("docs/client.md has no ```c block starting with %s" % first_line)
    return md[start + 5:md.find("```", start + 5)]


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    exe = it.stratad_arg(__doc__)
    build, src = os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        it.skip("no C compiler")
    with open(os.path.join(src, "docs", "client.md")) as f:
        md = f.read()
    sources = {"producer": block(md, "/* producer.c"), "consumer": block(md, "/* consumer.c")}

    def body(tmp):
        prefix = os.path.join(tmp, "prefix")
        r = subprocess.run(["cmake", "--install", build, "--prefix", prefix], capture_output=True,
                           text=True)
        if r.returncode:
            it.fail("cmake --install: " + r.stdout[-1000:] + r.stderr[-1000:])
        inc, lib = os.path.join(prefix, "include"), os.path.join(prefix, "lib")
        bins = {}
        for name, code in sources.items():
            cfile = os.path.join(tmp, name + ".c")
            with open(cfile, "w") as f:
                f.write(code)
            bins[name] = os.path.join(tmp, name)
            r = subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", inc, "-o",
                                bins[name], cfile, "-L", lib, "-lstrata"],
                               capture_output=True, text=True)
            if r.returncode:
                it.fail("%s.c does not compile against the installed library:\n%s" % (name, r.stderr))
        it.ok("producer.c and consumer.c compiled with -I%s -L%s -lstrata only" % (inc, lib))
        env = dict(os.environ, LD_LIBRARY_PATH=lib)

        b = it.Broker(exe, tmp)
        it.create_topic(b, "readings", partitions=3)
        boot = "127.0.0.1:%d" % b.port

        def produce(lo, hi):
            lines = "".join("pump-%d:%d\n" % (i % 5, i) for i in range(lo, hi))
            r = subprocess.run([bins["producer"], boot, "readings"], input=lines, env=env,
                               capture_output=True, text=True, timeout=60)
            n = hi - lo
            it.expect("producer exit", (r.returncode, r.stdout.strip()),
                      (0, "sent %d, delivered %d, failed 0" % (n, n)))

        def consume(count):
            r = subprocess.run([bins["consumer"], boot, "dashboards", "readings", str(count)],
                               env=env, capture_output=True, text=True, timeout=60)
            if r.returncode:
                it.fail("consumer exit %d: %s" % (r.returncode, r.stderr[-2000:]))
            if "assigned readings [0]" not in r.stderr:
                it.fail("consumer's rebalance callback did not report the assignment:\n" +
                        r.stderr[-2000:])
            return r.stdout.splitlines()

        produce(0, 300)
        got = consume(300)
        want = ["pump-%d=%d" % (i % 5, i) for i in range(300)]
        it.expect("first consumer read every record once", sorted(got), sorted(want))
        # per key (= per partition) in produce order
        by_key = collections.defaultdict(list)
        for line in got:
            k, v = line.split("=")
            by_key[k].append(int(v))
        for k, vs in by_key.items():
            it.expect("order of %s" % k, vs, sorted(vs))
        it.ok("300 records, each key in order")
        produce(300, 340)
        got = consume(40)
        it.expect("restarted consumer read exactly the new records", sorted(got),
                  sorted("pump-%d=%d" % (i % 5, i) for i in range(300, 340)))
        b.stop_ok()
    return it.run("strata-client-example-", body)


if __name__ == "__main__":
    sys.exit(main())
