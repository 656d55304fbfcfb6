#!/usr/bin/env python3
"""The strata CLI end to end against stratad (and libstrata's admin client under it).

    test_cli.py STRATAD STRATA MODE

MODE  topics  cluster info (table + JSON); topic create/list/describe/alter-config/
              delete with the results checked through describe --format json;
              every error path: Kafka errors exit 1 naming the error
              (TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG,
              INVALID_TOPIC_EXCEPTION, ECONNREFUSED), usage errors exit 2, --help
              on every command and subcommand exits 0
      data    strata produce (key separator, headers, gzip, --rate, --progress,
              files) read back byte for byte by kcat and by strata consume in a
              template and in JSON; kcat-produced records read back by strata
              consume identically to kcat -C; --from offset / @timestamp (ms and
              ISO 8601) / end, -n, -p
      api     (test_cli.py STRATAD STRATA api CL_ADMIN_DRIVE) libstrata's admin API as an
              application uses it: tests/integration/libstrata/cl_admin_drive.c runs every
              strata_admin_* call against the broker, then the CLI reads back its results
      groups  a kafka-python consumer group: group list/describe (members, client
              id, host, assignment, committed offset, log end, lag) while active and
              after it left; reset-offsets refused (UNKNOWN_MEMBER_ID) while members
              are active; dry runs change nothing; --execute to earliest / latest /
              an offset (clamped) / a datetime, each checked through describe; a
              group made by strata consume --group commits what it read
"""
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402
from strata_it import expect, fail, ok  # noqa: E402

STRATA = None


def cli(b, *args, rc=0, stdin=None, timeout=60, addr=None):
    """Runs strata -b <broker> args; checks the exit code; returns (stdout, stderr) as bytes."""
    cmd = [STRATA, "-b", addr or b.addr] + list(args)
    try:
        r = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        b.dump()
        fail("%s timed out" % " ".join(cmd))
    if rc is not None and r.returncode != rc:
        b.dump()
        fail("%s exited %d (want %d)\nstdout: %s\nstderr: %s" % (
            " ".join(cmd), r.returncode, rc, r.stdout.decode(errors="replace")[-2000:],
            r.stderr.decode(errors="replace")[-2000:]))
    return r.stdout, r.stderr


def cli_json(b, *args):
    out, _ = cli(b, *(list(args) + ["--format", "json"]))
    try:
        return json.loads(out)
    except ValueError:
        fail("strata %s: not JSON: %r" % (" ".join(args), out[:500]))


def cli_err(b, want_rc, want_text, *args, **kw):
    """A failing command: exit code want_rc and want_text on stderr."""
    _, err = cli(b, *args, rc=want_rc, **kw)
    text = err.decode(errors="replace")
    if want_text not in text:
        fail("strata %s: stderr %r lacks %r" % (" ".join(args), text, want_text))
    ok("strata %s -> exit %d, %s" % (" ".join(args), want_rc, want_text))


def describe_topic(b, name):
    d = cli_json(b, "topic", "describe", name, "--all-configs")
    expect("describe %s returns one topic" % name, len(d), 1)
    return d[0]


def configs(desc):
    return {c["name"]: (c["value"], c["source"]) for c in desc["configs"]}


# ---- topics ----------------------------------------------------------------------

def mode_topics(b):
    out, _ = cli(b, "cluster", "info")
    text = out.decode()
    for word in ("CLUSTER-ID", "CONTROLLER", "BROKERS", "127.0.0.1", str(b.port)):
        if word not in text:
            fail("cluster info lacks %r:\n%s" % (word, text))
    ok("cluster info table")
    ci = cli_json(b, "cluster", "info")
    expect("cluster info brokers", [(x["id"], x["host"], x["port"]) for x in ci["brokers"]],
           [(0, "127.0.0.1", b.port)])
    expect("cluster info controller", ci["controller_id"], 0)
    if not ci["cluster_id"]:
        fail("no cluster id")
    base_topics, base_parts = ci["topics"], ci["partitions"]

    out, _ = cli(b, "topic", "create", "t1", "-p", "3", "-c", "retention.ms=12345",
                 "--config", "segment.bytes=1048576")
    expect("create t1 table", out.decode().split(), ["TOPIC", "STATUS", "t1", "OK"])
    res = cli_json(b, "topic", "create", "t2", "t3", "--partitions", "2")
    expect("create t2 t3 JSON", res, [{"topic": "t2", "error": None, "message": None},
                                      {"topic": "t3", "error": None, "message": None}])
    lst = cli_json(b, "topic", "list")
    expect("topic list", [(t["name"], t["partitions"], t["replicas"]) for t in lst],
           [("t1", 3, 1), ("t2", 2, 1), ("t3", 2, 1)])
    out, _ = cli(b, "topic", "list")
    lines = out.decode().splitlines()
    expect("topic list table header", lines[0].split(), ["NAME", "PARTITIONS", "REPLICAS"])
    # aligned: every row's second column starts where the header's does
    col = lines[0].index("PARTITIONS")
    expect("topic list table aligned", [ln[col - 2:col] == "  " and ln[col] != " " for ln in lines],
           [True] * 4)
    ci = cli_json(b, "cluster", "info")
    expect("cluster info counts", (ci["topics"], ci["partitions"]), (base_topics + 3, base_parts + 7))

    d = describe_topic(b, "t1")
    expect("t1 partitions", [(p["partition"], p["leader"], p["replicas"], p["isr"],
                              p["log_start_offset"], p["high_watermark"]) for p in d["partitions"]],
           [(i, 0, [0], [0], 0, 0) for i in range(3)])
    c = configs(d)
    expect("t1 retention.ms", c["retention.ms"], ("12345", "DYNAMIC_TOPIC_CONFIG"))
    expect("t1 segment.bytes", c["segment.bytes"], ("1048576", "DYNAMIC_TOPIC_CONFIG"))
    expect("t1 cleanup.policy", c["cleanup.policy"][1], "DEFAULT_CONFIG")
    out, _ = cli(b, "topic", "describe", "t1")
    text = out.decode()
    for word in ("SUMMARY", "CONFIGS", "PARTITIONS", "retention.ms", "12345", "HIGH-WATERMARK"):
        if word not in text:
            fail("describe table lacks %r:\n%s" % (word, text))
    if "cleanup.policy" in text:
        fail("describe without --all-configs lists a default:\n" + text)
    ok("topic describe table (overrides only)")

    out, _ = cli(b, "topic", "alter-config", "t1", "--set", "cleanup.policy=compact",
                 "--delete", "retention.ms")
    expect("alter-config table", out.decode().split(), ["TOPIC", "STATUS", "t1", "OK"])
    c = configs(describe_topic(b, "t1"))
    expect("after alter: cleanup.policy", c["cleanup.policy"], ("compact", "DYNAMIC_TOPIC_CONFIG"))
    expect("after alter: retention.ms back to default", c["retention.ms"][1], "DEFAULT_CONFIG")
    expect("after alter: other override kept", c["segment.bytes"], ("1048576", "DYNAMIC_TOPIC_CONFIG"))

    # Kafka errors: exit 1 with the error's name
    cli_err(b, 1, "TOPIC_ALREADY_EXISTS", "topic", "create", "t1")
    cli_err(b, 1, "INVALID_CONFIG", "topic", "create", "bad1", "-c", "retention.ms=abc")
    cli_err(b, 1, "INVALID_TOPIC_EXCEPTION", "topic", "create", "bad name!")
    cli_err(b, 1, "INVALID_CONFIG", "topic", "alter-config", "t1", "--set", "retention.ms=soon")
    expect("failed alter changed nothing", configs(describe_topic(b, "t1"))["cleanup.policy"],
           ("compact", "DYNAMIC_TOPIC_CONFIG"))
    cli_err(b, 1, "UNKNOWN_TOPIC_OR_PARTITION", "topic", "describe", "nope")
    cli_err(b, 1, "UNKNOWN_TOPIC_OR_PARTITION", "topic", "delete", "nope")
    cli_err(b, 1, "UNKNOWN_TOPIC_OR_PARTITION", "topic", "alter-config", "nope", "--set", "a=b")
    cli_err(b, 1, "UNKNOWN_TOPIC_OR_PARTITION", "produce", "nope", stdin=b"x\n")
    cli_err(b, 1, "UNKNOWN_TOPIC_OR_PARTITION", "consume", "nope", "-e")
    cli_err(b, 1, "UNKNOWN_TOPIC_OR_PARTITION", "produce", "t2", "-p", "7", stdin=b"x\n")
    cli_err(b, 1, "MESSAGE_TOO_LARGE", "produce", "t2", stdin=b"x" * 2000000 + b"\n")
    cli_err(b, 1, "ECONNREFUSED", "topic", "list", addr="127.0.0.1:%d" % it.free_port())
    dead = "127.0.0.1:%d" % it.free_port()
    for addr in (dead + "," + b.addr, b.addr + "," + dead):
        out, _ = cli(b, "topic", "list", "--format", "json", addr=addr)
        expect("-b %s: the dead entry is skipped" % addr, len(json.loads(out)), 3)
    lst = cli_json(b, "topic", "list")
    expect("failed creates made nothing", [t["name"] for t in lst], ["t1", "t2", "t3"])

    # usage errors: exit 2
    for args in (["topic"], ["topic", "bogus"], ["topic", "create"], ["topic", "create", "x", "-p", "0"],
                 ["topic", "create", "x", "-p", "abc"], ["topic", "create", "x", "-c", "novalue"],
                 ["topic", "list", "--bogus"], ["topic", "list", "extra"], ["topic", "describe"],
                 ["topic", "alter-config", "t1"], ["topic", "alter-config", "t1", "--set", "x"],
                 ["-X", "no.such.key=1", "topic", "list"], ["-X", "novalue", "topic", "list"],
                 ["topic", "list", "--format", "xml"], ["bogus"], [], ["cluster"], ["cluster", "x"],
                 ["produce"], ["produce", "t1", "--rate", "0"], ["produce", "t1", "-z", "brotli"],
                 ["produce", "t1", "--acks", "2"], ["consume"], ["consume", "t1", "t2"],
                 ["consume", "t1", "--from", "nowhere"], ["consume", "t1", "--from", "@yesterday"],
                 ["consume", "t1", "-n", "0"], ["consume", "t1", "--group", "g", "-p", "0"],
                 ["group"], ["group", "describe"], ["group", "reset-offsets", "g", "--topic", "t1"],
                 ["group", "reset-offsets", "g", "--to-earliest"],
                 ["group", "reset-offsets", "g", "--to-earliest", "--to-latest", "--all-topics"],
                 ["group", "reset-offsets", "g", "--all-topics", "--to-datetime", "noon"],
                 ["group", "reset-offsets", "--all-topics", "--to-earliest"]):
        _, err = cli(b, *args, rc=2)
        if not err.strip():
            fail("strata %s: exit 2 without a message" % " ".join(args))
    ok("usage errors exit 2 with a message")

    # --help everywhere: exit 0, usage on stdout
    for args in (["--help"], ["topic", "--help"], ["topic", "create", "--help"], ["topic", "list", "-h"],
                 ["topic", "describe", "--help"], ["topic", "delete", "--help"],
                 ["topic", "alter-config", "--help"], ["produce", "--help"], ["consume", "--help"],
                 ["group", "--help"], ["group", "list", "--help"], ["group", "describe", "--help"],
                 ["group", "reset-offsets", "--help"], ["cluster", "--help"], ["cluster", "info", "--help"]):
        out, _ = cli(b, *args)
        if not out.startswith(b"usage: strata"):
            fail("strata %s: no usage on stdout: %r" % (" ".join(args), out[:200]))
    ok("--help on every command and subcommand")
    out, _ = cli(b, "--version")
    if not out.startswith(b"strata "):
        fail("--version: %r" % out)

    res = cli_json(b, "topic", "delete", "t2", "t3")
    expect("delete t2 t3", [r["error"] for r in res], [None, None])
    cli(b, "topic", "delete", "t1")
    expect("topics after delete", cli_json(b, "topic", "list"), [])
    # STRATA_BOOTSTRAP is the default broker
    r = subprocess.run([STRATA, "cluster", "info", "--format", "json"], stdout=subprocess.PIPE,
                       env=dict(os.environ, STRATA_BOOTSTRAP=b.addr), timeout=60)
    expect("STRATA_BOOTSTRAP used", (r.returncode, json.loads(r.stdout)["brokers"][0]["port"]),
           (0, b.port))


# ---- data --------------------------------------------------------------------------

KFMT = "%p|%o|%K|%k|%S|%s|%h\\n"   # kcat -f
SFMT = "%p|%o|%K|%k|%S|%v|%h\\n"   # the same fields in strata's template


def kcat_read(b, topic, extra=()):
    return it.kcat(b, ["-C", "-t", topic, "-e", "-q", "-f", KFMT] + list(extra)).decode()


def parse_rows(text):
    """(partition, offset, key, value, headers) sorted; a null key/value is "<null>"."""
    rows = []
    for line in text.splitlines():
        p, o, kl, k, vl, v, h = line.split("|")
        rows.append((int(p), int(o), "<null>" if kl == "-1" else k, "<null>" if vl == "-1" else v, h))
    return sorted(rows)


def mode_data(b):
    cli(b, "topic", "create", "d", "-p", "3")
    lines = ["key-%d:value-%d" % (i, i) for i in range(200)]
    lines += ["no separator here", "k-empty:", ":v-empty-key", "k-colon:a:b:c", "ключ:значение ✓"]
    data = ("\n".join(lines) + "\n").encode()
    cli(b, "produce", "d", "-k", ":", "-H", "h1=one", "-H", "h2=two=2", stdin=data)
    want = []
    for ln in lines:
        k, sep, v = ln.partition(":")
        want.append((k, v) if sep else ("<null>", ln))
    hdr = "h1=one,h2=two=2"
    krows = parse_rows(kcat_read(b, "d"))
    expect("kcat reads every produced record once",
           sorted((k, v, h) for _, _, k, v, h in krows), sorted((k, v, hdr) for k, v in want))
    out, _ = cli(b, "consume", "d", "-e", "-f", SFMT)
    expect("strata consume template == kcat -C, byte for byte", parse_rows(out.decode()), krows)
    raw_k = kcat_read(b, "d").encode()
    raw_s, _ = cli(b, "consume", "d", "-e", "-f", SFMT)
    expect("template output bytes identical to kcat's (sorted lines)",
           sorted(raw_s.split(b"\n")), sorted(raw_k.split(b"\n")))
    out, _ = cli(b, "consume", "d", "-e", "--format", "json")
    js = [json.loads(x) for x in out.decode().splitlines()]
    expect("JSON records", sorted((r["partition"], r["offset"], "<null>" if r["key"] is None else r["key"],
                                   "<null>" if r["value"] is None else r["value"],
                                   ",".join("%s=%s" % (h["key"], h["value"]) for h in r["headers"]))
                                  for r in js), krows)
    if not all(r["topic"] == "d" and r["timestamp"] > 0 for r in js):
        fail("JSON records lack topic/timestamp")
    ok("JSON: topic and timestamp on every record")

    # records written by kcat (gzip, keys, headers) read by strata consume like kcat -C reads them
    cli(b, "topic", "create", "k", "-p", "2")
    kin = "".join("kk%d\tvv%d %s\n" % (i, i, "x" * (i % 37)) for i in range(300)).encode()
    it.kcat(b, ["-P", "-t", "k", "-K", "\t", "-z", "gzip", "-H", "src=kcat"], stdin=kin)
    krows = parse_rows(kcat_read(b, "k"))
    expect("kcat wrote 300", len(krows), 300)
    out, _ = cli(b, "consume", "k", "-e", "-f", SFMT)
    expect("strata consume of kcat's gzip records == kcat -C", parse_rows(out.decode()), krows)

    # the reader goes away (strata consume | head -1): it stops, exit 0
    pc = subprocess.Popen([STRATA, "-b", b.addr, "consume", "d"], stdout=subprocess.PIPE)
    first = pc.stdout.readline()
    pc.stdout.close()
    try:
        prc = pc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pc.kill()
        fail("strata consume kept running after its reader closed the pipe")
    expect("consume | head -1: a record, then exit 0", (bool(first.strip()), prc), (True, 0))

    # -n, -p, --from offset / end
    out, _ = cli(b, "consume", "d", "-n", "7", "-f", "%o\\n")
    expect("-n 7", len(out.splitlines()), 7)
    hw0 = describe_topic(b, "d")["partitions"][0]["high_watermark"]
    out, _ = cli(b, "consume", "d", "-p", "0", "--from", "3", "-e", "-f", "%p:%o\\n")
    expect("-p 0 --from 3", out.decode().split(), ["0:%d" % o for o in range(3, hw0)])
    out, _ = cli(b, "consume", "d", "--from", "end", "-e")
    expect("--from end -e reads nothing", out, b"")

    # timestamps: wave A, then wave B once the clock has passed A's last timestamp
    cli(b, "topic", "create", "ts", "-p", "1")
    cli(b, "produce", "ts", stdin=b"".join(b"a%d\n" % i for i in range(10)))
    rows = cli(b, "consume", "ts", "-e", "-f", "%T %v\\n")[0].decode().split("\n")
    last_a = max(int(r.split()[0]) for r in rows if r)
    while int(time.time() * 1000) <= last_a:
        time.sleep(0.01)
    cli(b, "produce", "ts", stdin=b"".join(b"b%d\n" % i for i in range(10)))
    rows = [r.split() for r in cli(b, "consume", "ts", "-e", "-f", "%T %o %v\\n")[0].decode().splitlines()]
    first_b = min(int(t) for t, _, v in rows if v.startswith("b"))
    out, _ = cli(b, "consume", "ts", "--from", "@%d" % first_b, "-e", "-f", "%v\\n")
    expect("--from @ms reads wave B only", out.decode().split(), ["b%d" % i for i in range(10)])
    iso = datetime.datetime.fromtimestamp(first_b / 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (first_b % 1000)
    out, _ = cli(b, "consume", "ts", "--from", "@" + iso, "-e", "-f", "%v\\n")
    expect("--from @ISO-8601 (%s) reads wave B only" % iso, out.decode().split(),
           ["b%d" % i for i in range(10)])
    plus2 = datetime.datetime.fromtimestamp(first_b / 1000, datetime.timezone(
        datetime.timedelta(hours=2))).strftime("%Y-%m-%dT%H:%M:%S.") + "%03d+02:00" % (first_b % 1000)
    out, _ = cli(b, "consume", "ts", "--from", "@" + plus2, "-e", "-f", "%v\\n")
    expect("--from @%s (zone offset) reads wave B only" % plus2, out.decode().split(),
           ["b%d" % i for i in range(10)])
    out, _ = cli(b, "consume", "ts", "--from", "@%d" % (last_a + 10 ** 9), "-e")
    expect("--from @future -e reads nothing", out, b"")

    # JSON escaping: quotes, backslashes, control bytes, UTF-8 kept, other bytes as U+00XX
    cli(b, "topic", "create", "esc", "-p", "1")
    raw = b'q"uote\\back\ttab\x01ctl\x7f \xc3\xa9 \xe2\x9c\x93 bad\xff\xc3 end'
    cli(b, "produce", "esc", "-k", "|", stdin=b"k\x02ey|" + raw + b"\n")
    rec = json.loads(cli(b, "consume", "esc", "-e", "--format", "json")[0])
    expect("JSON value escaped and parsed back", rec["value"],
           'q"uote\\back\ttab\x01ctl\x7f \u00e9 \u2713 bad\u00ff\u00c3 end')
    expect("JSON key with a control byte", rec["key"], "k\x02ey")
    out, _ = cli(b, "consume", "esc", "-e", "-f", "%v")
    expect("template writes the raw bytes", out, raw)

    # files, gzip, --rate, --acks, --progress
    tmp = os.path.join(b.tmp, "in.txt")
    with open(tmp, "wb") as f:
        f.write(b"".join(b"f%d\n" % i for i in range(5000)))
    cli(b, "topic", "create", "f", "-p", "2")
    _, err = cli(b, "produce", "f", tmp, "-", "-z", "gzip", "--acks", "all", "--progress",
                 stdin=b"stdin-line\n")
    final = err.decode().replace("\r", "\n").strip().splitlines()[-1]
    if not final.startswith("5001 records"):
        fail("--progress final line %r" % final)
    ok("--progress final line: %s" % final.strip())
    got = it.kcat(b, ["-C", "-t", "f", "-e", "-q", "-f", "%s\n"]).decode().split()
    expect("files + stdin via gzip, read by kcat", sorted(got),
           sorted(["f%d" % i for i in range(5000)] + ["stdin-line"]))
    # Ctrl-C while reading a pipe: what was read is delivered, exit 0
    pr = subprocess.Popen([STRATA, "-b", b.addr, "produce", "f", "-p", "0"], stdin=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    pr.stdin.write(b"".join(b"int%d\n" % i for i in range(5)))
    pr.stdin.flush()
    deadline = time.time() + 30
    while time.time() < deadline:
        got = cli(b, "consume", "f", "-p", "0", "-e", "-f", "%v\\n")[0].decode().split()
        if "int4" in got:
            break
        time.sleep(0.1)
    pr.send_signal(signal.SIGINT)
    try:
        prc = pr.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pr.kill()
        fail("strata produce did not stop on SIGINT")
    expect("SIGINT: exit 0, the 5 lines delivered",
           (prc, [x for x in got if x.startswith("int")]), (0, ["int%d" % i for i in range(5)]))
    pr.stdin.close()
    pr.stderr.close()
    cli(b, "produce", "f", "--rate", "500", "--acks", "1", "-p", "1",
        stdin=b"".join(b"r%d\n" % i for i in range(20)))
    out, _ = cli(b, "consume", "f", "-p", "1", "-e", "-f", "%v\\n")
    expect("--rate -p 1: 20 records in order at the tail of partition 1",
           [x for x in out.decode().split() if x.startswith("r")], ["r%d" % i for i in range(20)])


# ---- groups ------------------------------------------------------------------------

def group_desc(b, g):
    d = cli_json(b, "group", "describe", g)
    expect("describe %s returns one group" % g, len(d), 1)
    return d[0]


def committed(d):
    return {(o["topic"], o["partition"]): o["committed_offset"] for o in d["offsets"]}


def mode_groups(b):
    try:
        import kafka
    except ImportError:
        it.skip("kafka-python (python3-kafka) not installed")
    cli(b, "topic", "create", "g", "-p", "4")
    cli(b, "produce", "g", "-k", ":", stdin=b"".join(b"k%d:v%d\n" % (i, i) for i in range(40)))
    leo = {p["partition"]: p["high_watermark"] for p in describe_topic(b, "g")["partitions"]}
    expect("40 records over 4 partitions", sum(leo.values()), 40)

    c = kafka.KafkaConsumer(bootstrap_servers=b.addr, group_id="grp", client_id="cli-test-client",
                            enable_auto_commit=False, auto_offset_reset="earliest",
                            session_timeout_ms=6000, heartbeat_interval_ms=500,
                            consumer_timeout_ms=200, request_timeout_ms=15000)
    c.subscribe(["g"])
    n, deadline = 0, time.time() + 40
    while n < 40 and time.time() < deadline:
        for recs in c.poll(timeout_ms=200).values():
            n += len(recs)
    expect("kafka-python consumed", n, 40)
    c.commit()
    d = group_desc(b, "grp")
    expect("active group: state, protocol", (d["state"], d["protocol_type"], d["protocol"]),
           ("Stable", "consumer", "range"))
    expect("active group: one member", len(d["members"]), 1)
    m = d["members"][0]
    expect("member client id", m["client_id"], "cli-test-client")
    if "127.0.0.1" not in m["host"] or not m["member_id"].startswith("cli-test-client"):
        fail("member host / id: %r" % m)
    expect("member assignment", [(a["topic"], sorted(a["partitions"])) for a in m["assignment"]],
           [("g", [0, 1, 2, 3])])
    expect("committed == log end, lag 0",
           sorted((o["partition"], o["committed_offset"], o["log_end_offset"], o["lag"], o["member_id"])
                  for o in d["offsets"]),
           [(p, leo[p], leo[p], 0, m["member_id"]) for p in range(4)])
    out, _ = cli(b, "group", "describe", "grp")
    text = out.decode()
    for word in ("Stable", "cli-test-client", m["member_id"], "g:0,1,2,3", "TOTAL-LAG", "LAG"):
        if word not in text:
            fail("group describe table lacks %r:\n%s" % (word, text))
    ok("group describe table")
    # Kafka refuses new offsets while the group has members
    cli_err(b, 1, "UNKNOWN_MEMBER_ID", "group", "reset-offsets", "grp", "--topic", "g",
            "--to-earliest", "--execute")
    expect("refused reset changed nothing", committed(group_desc(b, "grp")),
           {("g", p): leo[p] for p in range(4)})
    c.close(autocommit=False)

    lst = cli_json(b, "topic", "list", "--internal")
    expect("topic list -i shows __consumer_offsets as internal",
           [(t["name"], t["internal"]) for t in lst if t["name"].startswith("__")],
           [("__consumer_offsets", True)])
    expect("topic list hides it", [t["name"] for t in cli_json(b, "topic", "list")], ["g"])
    gl = cli_json(b, "group", "list")
    expect("group list after close", [(g["group"], g["state"], g["members"]) for g in gl],
           [("grp", "Empty", 0)])
    cli(b, "produce", "g", "-p", "2", stdin=b"".join(b"more%d\n" % i for i in range(8)))
    leo[2] += 8
    d = group_desc(b, "grp")
    expect("lag after 8 more records on partition 2", (d["state"], d["total_lag"],
           {o["partition"]: o["lag"] for o in d["offsets"]}), ("Empty", 8, {0: 0, 1: 0, 2: 8, 3: 0}))

    # dry runs change nothing
    before = committed(d)
    plan = cli_json(b, "group", "reset-offsets", "grp", "--topic", "g", "--to-earliest")
    expect("dry-run plan to earliest", [(p["partition"], p["current_offset"], p["new_offset"], p["applied"])
                                        for p in plan], [(p, before[("g", p)], 0, False) for p in range(4)])
    _, err = cli(b, "group", "reset-offsets", "grp", "--all-topics", "--to-offset", "1")
    if b"dry run" not in err:
        fail("dry run does not say so: %r" % err)
    expect("dry runs changed nothing", committed(group_desc(b, "grp")), before)

    cli(b, "group", "reset-offsets", "grp", "--topic", "g", "--to-earliest", "--execute")
    d = group_desc(b, "grp")
    expect("--to-earliest --execute", committed(d), {("g", p): 0 for p in range(4)})
    expect("lag == log end", d["total_lag"], sum(leo.values()))
    cli(b, "group", "reset-offsets", "grp", "--topic", "g:0,3", "--to-offset", "3", "--execute")
    cli(b, "group", "reset-offsets", "grp", "--topic", "g:1", "--to-offset", "100000", "--execute")
    expect("--to-offset on chosen partitions (1 clamped to log end)", committed(group_desc(b, "grp")),
           {("g", 0): min(3, leo[0]), ("g", 1): leo[1], ("g", 2): 0, ("g", 3): min(3, leo[3])})
    cli(b, "group", "reset-offsets", "grp", "--all-topics", "--to-latest", "--execute")
    expect("--to-latest --execute", committed(group_desc(b, "grp")), {("g", p): leo[p] for p in range(4)})

    # --to-datetime: the first offset with a timestamp >= T, per partition (log end when none)
    rows = [r.split() for r in cli(b, "consume", "g", "-e", "-f", "%p %o %T\\n")[0].decode().splitlines()]
    stamps = sorted({int(t) for _, _, t in rows})
    t_mid = stamps[len(stamps) // 2]
    want = {}
    for p in range(4):
        offs = sorted((int(o), int(t)) for pp, o, t in rows if int(pp) == p)
        want[("g", p)] = next((o for o, t in offs if t >= t_mid), leo[p])
    out, _ = cli(b, "group", "reset-offsets", "grp", "--all-topics", "--to-datetime", str(t_mid),
                 "--execute")
    expect("--to-datetime %d --execute" % t_mid, committed(group_desc(b, "grp")), want)

    # a group made by strata consume --group (libstrata's subscribe)
    r = subprocess.run([STRATA, "-b", b.addr, "consume", "g", "--group", "cg", "-n", "48", "-f",
                        "%p %o\\n"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode == 1 and b"ENOSYS" in r.stderr:
        ok("strata consume --group: subscribe not implemented in this libstrata (%s)" %
           r.stderr.decode().strip())
    else:
        expect("consume --group exit code", r.returncode, 0)
        expect("consume --group reads every record once", len(set(r.stdout.split(b"\n")) - {b""}), 48)
        d = group_desc(b, "cg")
        expect("cg after close: Empty, committed everything",
               (d["state"], committed(d)), ("Empty", {("g", p): leo[p] for p in range(4)}))
    cli_err(b, 1, "GROUP_ID_NOT_FOUND", "group", "describe", "no-such-group")
    cli_err(b, 1, "UNKNOWN_TOPIC_OR_PARTITION", "group", "reset-offsets", "grp", "--topic", "nope",
            "--to-earliest")
    cli_err(b, 2, "no partition", "group", "reset-offsets", "grp", "--topic", "g:9", "--to-earliest")


# ---- api ---------------------------------------------------------------------------

def mode_api(b):
    if len(sys.argv) < 5:
        fail("mode api needs the cl_admin_drive path")
    r = subprocess.run([sys.argv[4], b.addr], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)
    sys.stdout.write(r.stdout.decode(errors="replace"))
    expect("cl_admin_drive exit code", r.returncode, 0)
    # what the driver did, seen through the CLI
    expect("topics left", [t["name"] for t in cli_json(b, "topic", "list")], ["api-a"])
    expect("api-a retention.ms", configs(describe_topic(b, "api-a"))["retention.ms"],
           ("7200000", "DYNAMIC_TOPIC_CONFIG"))
    expect("api-g offsets", committed(group_desc(b, "api-g")), {("api-a", 0): 4, ("api-a", 2): 9})


def main():
    global STRATA
    if len(sys.argv) < 4:
        print(__doc__)
        raise SystemExit(2)
    exe = it.stratad_arg(__doc__)
    STRATA = os.path.abspath(sys.argv[2])
    mode = sys.argv[3]
    modes = {"topics": mode_topics, "data": mode_data, "groups": mode_groups, "api": mode_api}
    if mode not in modes:
        fail("unknown mode %s" % mode)
    if mode == "data" and not shutil.which("kcat"):
        it.skip("kcat not installed")

    def body(tmp):
        b = it.Broker(exe, tmp)
        modes[mode](b)
        b.stop_ok()

    return it.run("strata-cli-", body)


if __name__ == "__main__":
    raise SystemExit(main())
