#!/usr/bin/env bash
# Installs the Debian packages that building and testing Strata need.
# Idempotent: packages already present are skipped; apt-get update runs only
# when something is missing. Later issues append to PKGS.
set -euo pipefail

PKGS=(
    # build
    build-essential cmake pkg-config
    liburing-dev libuv1-dev libprotobuf-c-dev protobuf-c-compiler
    libssl-dev
    zlib1g-dev liblz4-dev libzstd-dev  # sc_codec: gzip, lz4, zstd batches (snappy is our own)
    # tests: Check, clang for libFuzzer, real Kafka clients
    check clang libclang-rt-14-dev kcat python3-kafka
    python3-snappy python3-lz4 python3-zstandard  # kafka-python's codecs
    # benchmarks: strata-bench --client rdkafka (librdkafka as a second Kafka client)
    librdkafka-dev
    # benchmarks: the peer comparison (strata-bench compare) against NATS JetStream
    nats-server libnats-dev
    # plugins: Modbus/TCP peers for the modbus gateway tests (pymodbus server,
    # libmodbus unit-test server built from its examples, mbpoll as the cross-check)
    python3-pymodbus python3-serial python3-serial-asyncio mbpoll libmodbus-dev  # pymodbus 3.0.0 imports both
    # cluster mode: the zookeeper metadata store (C client) and a ZooKeeper server for tests
    libzookeeper-mt-dev zookeeper
    # cluster tests: an idempotent producer across a failover (librdkafka's Python binding)
    python3-confluent-kafka
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#PKGS[@]} packages present"
    exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
