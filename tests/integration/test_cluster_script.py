#!/usr/bin/env python3
"""scripts/cluster.sh as users run it (docs/operations.md, "A local cluster"):

  1. `cluster.sh up 3` starts ZooKeeper and three brokers (free loopback
     ports, a temp folder) and prints the bootstrap servers;
  2. `cluster.sh status` lists ZooKeeper and the three brokers running;
  3. an RF=3 topic created on broker 1 gets a leader and a full ISR on every
     broker; kcat produces 200 records with acks=all through the bootstrap
     list and reads them back in order;
  4. `cluster.sh down` stops every process it started (controlled shutdown),
     `status` shows them stopped, and no recorded pid is left alive;
  5. `cluster.sh up 3` again brings the same cluster back (its data kept):
     the records are still there.
Skips (77) without java / ZooKeeper or kcat. Everything it started is
SIGKILLed by recorded pid at the end, whatever happens.

usage: test_cluster_script.py STRATAD
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                      "cluster.sh")
TOPIC = "script"


def bindable(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_bases():
    """BASE_PORT and ADMIN_BASE with ports +1..+3 of each free."""
    for _ in range(200):
        base = random.randrange(20000, 59000, 10)
        adm = base + 500
        if all(bindable(p) for p in (base + 1, base + 2, base + 3, adm + 1, adm + 2, adm + 3)):
            return base, adm
    it.fail("no free port range found")


def script(env, *args, timeout=120):
    r = subprocess.run(["bash", SCRIPT] + list(args), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    out = r.stdout.decode(errors="replace")
    print("$ cluster.sh %s  (exit %d)\n%s" % (" ".join(args), r.returncode, out.rstrip()),
          flush=True)
    return r.returncode, out


def pids(d):
    out = []
    for sub in ["."] + ["b%d" % i for i in (1, 2, 3)]:
        f = os.path.join(d, sub, "zk.pid" if sub == "." else "pid")
        if os.path.exists(f):
            with open(f) as fh:
                out.append(int(fh.read().strip()))
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours would count as alive: reap it if it is one
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


class Node:
    """What it.partition_states needs of a broker: running() and connect()."""

    def __init__(self, port):
        self.port = port

    def running(self):
        return True

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)


def body(tmp):
    exe = it.stratad_arg(__doc__)
    if not shutil.which("java") or not os.path.exists("/usr/share/java/zookeeper.jar"):
        it.skip("needs java and Debian's zookeeper (bash scripts/deps.sh)")
    if not shutil.which("kcat"):
        it.skip("needs kcat")
    d = os.path.join(tmp, "cluster")
    base, adm = free_bases()
    env = dict(os.environ, STRATA_CLUSTER_DIR=d, STRATAD=exe, ZK_PORT=str(it.free_port()),
               BASE_PORT=str(base), ADMIN_BASE=str(adm))
    boot = ",".join("127.0.0.1:%d" % (base + i) for i in (1, 2, 3))
    started = []
    try:
        rc, out = script(env, "up", "3")
        it.expect("cluster.sh up 3 exit", rc, 0)
        it.expect("bootstrap servers printed", ("bootstrap servers " + boot) in out, True)
        started = pids(d)
        it.expect("recorded pids (ZooKeeper + 3 brokers)", len(started), 4)
        rc, out = script(env, "status")
        it.expect("status: running lines", out.count(" running"), 4)

        nodes = {i: Node(base + i) for i in (1, 2, 3)}
        it.wait_until("every broker registered",
                      lambda: it.create_topic_rf(nodes[1], "probe", 1, 3) in (0, 36))
        it.expect("CreateTopics RF=3", it.create_topic_rf(nodes[1], TOPIC, 2, 3), 0)

        def full():
            for n in nodes.values():
                st = it.partition_states({0: n}, TOPIC)
                if not st or any(v[0] < 0 or len(v[1]) != 3 for v in st.values()):
                    return None
            return True
        it.wait_until("leaders and full ISRs on every broker", full)
        lines = b"".join(b"k%d:v%d\n" % (i % 7, i) for i in range(200))
        kc = ["kcat", "-b", boot]
        r = subprocess.run(kc + ["-P", "-t", TOPIC, "-K:", "-X", "acks=all"], input=lines,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        it.expect("kcat produce exit", r.returncode, 0)

        def consume():
            r = subprocess.run(kc + ["-C", "-t", TOPIC, "-e", "-f", "%k:%s\n"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            return r.stdout.split(b"\n")[:-1] if r.returncode == 0 else []
        got = consume()
        it.expect("kcat read back every record", len(got), 200)
        by_key = {}
        for rec in got:
            k, v = rec.split(b":")
            by_key.setdefault(k, []).append(int(v[1:]))
        it.expect("order per key (one partition per key)",
                  all(v == sorted(v) for v in by_key.values()), True)

        rc, out = script(env, "down", timeout=150)
        it.expect("cluster.sh down exit", rc, 0)
        it.expect("down stopped ZooKeeper and 3 brokers", out.count("cluster: stopped "), 4)
        it.expect("no started process left", [p for p in started if alive(p)], [])
        rc, out = script(env, "status")
        it.expect("status after down: stopped lines", out.count(" stopped"), 4)

        rc, out = script(env, "up", "3")
        it.expect("cluster.sh up 3 again exit", rc, 0)
        started = pids(d)
        got = it.wait_until("records still there after down / up",
                            lambda: (lambda g: g if len(g) == 200 else None)(consume()))
        it.expect("same records after down / up", sorted(got), sorted(lines.split(b"\n")[:-1]))
        rc, out = script(env, "down", timeout=150)
        it.expect("cluster.sh down exit (again)", rc, 0)
    finally:
        for p in started + pids(d):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(it.run("strata-cs-", body))
