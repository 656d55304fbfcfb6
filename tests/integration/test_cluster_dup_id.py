#!/usr/bin/env python3
"""Cluster mode: a second broker configured with a broker.id that a live
broker holds (docs/operations.md, "A local cluster").

  1. broker 1 runs and is registered;
  2. another stratad with broker.id=1 (its own port and data directory)
     waits for the registration to go away (a restart after a crash would
     find its own old session's node there) and, since the holder stays
     alive, exits non-zero after at most 2 x zookeeper.session.timeout.ms
     + 4 s saying "broker.id 1 is registered by another live broker";
  3. broker 1 is unaffected: still registered, the only broker in Metadata,
     still taking writes.
Skips (77) without java / ZooKeeper. Stopped by pid.

usage: test_cluster_dup_id.py STRATAD
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402


def body(tmp):
    exe = it.stratad_arg(__doc__)
    zk = it.ZooKeeper(tmp)
    first = it.start_cluster(exe, tmp, zk, "/dup", ids=(1,))[1]

    def registered():
        s = first.connect()
        try:
            return [n for n, _, _ in it.metadata(s, 5, 1, [])["brokers"]] == [1]
        finally:
            s.close()
    it.wait_until("broker 1 registered", registered)

    d = os.path.join(tmp, "second")
    os.makedirs(d)
    second = it.Broker(exe, d, it.cluster_overrides(zk, 1, chroot="/dup"))
    t0 = time.time()
    try:
        rc = second.proc.wait(timeout=60)
    except Exception:
        it.fail("the second broker with broker.id 1 still runs after 60 s")
    print("  (the second broker exited after %.1f s)" % (time.time() - t0), flush=True)
    it.expect("second broker's exit status is non-zero", rc != 0, True)
    it.expect("its log says why",
              "broker.id 1 is registered by another live broker" in second.read_log(), True)

    it.expect("broker 1 still registered, alone", registered(), True)
    it.expect("CreateTopics on broker 1", it.create_topic_rf(first, "t", 1, 1), 0)

    def produced():
        c = it.Conn(first.port)
        try:
            return it.produce(c, "t", 0, it.batch([b"x"]), acks=-1)[0] == 0
        finally:
            c.close()
    it.wait_until("broker 1 takes writes", produced)
    first.stop_ok()
    zk.stop()
    return 0


if __name__ == "__main__":
    sys.exit(it.run("strata-dup-", body))
