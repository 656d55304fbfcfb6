#!/usr/bin/python3
"""Integration test: kafka-python's KafkaAdminClient against the real stratad.

usage: test_kafka_python_admin.py STRATAD

Creates topics (with a config and a validate-only call), lists and describes
them (DescribeConfigs), alters a config, adds partitions, deletes a topic --
all through an unmodified kafka-python 2.0.2 (Debian python3-kafka, installed
by scripts/deps.sh). Exit 77 when the module is missing.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_it as it  # noqa: E402
from strata_it import fail, ok  # noqa: E402

try:
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
    from kafka.errors import InvalidReplicationFactorError, TopicAlreadyExistsError
except ImportError:
    it.skip("python3 module kafka (Debian python3-kafka) is not installed")


def topic_errors(resp):
    return {t[0]: t[1] for t in resp.topic_errors}


def run(b):
    admin = KafkaAdminClient(bootstrap_servers="127.0.0.1:%d" % b.port, client_id="it-admin",
                             request_timeout_ms=10000)
    try:
        resp = admin.create_topics([NewTopic("kp-one", 3, 1),
                                    NewTopic("kp-two", 1, 1, topic_configs={"retention.ms": "60000"})])
        if any(topic_errors(resp).values()):
            fail("create_topics: %r" % resp)
        ok("create_topics kp-one, kp-two")
        try:
            admin.create_topics([NewTopic("kp-one", 1, 1)])
            fail("create_topics of an existing topic did not raise")
        except TopicAlreadyExistsError:
            ok("existing topic -> TopicAlreadyExistsError")
        try:
            admin.create_topics([NewTopic("kp-rf", 1, 3)])
            fail("replication factor 3 did not raise")
        except InvalidReplicationFactorError:
            ok("replication factor 3 -> InvalidReplicationFactorError")
        admin.create_topics([NewTopic("kp-dry", 1, 1)], validate_only=True)

        names = set(admin.list_topics())
        if not {"kp-one", "kp-two"} <= names or "kp-dry" in names:
            fail("list_topics: %r" % names)
        ok("list_topics ->", sorted(names))

        res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-two")])
        entries = {e[0]: e[1] for e in res[0].resources[0][4]}
        if entries.get("retention.ms") != "60000" or entries.get("cleanup.policy") != "delete":
            fail("describe_configs kp-two: %r" % entries)
        ok("describe_configs kp-two retention.ms=60000 (%d keys)" % len(entries))

        res = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-one",
                                                  configs={"cleanup.policy": "compact"})])
        if res.resources[0][0] != 0:
            fail("alter_configs: %r" % res)
        res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-one")])
        entries = {e[0]: e[1] for e in res[0].resources[0][4]}
        if entries.get("cleanup.policy") != "compact":
            fail("alter_configs not visible: %r" % entries)
        ok("alter_configs kp-one cleanup.policy=compact")

        res = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "0")])
        if res[0].resources[0][0] != 0 or not res[0].resources[0][4]:
            fail("describe_configs broker: %r" % res)
        ok("describe_configs broker 0 (%d keys)" % len(res[0].resources[0][4]))

        resp = admin.create_partitions({"kp-one": NewPartitions(5)})
        if any(t[1] for t in resp.topic_errors):
            fail("create_partitions: %r" % resp)
        ok("create_partitions kp-one -> 5")

        resp = admin.delete_topics(["kp-two"])
        if any(t[1] for t in resp.topic_error_codes):
            fail("delete_topics: %r" % resp)
        names = set(admin.list_topics())
        if "kp-two" in names:
            fail("kp-two still listed after delete: %r" % names)
        ok("delete_topics kp-two")
    finally:
        admin.close()


def main():
    exe = it.stratad_arg(__doc__)

    def body(tmp):
        b = it.Broker(exe, tmp, overrides=[("connections.max.idle.ms", 2000),
                                           ("auto.create.topics.enable", "false")])
        run(b)
        b.stop_ok()
    return it.run("strata-kp-admin-", body)


if __name__ == "__main__":
    sys.exit(main())
