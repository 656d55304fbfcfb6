#!/usr/bin/env python3
"""strata-bench against the real stratad (and NATS JetStream): what it reports,
never how fast.

    test_bench.py STRATAD STRATA_BENCH MODE

MODE  kafka    produce / consume / latency --json with libstrata (and librdkafka
               when built in) against stratad: every JSON field is there, the
               record counts are exact (the broker's end offsets agree with
               what produce says was acknowledged, consume reads them all, the
               latency run at 500 records/s for 2 s sends exactly 1000 and
               counts exactly the 750 intended after its 0.5 s warm-up), and
               bad input is refused with exit 2 / a JSON error
      compare  the NATS driver against a nats-server started here (JetStream,
               temp store), then `strata-bench compare --runs 1 --duration 1
               --json`: every system ran, the table's fields and ratios are in
               the JSON, and every server compare started is gone afterwards.
               Exit 77 when nats-server is not installed.
      cluster  `strata-bench compare --cluster 3 --runs 1 --duration 1 --json`:
               ZooKeeper + 3 stratad and a 3-node JetStream cluster; the three
               systems (stratad RF=1, RF=3, JetStream R3) each ran once with
               replicas 1 / 3 / 3, the RF=3/RF=1 and vs-JetStream ratios are
               in the JSON, and no ZooKeeper, stratad or nats-server compare
               started is left. Exit 77 without nats-server, java or
               ZooKeeper (compare exits 3 when ZooKeeper cannot start).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

USAGE = __doc__


def bench(exe, args, want_rc=0, timeout=120):
    p = subprocess.run([exe] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    if p.returncode != want_rc:
        it.fail("strata-bench %s: exit %d (want %d)\nstdout: %s\nstderr: %s" %
                (" ".join(args), p.returncode, want_rc, p.stdout.decode(errors="replace")[-3000:],
                 p.stderr.decode(errors="replace")[-3000:]))
    return p


def bench_json(exe, args, want_rc=0):
    p = bench(exe, args + ["--json", "-q"], want_rc)
    try:
        return json.loads(p.stdout)
    except ValueError:
        it.fail("strata-bench %s: not one JSON object: %r" % (" ".join(args), p.stdout[:500]))


HIST_KEYS = {"count", "p50", "p90", "p99", "p999", "max", "mean"}
TOP_KEYS = {"workload", "system", "client", "brokers", "topic", "config", "durability", "sent",
            "acked", "received", "errors", "bytes", "seconds", "records_per_s", "mb_per_s",
            "startup_s", "achieved_rate", "latency_ms", "ok", "error"}
CONFIG_KEYS = {"message_size", "partitions", "producers", "acks", "compression", "linger_ms",
               "batch_bytes", "idempotence", "rate", "duration_s", "records", "warmup_s",
               "max_pending", "properties"}


def check_shape(j, workload, client):
    it.expect("%s/%s JSON keys" % (workload, client), set(j) >= TOP_KEYS, True)
    it.expect("%s/%s config keys" % (workload, client), set(j["config"]) >= CONFIG_KEYS, True)
    for h in ("ack", "e2e"):
        if set(j["latency_ms"][h]) != HIST_KEYS:
            it.fail("latency_ms.%s keys: %r" % (h, sorted(j["latency_ms"][h])))
    it.expect("%s/%s workload, client" % (workload, client), (j["workload"], j["client"]),
              (workload, client))
    if not j["ok"] or j["error"] is not None or j["errors"] != 0:
        it.fail("%s/%s reported a failure: %r" % (workload, client, j))
    if not isinstance(j["durability"], str) or not j["durability"]:
        it.fail("no durability in %r" % j)


def end_offsets(b, topic, parts):
    c = it.Conn(b.port)
    total = 0
    for p in range(parts):
        err, _, off = it.list_offsets(c, topic, p, -1)
        if err:
            it.fail("ListOffsets %s[%d]: error %d" % (topic, p, err))
        total += off
    c.close()
    return total


def has_client(exe, broker, client):
    p = subprocess.run([exe, "produce", "-q", "--json", "--client", client, "-b", broker,
                        "-t", "probe-" + client, "-n", "1"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    return b"was not built in" not in p.stdout


def mode_kafka(stratad, exe):
    def body(tmp):
        b = it.Broker(stratad, tmp, {"log.level": "warn"})
        clients = ["libstrata"]
        if has_client(exe, b.addr, "rdkafka"):
            clients.append("librdkafka")
        else:
            it.ok("librdkafka not built in: its runs are left out")
        for client in clients:
            flag = "rdkafka" if client == "librdkafka" else "libstrata"
            topic = "p-" + flag
            j = bench_json(exe, ["produce", "--client", flag, "-b", b.addr, "-t", topic, "-n", "3000",
                                 "-p", "3", "--producers", "2", "-s", "200", "--linger-ms", "2"])
            check_shape(j, "produce", client)
            it.expect("%s produce counts (sent, acked, received)" % client,
                      (j["sent"], j["acked"], j["received"]), (3000, 3000, 0))
            it.expect("%s produce config" % client,
                      (j["config"]["partitions"], j["config"]["producers"], j["config"]["message_size"],
                       j["config"]["acks"], j["config"]["idempotence"]), (3, 2, 200, "all", True))
            it.expect("%s produce bytes" % client, j["bytes"], 3000 * 200)
            it.expect("%s ack latency samples" % client, j["latency_ms"]["ack"]["count"], 3000)
            it.expect("%s broker end offsets after produce" % client, end_offsets(b, topic, 3), 3000)
            # catch-up consume of the whole topic (to the end offsets at start)
            j = bench_json(exe, ["consume", "--client", flag, "-b", b.addr, "-t", topic])
            check_shape(j, "consume", client)
            it.expect("%s consume counts" % client, (j["received"], j["bytes"]), (3000, 3000 * 200))
            # at a fixed rate: exactly rate x duration records, warm-up excluded by intended time
            topic = "l-" + flag
            j = bench_json(exe, ["latency", "--client", flag, "-b", b.addr, "-t", topic, "-r", "500",
                                 "-d", "2", "--warmup", "0.5", "-s", "64"])
            check_shape(j, "latency", client)
            it.expect("%s latency counts (sent, acked, received)" % client,
                      (j["sent"], j["acked"], j["received"]), (1000, 1000, 1000))
            it.expect("%s latency samples (e2e, ack) after the warm-up" % client,
                      (j["latency_ms"]["e2e"]["count"], j["latency_ms"]["ack"]["count"]), (750, 750))
            lat = j["latency_ms"]["e2e"]
            if not (0 < lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"]):
                it.fail("percentiles not ordered: %r" % lat)
            it.ok("%s e2e percentiles ordered" % client)
        # cross-client: what librdkafka produced, libstrata reads (and the table output)
        if "librdkafka" in clients:
            j = bench_json(exe, ["consume", "-b", b.addr, "-t", "p-rdkafka", "-n", "3000"])
            it.expect("libstrata reads librdkafka's records", j["received"], 3000)
        p = bench(exe, ["produce", "-q", "-b", b.addr, "-t", "table", "-n", "100", "--acks", "1"])
        out = p.stdout.decode()
        for word in ("records/s", "MB/s", "ack latency", "durability", "100 acked"):
            if word not in out:
                it.fail("table lacks %r:\n%s" % (word, out))
        it.ok("human table has throughput, latency and durability")
        # bad input
        bench(exe, ["produce", "-b", b.addr, "-s", "8", "-n", "1"], want_rc=2)
        bench(exe, ["produce", "-b", b.addr, "--client", "kafka-java", "-n", "1"], want_rc=2)
        bench(exe, ["latency", "-b", b.addr, "-r", "0"], want_rc=2)
        bench(exe, ["produce", "-n", "1"], want_rc=2)
        it.ok("bad options -> exit 2")
        j = bench_json(exe, ["consume", "-b", b.addr, "-t", "no-such-topic"], want_rc=1)
        it.expect("consume of a missing topic: ok", j["ok"], False)
        if "does not exist" not in j["error"]:
            it.fail("error: %r" % j["error"])
        j = bench_json(exe, ["produce", "-b", b.addr, "-t", "no-such-2", "--no-create", "-n", "5"],
                       want_rc=1)
        it.expect("--no-create on a missing topic: ok", j["ok"], False)
        j = bench_json(exe, ["produce", "-b", b.addr, "-t", "x", "-n", "5", "-X", "no.such.key=1"],
                       want_rc=1)
        if "no.such.key" not in j["error"]:
            it.fail("unknown client property not named: %r" % j["error"])
        it.ok("errors reported in the JSON: %s" % j["error"])
        b.stop_ok()
    return it.run("strata-bench-", body)


def nats_server():
    return shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.access("/usr/sbin/nats-server", os.X_OK) else None)


def pids_of(exe_path, marker):
    """pids whose executable is exe_path and whose command line mentions marker
    (compare's --dir), so servers of tests running beside this one don't count."""
    out = set()
    real = os.path.realpath(exe_path)
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.path.realpath("/proc/%s/exe" % d) != real:
                    continue
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if marker.encode() in f.read():
                        out.add(int(d))
            except OSError:
                pass
    return out


def mode_compare(stratad, exe):
    ns = nats_server()
    if not ns:
        it.skip("nats-server is not installed (scripts/deps.sh installs it)")

    def body(tmp):
        port = it.free_port()
        log = open(os.path.join(tmp, "nats.log"), "wb")
        proc = subprocess.Popen([ns, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd",
                                 os.path.join(tmp, "js")], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline or proc.poll() is not None:
                        it.fail("nats-server did not start")
                    time.sleep(0.05)
            url = "nats://127.0.0.1:%d" % port
            probe = subprocess.run([exe, "produce", "-q", "--json", "--client", "nats", "-b", url,
                                    "-t", "probe", "-n", "1"], stdout=subprocess.PIPE, timeout=60)
            if b"was not built in" in probe.stdout:
                it.skip("strata-bench was built without libnats-dev")
            j = bench_json(exe, ["produce", "--client", "nats", "-b", url, "-t", "js.p", "-n", "2000",
                                 "-s", "100", "--max-pending", "256"])
            check_shape(j, "produce", "nats")
            it.expect("nats produce counts", (j["sent"], j["acked"], j["system"]),
                      (2000, 2000, "jetstream"))
            if "fsync" not in j["durability"]:
                it.fail("JetStream durability not stated: %r" % j["durability"])
            j = bench_json(exe, ["consume", "--client", "nats", "-b", url, "-t", "js.p"])
            check_shape(j, "consume", "nats")
            it.expect("nats consume counts", (j["received"], j["bytes"]), (2000, 200000))
            j = bench_json(exe, ["latency", "--client", "nats", "-b", url, "-t", "js.l", "-r", "500",
                                 "-d", "2", "--warmup", "0.5", "-s", "64"])
            check_shape(j, "latency", "nats")
            it.expect("nats latency counts", (j["sent"], j["received"], j["latency_ms"]["e2e"]["count"]),
                      (1000, 1000, 750))
            bench_json(exe, ["produce", "--client", "nats", "-b", url, "-t", "js.x", "-p", "2",
                             "-n", "1"], want_rc=1)
            it.ok("nats: --partitions 2 refused")
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
            log.close()

        cmp_dir = os.path.join(tmp, "cmp")
        p = bench(exe, ["compare", "--runs", "1", "--duration", "1", "--rate", "500", "--json",
                        "--stratad", stratad, "--nats-server", ns, "--dir", cmp_dir], timeout=240)
        try:
            j = json.loads(p.stdout)
        except ValueError:
            it.fail("compare --json: not JSON: %r" % p.stdout[:500])
        labels = [(s["label"], s["server"]) for s in j["systems"]]
        want = [("libstrata -> stratad", "stratad (fsync)"), ("libstrata -> stratad", "stratad (OS flush)"),
                ("nats.c -> JetStream", "nats-server (file)")]
        for w in want:
            if w not in labels:
                it.fail("compare lacks %r: %r" % (w, labels))
        it.ok("compare ran", labels)
        for s in j["systems"]:
            it.expect("%s / %s runs ok" % (s["label"], s["server"]), s["runs_ok"], 1)
            for k in ("produce_records_per_s", "consume_records_per_s", "e2e_p50_ms", "e2e_p99_ms",
                      "e2e_p999_ms", "e2e_max_ms", "produce_mb_per_s"):
                v = s[k]
                if set(v) != {"min", "median", "max", "runs"} or len(v["runs"]) != 1 or v["median"] <= 0:
                    it.fail("%s %s: %r" % (s["label"], k, v))
            if "fsync" not in s["durability"]:
                it.fail("durability not stated: %r" % s)
        it.expect("compare machine cores", j["machine"]["cores"], os.cpu_count())
        if not (j["machine"]["fdatasync_per_s"] > 0 and
                0 < j["machine"]["fdatasync_p50_ms"] <= j["machine"]["fdatasync_p99_ms"]):
            it.fail("fdatasync probe: %r" % j["machine"])
        it.ok("fdatasync probe reported")
        for k in ("stratad_fsync_vs_jetstream_produce", "stratad_os_vs_jetstream_produce",
                  "jetstream_vs_stratad_fsync_e2e_p99"):
            if k not in j["ratios"]:
                it.fail("ratio %s missing: %r" % (k, j["ratios"]))
        it.ok("ratios", sorted(j["ratios"]))
        if "goal" not in p.stderr.decode():
            it.fail("compare --json: the table (stderr) lacks the goals")
        left = pids_of(stratad, cmp_dir) | pids_of(ns, cmp_dir)
        it.expect("servers left running by compare", left, set())
        if os.path.exists(os.path.join(tmp, "cmp")):
            it.fail("compare left its data dir")
        it.ok("compare removed its data dir")
    return it.run("strata-bench-cmp-", body)


def mode_cluster(stratad, exe):
    ns = nats_server()
    if not ns:
        it.skip("nats-server is not installed (scripts/deps.sh installs it)")
    java = shutil.which("java")
    if not java or not os.path.exists("/usr/share/java/zookeeper.jar"):
        it.skip("needs java and /usr/share/java/zookeeper.jar (Debian's zookeeper package: "
                "bash scripts/deps.sh)")

    def body(tmp):
        cmp_dir = os.path.join(tmp, "cmp")
        args = ["compare", "--cluster", "3", "--runs", "1", "--duration", "1", "--rate", "500",
                "--json", "--stratad", stratad, "--nats-server", ns, "--dir", cmp_dir]
        p = subprocess.run([exe] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=240)
        err = p.stderr.decode(errors="replace")
        if p.returncode == 3:
            it.skip("compare --cluster: ZooKeeper could not start: %s" % err[-500:])
        if "built without libnats-dev" in err:
            it.skip("strata-bench was built without libnats-dev")
        if p.returncode != 0:
            it.fail("compare --cluster 3: exit %d\nstderr: %s" % (p.returncode, err[-3000:]))
        try:
            j = json.loads(p.stdout)
        except ValueError:
            it.fail("compare --cluster --json: not JSON: %r" % p.stdout[:500])
        got = [(s["server"], s["replicas"], s["runs_ok"]) for s in j["systems"]]
        it.expect("cluster systems (server, replicas, runs ok)", got,
                  [("stratad RF=1", 1, 1), ("stratad RF=3", 3, 1), ("JetStream R3", 3, 1)])
        for s in j["systems"]:
            for k in ("produce_records_per_s", "consume_records_per_s", "e2e_p50_ms", "e2e_p99_ms"):
                v = s[k]
                if set(v) != {"min", "median", "max", "runs"} or len(v["runs"]) != 1 or v["median"] <= 0:
                    it.fail("%s %s: %r" % (s["server"], k, v))
            if not s["durability"]:
                it.fail("durability not stated: %r" % s)
        it.expect("config", (j["config"]["cluster"], j["config"]["min_insync_replicas"]), (3, 2))
        want = {"rfn_vs_rf1_produce", "rfn_vs_rf1_e2e_p99", "stratad_rfn_vs_jetstream_rn_produce",
                "jetstream_rn_vs_stratad_rfn_e2e_p99", "stratad_rfn_vs_jetstream_rn_consume"}
        it.expect("cluster ratios", set(j["ratios"]), want)
        if "goal" not in err:
            it.fail("compare --json: the table (stderr) lacks the goals")
        left = pids_of(stratad, cmp_dir) | pids_of(ns, cmp_dir) | pids_of(java, cmp_dir)
        it.expect("servers left running by compare --cluster", left, set())
        if os.path.exists(cmp_dir):
            it.fail("compare --cluster left its data dir")
        it.ok("compare --cluster removed its data dir")
    return it.run("strata-bench-cl-", body)


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("kafka", "compare", "cluster"):
        print(USAGE)
        return 2
    stratad = it.stratad_arg(USAGE)
    exe = os.path.abspath(sys.argv[2])
    if not os.access(exe, os.X_OK):
        it.fail("%s is not executable (build first)" % exe)
    return {"kafka": mode_kafka, "compare": mode_compare,
            "cluster": mode_cluster}[sys.argv[3]](stratad, exe)


if __name__ == "__main__":
    sys.exit(main())
